"""The EWS test server itself: schema validation both ways, Exchange's derivations, auth."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from lxml import etree

from tests.servers.ews import EwsServer, Kind
from tests.servers.ews.mailbox import make_id
from tests.servers.ews.schema import EnvelopeValidator
from tests.servers.ews.testkit import USER, start_server

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
MIME = (
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <a@b>\r\n"
    b"Date: Tue, 2 Jan 2024 10:00:00 +0100\r\n\r\nhi\r\n"
)


@pytest.fixture
def server(ews_schema_dir: Path) -> Iterator[EwsServer]:
    srv = start_server(ews_schema_dir)
    srv.now = lambda: NOW
    yield srv
    srv.stop()
    assert srv.response_errors == []


def post(
    server: EwsServer,
    body: str,
    auth: tuple[str, str] | None = (USER.name, USER.password),
    header: str = '<t:RequestServerVersion Version="Exchange2016"/>',
    path: str = "",
) -> requests.Response:
    envelope = f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="{M}" xmlns:t="{T}">
<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"""
    url = server.url if not path else server.url.replace("/EWS/Exchange.asmx", path)
    return requests.post(url, data=envelope.encode(), auth=auth, timeout=30)


def xml(r: requests.Response) -> etree._Element:
    return etree.fromstring(r.content)


def create(server: EwsServer, props: str = "", folder: str = "inbox") -> requests.Response:
    mime = base64.b64encode(MIME).decode()
    return post(
        server,
        f"""<m:CreateItem MessageDisposition="SaveOnly">
      <m:SavedItemFolderId><t:DistinguishedFolderId Id="{folder}"/></m:SavedItemFolderId>
      <m:Items><t:Message><t:MimeContent>{mime}</t:MimeContent>{props}</t:Message></m:Items>
      </m:CreateItem>""",
    )


def prop(tag: str, type_: str, value: str) -> str:
    return (
        f'<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="{tag}" PropertyType="{type_}"/>'
        f"<t:Value>{value}</t:Value></t:ExtendedProperty>"
    )


def only_item(server: EwsServer):  # type: ignore[no-untyped-def]
    (item,) = server.mailboxes[USER.mailbox].items.values()
    return item


def test_schema_invalid_request_gets_error_schema_validation(server: EwsServer) -> None:
    r = post(server, "<m:GetFolder><m:NoSuchElement/></m:GetFolder>")
    assert r.status_code == 500
    assert xml(r).findtext(f".//{{{E}}}ResponseCode") == "ErrorSchemaValidation"
    assert "NoSuchElement" in (xml(r).findtext(f".//{{{T}}}Violation") or "")
    bad_header = post(
        server, "<m:GetFolder/>", header='<t:RequestServerVersion Version="Exchange2099"/>'
    )
    assert xml(bad_header).findtext(f".//{{{E}}}ResponseCode") == "ErrorSchemaValidation"
    assert server.operations == []  # rejected before any operation ran


def test_schema_invalid_request_raises_in_exchangelib(server: EwsServer) -> None:
    exchangelib = pytest.importorskip("exchangelib")
    from exchangelib.services.common import EWSService  # noqa: PLC0415 - after importorskip

    fault = xml(post(server, "<m:FindItem/>"))
    with pytest.raises(exchangelib.errors.ErrorSchemaValidation):
        EWSService._raise_soap_errors(
            fault.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
        )


def test_mime_item_without_message_flags_is_an_unsent_draft(server: EwsServer) -> None:
    assert create(server).status_code == 200
    item = only_item(server)
    assert item.is_draft and item.received == NOW  # the import time, as Exchange shows it
    assert item.subject == "Grüße" and item.message_id == "<a@b>"
    assert item.sent == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)  # from the Date header


def test_message_flags_and_dates_in_the_same_request(server: EwsServer) -> None:
    props = (
        prop("0x0E07", "Integer", "1")
        + prop("0x0E06", "SystemTime", "2019-05-06T07:08:09Z")
        + prop("0x0039", "SystemTime", "2019-05-06T07:00:00Z")
    )
    create(server, props)
    item = only_item(server)
    assert (item.is_draft, item.is_read) == (False, True)
    assert item.received == datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert item.sent == datetime(2019, 5, 6, 7, 0, tzinfo=UTC)


def test_every_kind_of_response_is_schema_valid(server: EwsServer, ews_schema_dir: Path) -> None:
    validator = EnvelopeValidator(ews_schema_dir)
    created = xml(create(server, prop("0x0E07", "Integer", "0")))
    item_id = created.find(f".//{{{T}}}ItemId").get("Id")
    # well-formed ids of nothing (a malformed one is ErrorInvalidIdMalformed: test_doc_pages)
    gone, gone_folder = make_id("I", 9999, USER.mailbox), make_id("F", 9999, USER.mailbox)
    key = (
        '<t:ExtendedFieldURI PropertySetId="6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41" '
        'PropertyName="PstkitSourceKey" PropertyType="String"/>'
    )
    bodies = [
        "<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="calendar"/><t:DistinguishedFolderId Id="inbox"/>'
        f'<t:FolderId Id="{gone_folder}"/></m:FolderIds></m:GetFolder>',
        '<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape>'
        '</m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/>'
        "</m:ParentFolderIds></m:FindFolder>",
        '<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderId>'
        "<m:Folders><t:Folder><t:DisplayName>X</t:DisplayName></t:Folder>"
        "<t:Folder><t:DisplayName>x</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>",
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape>'
        f"<t:AdditionalProperties>{key}</t:AdditionalProperties></m:ItemShape>"
        '<m:IndexedPageItemView MaxEntriesReturned="10" Offset="0" BasePoint="Beginning"/>'
        '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="message:InternetMessageId"/>'
        '<t:FieldURIOrConstant><t:Constant Value="&lt;a@b&gt;"/></t:FieldURIOrConstant>'
        "</t:IsEqualTo></m:Restriction>"
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds>'
        "</m:FindItem>",
        "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties>"
        '<t:FieldURI FieldURI="item:MimeContent"/></t:AdditionalProperties></m:ItemShape>'
        f'<m:ItemIds><t:ItemId Id="{item_id}"/><t:ItemId Id="{gone}"/></m:ItemIds></m:GetItem>',
        f'<m:DeleteItem DeleteType="SoftDelete"><m:ItemIds><t:ItemId Id="{item_id}"/>'
        f'<t:ItemId Id="{gone}"/></m:ItemIds></m:DeleteItem>',
    ]
    codes = []
    for body in bodies:
        r = post(server, body)
        assert r.status_code == 200
        assert validator.violations(xml(r)) == []
        codes += [e.text for e in xml(r).iter(f"{{{M}}}ResponseCode")]
    assert codes.count("ErrorFolderExists") == 1  # names compare case-insensitively
    assert codes.count("ErrorItemNotFound") == 2
    assert codes.count("ErrorFolderNotFound") == 1
    assert server.mailboxes[USER.mailbox].items == {}


def test_find_item_cannot_return_mime(server: EwsServer) -> None:
    r = post(
        server,
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '<t:AdditionalProperties><t:FieldURI FieldURI="item:MimeContent"/>'
        "</t:AdditionalProperties></m:ItemShape><m:ParentFolderIds>"
        '<t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>',
    )
    assert xml(r).findtext(f".//{{{M}}}ResponseCode") == "ErrorInvalidPropertyRequest"


def test_restriction_on_named_property(server: EwsServer) -> None:
    stamped = (
        '<t:ExtendedFieldURI PropertySetId="6C0B1A52-5E7E-4D4F-9D1B-7A8D3F2B9C41" '
        'PropertyName="PstkitSourceKey" PropertyType="String"/>'
    )
    asked = stamped.replace(
        "6C0B1A52-5E7E-4D4F-9D1B-7A8D3F2B9C41", "6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41"
    )
    for key in ("s:1", "s:2"):
        create(
            server, f"<t:ExtendedProperty>{stamped}<t:Value>{key}</t:Value></t:ExtendedProperty>"
        )
    r = post(
        server,
        f'<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        f"<t:AdditionalProperties>{asked}</t:AdditionalProperties></m:ItemShape><m:Restriction>"
        f'<t:IsEqualTo>{asked}<t:FieldURIOrConstant><t:Constant Value="s:2"/>'
        "</t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>"
        '<t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>',
    )
    values = [v.text for v in xml(r).iter(f"{{{T}}}Value")]
    assert values == ["s:2"]  # property-set GUIDs compare case-insensitively


def test_auth_and_path(server: EwsServer) -> None:
    assert post(server, "<m:GetFolder/>", auth=None).status_code == 401
    assert post(server, "<m:GetFolder/>", auth=(USER.name, "nope")).status_code == 401
    assert post(server, "<m:GetFolder/>", path="/owa/").status_code == 404
    r = requests.post(
        server.url, data=b"x", headers={"Authorization": "Bearer eyJ0eXAiOi.test-token"}, timeout=30
    )
    assert xml(r).findtext(f".//{{{E}}}ResponseCode") == "ErrorSchemaValidation"  # authenticated


def test_injected_busy_fault_carries_back_off(server: EwsServer) -> None:
    server.faults.arm(Kind.BUSY, op="GetFolder", backoff_ms=1234)
    r = post(
        server,
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>',
    )
    assert r.status_code == 500
    assert xml(r).findtext(f".//{{{E}}}ResponseCode") == "ErrorServerBusy"
    value = xml(r).find(f".//{{{T}}}Value")
    assert value is not None and value.get("Name") == "BackOffMilliseconds" and value.text == "1234"


def test_sync_folder_hierarchy(server: EwsServer, ews_schema_dir: Path) -> None:
    validator = EnvelopeValidator(ews_schema_dir)
    ask = (
        "<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape>"
        "</m:FolderShape>{state}</m:SyncFolderHierarchy>"
    )
    first = xml(post(server, ask.format(state="")))
    assert validator.violations(first) == []
    created = [e.findtext(f"{{{T}}}DisplayName") for e in first.iter(f"{{{T}}}Folder")]
    assert "Inbox" in created and "Top of Information Store" in created
    state = first.findtext(f".//{{{M}}}SyncState")
    post(server, '<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/>'
         "</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>New</t:DisplayName></t:Folder>"
         "</m:Folders></m:CreateFolder>")  # fmt: skip
    second = xml(post(server, ask.format(state=f"<m:SyncState>{state}</m:SyncState>")))
    assert validator.violations(second) == []
    assert [e.findtext(f"{{{T}}}DisplayName") for e in second.iter(f"{{{T}}}Folder")] == ["New"]
