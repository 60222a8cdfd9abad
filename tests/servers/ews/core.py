"""What every EWS operation of the test server shares: the request context, per-item
errors, folder references and the indexed paging of FindItem/FindFolder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from lxml import etree

from tests.servers.ews.faults import FaultPlan
from tests.servers.ews.mailbox import Folder, Mailbox, is_our_id
from tests.servers.ews.soap import m, sub, t

_T = TypeVar("_T")


class RequestFault(Exception):
    """The whole request is refused with a SOAP fault (see FaultPlan.request_faults)."""


class EwsError(Exception):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class User:
    name: str
    password: str
    mailbox: str  # own SMTP address
    impersonation: bool = False  # holds the ApplicationImpersonation role
    delegate_to: frozenset[str] = frozenset()  # other mailboxes with FullAccess


@dataclass
class Context:
    user: User
    principal: Mailbox  # own or impersonated mailbox
    mailboxes: dict[str, Mailbox]
    faults: FaultPlan
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def mailbox(self, smtp: str) -> Mailbox:
        box = self.mailboxes.get(smtp.lower())
        if box is None:
            raise EwsError(
                "ErrorNonExistentMailbox", f"No mailbox with such guid or SMTP address {smtp}."
            )
        if box is not self.principal and box.smtp not in self.user.delegate_to:
            raise EwsError(
                "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return box

    def owner_of(self, object_id: str, missing: str = "ErrorItemNotFound") -> Mailbox:
        check_id(object_id)
        for box in self.mailboxes.values():
            if object_id in box.folders or object_id in box.items:
                return self.mailbox(box.smtp)
        raise EwsError(missing, "The specified object was not found in the store.")


def check_id(object_id: str) -> None:
    """An empty or malformed Id is refused before it is looked up: ErrorInvalidIdEmpty /
    ErrorInvalidIdMalformed (ResponseCode page); "Id is malformed." is the text of the
    error examples on the GetFolder, FindFolder, FindItem and ConvertId pages."""
    if not object_id:
        raise EwsError("ErrorInvalidIdEmpty", "Id must be non-empty.")
    if not is_our_id(object_id):
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")


def _kids(parent: etree._Element, tag: str) -> list[etree._Element]:
    """Element children of `parent`'s child `tag` (none if it is absent)."""
    found = parent.find(tag)
    return [] if found is None else [c for c in found if isinstance(c.tag, str)]


def _messages(op: str) -> tuple[etree._Element, etree._Element]:
    resp = etree.Element(m(f"{op}Response"))
    return resp, sub(resp, m("ResponseMessages"))


def _ok(messages: etree._Element, op: str) -> etree._Element:
    msg = sub(messages, m(f"{op}ResponseMessage"), ResponseClass="Success")
    sub(msg, m("ResponseCode"), "NoError")
    return msg


def _error(messages: etree._Element, op: str, err: EwsError) -> etree._Element:
    msg = sub(messages, m(f"{op}ResponseMessage"), ResponseClass="Error")
    sub(msg, m("MessageText"), err.text)
    sub(msg, m("ResponseCode"), err.code)
    sub(msg, m("DescriptiveLinkKey"), "0")
    return msg


def resolve_folder(ctx: Context, ref: etree._Element) -> tuple[Mailbox, Folder]:
    if ref.tag == t("DistinguishedFolderId"):
        address = ref.findtext(f"{t('Mailbox')}/{t('EmailAddress')}")
        box = ctx.mailbox(address) if address else ctx.principal
        folder = box.distinguished(ref.get("Id", ""))
    else:
        box = ctx.owner_of(ref.get("Id", ""), "ErrorFolderNotFound")  # checks the Id
        folder = box.folders.get(ref.get("Id", ""))
    if folder is None:
        raise EwsError(
            "ErrorFolderNotFound", "The specified folder could not be found in the store."
        )
    return box, folder


def _page(req: etree._Element, view_tag: str, total: int) -> tuple[int, int] | None:
    """(start, end) of the asked page; None without an indexed paging view."""
    view = req.find(m(view_tag))
    if view is None:
        return None
    offset = int(view.get("Offset", "0"))
    limit = int(view.get("MaxEntriesReturned", str(total)))
    return offset, min(total, offset + limit)


def _root(msg: etree._Element, page: tuple[int, int] | None, total: int) -> etree._Element:
    """RootFolder: IndexedPagingOffset is "the next index … when using an indexed paging
    view" (RootFolder page), so without one it is left out, as in the FindItem and
    FindFolder pages' response examples."""
    end = total if page is None else page[1]
    root = sub(msg, m("RootFolder"))
    if page is not None:
        root.set("IndexedPagingOffset", str(end))
    root.set("TotalItemsInView", str(total))
    root.set("IncludesLastItemInRange", "true" if end >= total else "false")
    return root


def _slice(found: list[_T], page: tuple[int, int] | None) -> list[_T]:
    return found if page is None else found[page[0] : page[1]]
