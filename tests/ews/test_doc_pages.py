"""The EWS test server answers the example requests of Microsoft's operation pages as those
pages answer them (web-service-reference on learn.microsoft.com; see the server's README).
Each request body is the page's own, as printed (only the soap:Envelope around it is ours,
and it carries no header where the page's has none)."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from tests.ews.test_server import create, post, xml
from tests.servers.ews import EwsServer, Kind
from tests.servers.ews.ops import User
from tests.servers.ews.testkit import ADMIN, USER

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
MNS = f'xmlns="{M}"'
REF = "https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/"


def ask(server: EwsServer, body: str, **kw: object) -> etree._Element:
    """The page's request without a SOAP header (none of these pages has one)."""
    return xml(post(server, body, header="", **kw))  # type: ignore[arg-type]


def local(el: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in el if isinstance(c.tag, str)]


def error_of(answer: etree._Element) -> tuple[str | None, str | None, str | None]:
    msg = answer.find(f".//{{{M}}}ResponseMessages")[0]  # type: ignore[index]
    return (
        msg.get("ResponseClass"),
        msg.findtext(f"{{{M}}}ResponseCode"),
        msg.findtext(f"{{{M}}}MessageText"),
    )


# --- GetFolder operation (REF + getfolder-operation) -------------------------------------

GET_FOLDER = f"""<GetFolder {MNS}><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape>
<FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>"""


def test_get_folder_page(server: EwsServer) -> None:
    create(server)
    create(server)
    answer = ask(server, GET_FOLDER)
    (folder,) = answer.find(f".//{{{M}}}Folders")  # type: ignore[misc]
    assert local(folder) == [
        "FolderId", "DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount",
    ]  # fmt: skip
    assert [c.text for c in folder][1:] == ["Inbox", "2", "0", "0"]  # created read
    # "an error response that is caused by an incorrect FolderId": the response
    # example's own (shortened) id
    bad = GET_FOLDER.replace('<t:DistinguishedFolderId Id="inbox"/>', '<t:FolderId Id="AQApA="/>')
    answer = ask(server, bad)
    assert error_of(answer) == ("Error", "ErrorInvalidIdMalformed", "Id is malformed.")
    msg = answer.find(f".//{{{M}}}GetFolderResponseMessage")
    assert local(msg) == ["MessageText", "ResponseCode", "DescriptiveLinkKey", "Folders"]  # type: ignore[arg-type]
    assert msg.findtext(f"{{{M}}}DescriptiveLinkKey") == "0"  # type: ignore[union-attr]


# --- FindFolder operation (REF + findfolder-operation) ----------------------------------

FIND_FOLDER = f"""<FindFolder Traversal="Shallow" {MNS}><FolderShape>
<t:BaseShape>Default</t:BaseShape></FolderShape><ParentFolderIds>
<t:DistinguishedFolderId Id="inbox"/></ParentFolderIds></FindFolder>"""


def _make_folder(server: EwsServer, name: str, parent: str = "inbox") -> None:
    made = ask(
        server,
        f'<CreateFolder {MNS}><ParentFolderId><t:DistinguishedFolderId Id="{parent}"/>'
        f"</ParentFolderId><Folders><t:Folder><t:DisplayName>{name}</t:DisplayName></t:Folder>"
        "</Folders></CreateFolder>",
    )
    assert error_of(made)[1] == "NoError"


def test_find_folder_page(server: EwsServer) -> None:
    _make_folder(server, "TestFolder")
    answer = ask(server, FIND_FOLDER)
    root = answer.find(f".//{{{M}}}RootFolder")
    assert root is not None
    # no paging view asked, so no IndexedPagingOffset, as in the page's response
    assert dict(root.attrib) == {"TotalItemsInView": "1", "IncludesLastItemInRange": "true"}
    (folder,) = root.find(f"{{{T}}}Folders")  # type: ignore[misc]
    assert local(folder) == [
        "FolderId", "DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount",
    ]  # fmt: skip
    assert [c.text for c in folder][1:] == ["TestFolder", "0", "0", "0"]
    # "a folder that is identified by a malformed folder identifier"
    bad = FIND_FOLDER.replace('<t:DistinguishedFolderId Id="inbox"/>', '<t:FolderId Id="AQAnAH"/>')
    answer = ask(server, bad)
    assert error_of(answer) == ("Error", "ErrorInvalidIdMalformed", "Id is malformed.")
    assert answer.find(f".//{{{M}}}RootFolder") is None


def test_find_folder_traversal_and_paging(server: EwsServer) -> None:
    for name in ("A", "B", "C"):
        _make_folder(server, name)
    _make_folder(server, "deeper", "inbox")  # four children of the inbox
    # SoftDeleted: "SoftDelete traversal searches for items and folders will not return
    # any results" (REF + deleteitem, Remarks)
    soft = ask(server, FIND_FOLDER.replace("Shallow", "SoftDeleted"))
    assert soft.find(f".//{{{M}}}RootFolder").get("TotalItemsInView") == "0"  # type: ignore[union-attr]
    paged = FIND_FOLDER.replace(
        "</FolderShape>",
        '</FolderShape><IndexedPageFolderView MaxEntriesReturned="3" Offset="1" '
        'BasePoint="Beginning"/>',
    )
    root = ask(server, paged).find(f".//{{{M}}}RootFolder")
    assert dict(root.attrib) == {  # type: ignore[union-attr]
        "IndexedPagingOffset": "4", "TotalItemsInView": "4", "IncludesLastItemInRange": "true",
    }  # fmt: skip
    assert len(root.find(f"{{{T}}}Folders")) == 3  # type: ignore[arg-type,union-attr]


# --- CreateFolder operation (REF + createfolder-operation) ------------------------------

CREATE_FOLDERS = f"""<CreateFolder {MNS}><ParentFolderId>
<t:DistinguishedFolderId Id="msgfolderroot"/></ParentFolderId><Folders>
<t:Folder><t:DisplayName>Folder1</t:DisplayName></t:Folder>
<t:Folder><t:DisplayName>Folder2</t:DisplayName></t:Folder></Folders></CreateFolder>"""


def test_create_folder_page(server: EwsServer) -> None:
    answer = ask(server, CREATE_FOLDERS)
    msgs = answer.findall(f".//{{{M}}}CreateFolderResponseMessage")
    assert [m.get("ResponseClass") for m in msgs] == ["Success", "Success"]
    for msg in msgs:
        assert local(msg) == ["ResponseCode", "Folders"]
        assert msg.find(f"{{{M}}}Folders/{{{T}}}Folder/{{{T}}}FolderId").get("Id")  # type: ignore[union-attr]
    box = server.mailboxes[USER.mailbox]
    assert box.folder_by_path(("Folder1",)) and box.folder_by_path(("Folder2",))
    again = ask(server, CREATE_FOLDERS)  # the page's error: ErrorFolderExists
    msg = again.find(f".//{{{M}}}CreateFolderResponseMessage")
    assert error_of(again) == (
        "Error", "ErrorFolderExists", "A folder with the specified name already exists.",
    )  # fmt: skip
    assert local(msg) == ["MessageText", "ResponseCode", "DescriptiveLinkKey", "Folders"]  # type: ignore[arg-type]
    assert len(msg.find(f"{{{M}}}Folders")) == 0  # type: ignore[arg-type,union-attr]


# --- FindItem operation (REF + finditem-operation), DeleteItem (REF + deleteitem-operation)

FIND_ITEM = f"""<FindItem {MNS} Traversal="Shallow"><ItemShape>
<t:BaseShape>IdOnly</t:BaseShape></ItemShape><ParentFolderIds>
<t:DistinguishedFolderId Id="deleteditems"/></ParentFolderIds></FindItem>"""
DELETE = f"""<DeleteItem DeleteType="HardDelete" {MNS}><ItemIds>
<t:ItemId Id="AS4AUn=="/></ItemIds></DeleteItem>"""


def _created_id(server: EwsServer) -> str:
    return xml(create(server)).find(f".//{{{T}}}ItemId").get("Id")  # type: ignore[union-attr,return-value]


def test_find_item_page_in_deleted_items(server: EwsServer) -> None:
    ids = [_created_id(server) for _ in range(2)]
    for item_id in ids:
        moved = DELETE.replace("HardDelete", "MoveToDeletedItems").replace("AS4AUn==", item_id)
        assert error_of(ask(server, moved))[1] == "NoError"
    root = ask(server, FIND_ITEM).find(f".//{{{M}}}RootFolder")
    assert dict(root.attrib) == {"TotalItemsInView": "2", "IncludesLastItemInRange": "true"}  # type: ignore[union-attr]
    items = root.find(f"{{{T}}}Items")  # type: ignore[union-attr]
    assert [local(i) for i in items] == [["ItemId"], ["ItemId"]]  # type: ignore[union-attr]
    assert {i[0].get("Id") for i in items} == set(ids)  # type: ignore[union-attr]
    # paging: IndexedPagingOffset is "the next index … for the next request" (RootFolder)
    paged = FIND_ITEM.replace(
        "</ItemShape>",
        '</ItemShape><IndexedPageItemView MaxEntriesReturned="1" Offset="0" '
        'BasePoint="Beginning"/>',
    )
    root = ask(server, paged).find(f".//{{{M}}}RootFolder")
    assert dict(root.attrib) == {  # type: ignore[union-attr]
        "IndexedPagingOffset": "1", "TotalItemsInView": "2", "IncludesLastItemInRange": "false",
    }  # fmt: skip
    answer = ask(
        server,
        FIND_ITEM.replace('DistinguishedFolderId Id="deleteditems"', 'FolderId Id="AS4AUn="'),
    )
    assert error_of(answer) == ("Error", "ErrorInvalidIdMalformed", "Id is malformed.")


def test_delete_item_page(server: EwsServer) -> None:
    item_id = _created_id(server)
    request = DELETE.replace("AS4AUn==", item_id)
    answer = ask(server, request)
    assert error_of(answer) == ("Success", "NoError", None)
    assert server.mailboxes[USER.mailbox].items == {}  # "permanently removed"
    assert error_of(ask(server, request)) == (  # the page's error: not found
        "Error", "ErrorItemNotFound", "The specified object was not found in the store.",
    )  # fmt: skip
    # SoftDelete "moved to the dumpster", which a SoftDeleted traversal does not show
    soft = DELETE.replace("HardDelete", "SoftDelete").replace("AS4AUn==", _created_id(server))
    assert error_of(ask(server, soft))[1] == "NoError"
    for traversal in ("Shallow", "SoftDeleted"):
        inbox = FIND_ITEM.replace("deleteditems", "inbox").replace("Shallow", traversal)
        items = ask(server, inbox).find(f".//{{{T}}}Items")
        assert items is not None and len(items) == 0


def test_delegate_cannot_move_to_deleted_items(server: EwsServer) -> None:
    """The DeleteItem page's Note: a delegate's MoveToDeletedItems is ErrorCannotDeleteObject."""
    dave = User(
        "dave@example.com", "d4ve", "dave@example.com", delegate_to=frozenset({USER.mailbox})
    )
    server.add_mailbox(dave.mailbox)
    server.add_user(dave)
    item_id = _created_id(server)  # in alice's inbox
    request = DELETE.replace("AS4AUn==", item_id)
    moved = request.replace("HardDelete", "MoveToDeletedItems")
    answer = ask(server, moved, auth=(dave.name, dave.password))
    assert error_of(answer)[:2] == ("Error", "ErrorCannotDeleteObject")
    assert item_id in server.mailboxes[USER.mailbox].items
    assert error_of(ask(server, request, auth=(dave.name, dave.password)))[1] == "NoError"


# --- GetItem operation (email message) (REF + getitem-operation-email-message) ----------

GET_ITEM = f"""<GetItem {MNS}><ItemShape><t:BaseShape>Default</t:BaseShape>
<t:IncludeMimeContent>true</t:IncludeMimeContent></ItemShape>
<ItemIds><t:ItemId Id="AAAlAF" ChangeKey="CQAAAB"/></ItemIds></GetItem>"""


def test_get_item_page(server: EwsServer) -> None:
    item_id = _created_id(server)
    answer = ask(server, GET_ITEM.replace('Id="AAAlAF"', f'Id="{item_id}"'))
    message = answer.find(f".//{{{M}}}Items/{{{T}}}Message")
    assert message is not None
    page = ["MimeContent", "ItemId", "Subject", "Sensitivity", "Body", "Size", "DateTimeSent",
            "DateTimeCreated", "ResponseObjects", "HasAttachments", "ToRecipients",
            "IsReadReceiptRequested", "IsDeliveryReceiptRequested", "From", "IsRead"]  # fmt: skip
    got = local(message)
    assert got[:2] == ["MimeContent", "ItemId"] and "IsRead" in got
    assert got == [name for name in page if name in got]  # the page's elements, its order
    mime = message.find(f"{{{T}}}MimeContent")  # type: ignore[union-attr]
    assert mime.get("CharacterSet") == "UTF-8"  # type: ignore[union-attr]
    stored = server.mailboxes[USER.mailbox].items[item_id].mime
    assert base64.b64decode(mime.text or "") == stored  # type: ignore[union-attr]
    # "an attempt to get an invalid additional property"
    invalid = GET_ITEM.replace(
        "</ItemShape>",
        '<t:AdditionalProperties><t:FieldURI FieldURI="meeting:AssociatedCalendarItemId"/>'
        "</t:AdditionalProperties></ItemShape>",
    ).replace('Id="AAAlAF"', f'Id="{item_id}"')
    answer = ask(server, invalid)
    assert error_of(answer) == (
        "Error", "ErrorInvalidPropertyRequest", "Property is not valid for this object type.",
    )  # fmt: skip
    msg = answer.find(f".//{{{M}}}GetItemResponseMessage")
    assert local(msg) == [  # type: ignore[arg-type]
        "MessageText", "ResponseCode", "DescriptiveLinkKey", "MessageXml", "Items",
    ]  # fmt: skip
    uri = msg.find(f"{{{M}}}MessageXml/{{{T}}}FieldURI")  # type: ignore[union-attr]
    assert uri.get("FieldURI") == "meeting:AssociatedCalendarItemId"  # type: ignore[union-attr]


# --- SyncFolderHierarchy operation (REF + syncfolderhierarchy-operation) ----------------

SYNC = f"""<SyncFolderHierarchy {MNS}><FolderShape><t:BaseShape>AllProperties</t:BaseShape>
</FolderShape><SyncState>H4sIA=</SyncState></SyncFolderHierarchy>"""


def test_sync_folder_hierarchy_page(server: EwsServer) -> None:
    # the page's SyncState is shortened; the page's error example is "caused by an
    # invalid SyncState"
    answer = ask(server, SYNC)
    assert error_of(answer) == (
        "Error",
        "ErrorInvalidSyncStateData",
        "Synchronization state data is corrupted or otherwise invalid.",
    )
    msg = answer.find(f".//{{{M}}}SyncFolderHierarchyResponseMessage")
    assert local(msg) == [  # type: ignore[arg-type]
        "MessageText", "ResponseCode", "DescriptiveLinkKey", "SyncState",
        "IncludesLastFolderInRange",
    ]  # fmt: skip
    assert msg.findtext(f"{{{M}}}IncludesLastFolderInRange") == "true"  # type: ignore[union-attr]
    # "not included in the request for the first attempt … will return all the folders"
    first = ask(server, SYNC.replace("<SyncState>H4sIA=</SyncState>", ""))
    creates = first.findall(f".//{{{T}}}Create")
    assert len(creates) == len(server.mailboxes[USER.mailbox].folders) - 1  # all but root
    state = first.findtext(f".//{{{M}}}SyncState")
    _make_folder(server, "NewFolder")
    answer = ask(server, SYNC.replace("H4sIA=", state or ""))
    assert error_of(answer) == ("Success", "NoError", None)
    msg = answer.find(f".//{{{M}}}SyncFolderHierarchyResponseMessage")
    assert local(msg) == ["ResponseCode", "SyncState", "IncludesLastFolderInRange", "Changes"]  # type: ignore[arg-type]
    (created,) = msg.find(f"{{{M}}}Changes")  # type: ignore[misc,union-attr]
    (folder,) = created
    assert local(folder) == [
        "FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount",
        "ChildFolderCount", "UnreadCount",
    ]  # fmt: skip
    assert folder.findtext(f"{{{T}}}DisplayName") == "NewFolder"
    assert folder.findtext(f"{{{T}}}FolderClass") == "IPF.Note"


# --- CreateItem operation (task) and (calendar item) ------------------------------------

TASK = f"""<CreateItem {MNS} MessageDisposition="SaveOnly"><Items><t:Task>
<t:Subject>My task</t:Subject><t:DueDate>2006-10-26T21:32:52</t:DueDate>
<t:Status>NotStarted</t:Status></t:Task></Items></CreateItem>"""
MEETING = f"""<CreateItem {MNS} SendMeetingInvitations="SendToAllAndSaveCopy">
<SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></SavedItemFolderId><Items>
<t:CalendarItem xmlns="{T}"><Subject>Planning Meeting</Subject>
<Body BodyType="Text">Plan the agenda for next week's meeting.</Body>
<ReminderIsSet>true</ReminderIsSet><ReminderMinutesBeforeStart>60</ReminderMinutesBeforeStart>
<Start>2006-11-02T14:00:00</Start><End>2006-11-02T15:00:00</End>
<IsAllDayEvent>false</IsAllDayEvent><LegacyFreeBusyStatus>Busy</LegacyFreeBusyStatus>
<Location>Conference Room 721</Location><RequiredAttendees>
<Attendee><Mailbox><EmailAddress>User1@example.com</EmailAddress></Mailbox></Attendee>
<Attendee><Mailbox><EmailAddress>User2@example.com</EmailAddress></Mailbox></Attendee>
</RequiredAttendees></t:CalendarItem></Items></CreateItem>"""


@pytest.mark.parametrize(
    ("request_body", "element", "folder"),
    [(TASK, "Task", "tasks"), (MEETING, "CalendarItem", "calendar")],
    ids=["createitem-operation-task", "createitem-operation-calendar-item"],
)
def test_create_item_kind_pages(
    server: EwsServer, request_body: str, element: str, folder: str
) -> None:
    answer = ask(server, request_body)
    assert error_of(answer) == ("Success", "NoError", None)
    (made,) = answer.find(f".//{{{M}}}Items")  # type: ignore[misc]
    assert etree.QName(made).localname == element and local(made) == ["ItemId"]
    box = server.mailboxes[USER.mailbox]
    (item,) = box.items.values()
    # the task page: "if a destination folder is not specified, task items are created
    # in the Tasks folder"
    assert box.folders[item.folder_id].distinguished == folder
    assert item.subject in ("My task", "Planning Meeting")


# --- ConvertId operation (REF + convertid-operation) ------------------------------------

CONVERT = f"""<ConvertId {MNS} DestinationFormat="OwaId"><SourceIds>
<t:AlternateId Format="EwsId" Id="AAMkAGZhN2IxYTA0LWNiNzItN=" Mailbox="user1@example.com"/>
</SourceIds></ConvertId>"""


def test_convert_id_page_error_example(server: EwsServer) -> None:
    """The page's request id is shortened: the page's error example answers it."""
    answer = xml(post(server, CONVERT, header='<t:RequestServerVersion Version="Exchange2010"/>'))
    assert error_of(answer) == ("Error", "ErrorInvalidIdMalformed", "Id is malformed.")
    msg = answer.find(f".//{{{M}}}ConvertIdResponseMessage")
    assert local(msg) == ["MessageText", "ResponseCode", "DescriptiveLinkKey"]  # type: ignore[arg-type]


def test_convert_id_page_success_for_an_id_the_server_issued(server: EwsServer) -> None:
    item_id = _created_id(server)
    request = CONVERT.replace("AAMkAGZhN2IxYTA0LWNiNzItN=", item_id).replace(
        "user1@example.com", USER.mailbox
    )
    header = '<t:RequestServerVersion Version="Exchange2010"/>'
    answer = xml(post(server, request, header=header))
    assert error_of(answer) == ("Success", "NoError", None)
    alt = answer.find(f".//{{{M}}}ConvertIdResponseMessage/{{{M}}}AlternateId")
    assert alt is not None and alt.get("Format") == "OwaId" and alt.get("Mailbox") == USER.mailbox
    assert alt.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "t:AlternateIdType"
    back = CONVERT.replace('DestinationFormat="OwaId"', 'DestinationFormat="EwsId"')
    back = back.replace("AAMkAGZhN2IxYTA0LWNiNzItN=", item_id)
    alt = xml(post(server, back, header=header)).find(f".//{{{M}}}AlternateId")
    assert alt is not None and alt.get("Id") == item_id


# --- ExchangeImpersonation header and ErrorServerBusy -----------------------------------


@pytest.mark.parametrize(
    ("connecting", "code"),
    [
        # types.xsd makes it a NonEmptyStringType: an empty one fails the schema first
        ("<t:PrimarySmtpAddress></t:PrimarySmtpAddress>", "ErrorSchemaValidation"),
        (
            "<t:PrimarySmtpAddress> </t:PrimarySmtpAddress>",
            "ErrorInvalidExchangeImpersonationHeaderData",
        ),
        (
            "<t:PrimarySmtpAddress>nobody@example.com</t:PrimarySmtpAddress>",
            "ErrorNonExistentMailbox",
        ),
        ("<t:PrincipalName>bob@example.com</t:PrincipalName>", None),
    ],
)
def test_impersonation_header(server: EwsServer, connecting: str, code: str | None) -> None:
    """ResponseCode page: ErrorInvalidExchangeImpersonationHeaderData "when a caller does
    not specify a UPN, an e-mail address, or a user SID … or … the values are empty";
    ErrorNonExistentMailbox when the address "does not refer to a valid account … in an
    Exchange Impersonation call"."""
    header = (
        '<t:RequestServerVersion Version="Exchange2016"/>'
        f"<t:ExchangeImpersonation><t:ConnectingSID>{connecting}</t:ConnectingSID>"
        "</t:ExchangeImpersonation>"
    )
    r = post(server, GET_FOLDER, auth=(ADMIN.name, ADMIN.password), header=header)
    if code is None:
        assert r.status_code == 200 and error_of(xml(r))[1] == "NoError"
        return
    assert r.status_code == 500
    assert xml(r).findtext(".//faultcode") == f"a:{code}"


def test_server_busy_is_http_500_with_back_off(server: EwsServer) -> None:
    """EWS throttling in Exchange, table 4: "HTTP 500 … with the ErrorServerBusy error
    code … may contain a back off hint called BackOffMilliseconds"."""
    server.faults.arm(Kind.BUSY, op="GetFolder", backoff_ms=1500)
    r = post(server, GET_FOLDER)
    assert r.status_code == 500
    fault = xml(r)
    assert fault.findtext(
        ".//{http://schemas.microsoft.com/exchange/services/2006/errors}ResponseCode"
    ) == ("ErrorServerBusy")
    value = fault.find(f".//{{{T}}}MessageXml/{{{T}}}Value")
    assert value is not None and value.get("Name") == "BackOffMilliseconds"
    assert value.text == "1500"
