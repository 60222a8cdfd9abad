"""The test server's world: a tenant, apps, users, mailboxes, tokens, faults.

Plain in-memory objects behind one lock; the HTTP layer (`app.py`) and the
OAuth layer (`oauth.py`) read and change them. Tests reach in through
`GraphServer.state` to set permissions, inject faults and inspect mailboxes.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Graph's well-known folder names and their English display names.
WELL_KNOWN = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "drafts": "Drafts",
    "junkemail": "Junk Email",
    "archive": "Archive",
    "outbox": "Outbox",
}

# Application permissions ("roles") and delegated ones ("scp").
MAIL_RW = "Mail.ReadWrite"
MAIL_ADV_APP = "Mail-Advanced.ReadWrite.All"
MAIL_ADV_DELEGATED = "Mail-Advanced.ReadWrite"
CONTACTS_RW = "Contacts.ReadWrite"
CALENDARS_RW = "Calendars.ReadWrite"


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str
    well_known: str | None = None


@dataclass
class Attachment:
    id: str
    name: str
    content_type: str
    data: bytes
    is_inline: bool = False
    content_id: str | None = None


@dataclass
class Message:
    id: str
    folder_id: str
    props: dict[str, Any]  # Graph JSON properties as stored
    ext: dict[str, str]  # normalised extended-property id -> value
    mime: bytes | None  # exact bytes for importMime items
    created_via: str  # "importMime" | "json"
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class Mailbox:
    user_id: str
    upn: str
    folders: dict[str, Folder] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    recent: deque[float] = field(default_factory=deque)
    uploads: deque[tuple[float, int]] = field(default_factory=deque)
    pim: Any = None  # contacts and calendars: a pim.PimBox, made at first use


@dataclass
class AppReg:
    client_id: str
    secret: str | None = None
    cert_sha256: str | None = None  # base64url x5t#S256 of the registered certificate
    cert_public_pem: bytes | None = None
    roles: set[str] = field(
        default_factory=lambda: {MAIL_RW, MAIL_ADV_APP, CONTACTS_RW, CALENDARS_RW}
    )
    delegated: set[str] = field(
        default_factory=lambda: {MAIL_RW, MAIL_ADV_DELEGATED, CONTACTS_RW, CALENDARS_RW}
    )
    admin_consented: bool = True


@dataclass
class Token:
    value: str
    tenant: str
    client_id: str
    roles: frozenset[str]
    scopes: frozenset[str]
    user_id: str | None
    expires: float


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scopes: list[str]
    approved_by: str | None = None  # user id once the user signed in
    polls: int = 0


@dataclass
class Fault:
    """Answer the next `count` matching requests with `status`.

    `when="before"`: the request is refused without effect (429, 503, 401…).
    `when="after"`: the request takes effect, then the reply is `status` or,
    with status 0, the connection is dropped: the ambiguous case.
    """

    status: int
    count: int = 1
    code: str = ""
    retry_after: int | None = None
    when: str = "before"
    path_contains: str = ""
    method: str = ""
    every: int = 1  # hit every n-th matching request
    seen: int = 0


@dataclass
class Stall:
    """Park requests at a chosen moment, so a test can kill its client there.

    Every request matching one of `targets` ((method, path part) pairs), from
    the (`skip`+1)-th on, waits for `release`; `reached` tells the test one is
    parked. `when="before"`: then it is refused without effect (503);
    `when="after"`: it is carried out first, and after the wait its connection
    is dropped (the client never learns the outcome).
    """

    targets: list[tuple[str, str]]
    when: str = "before"
    skip: int = 0
    seen: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return any(m == method and p in path for m, p in self.targets)


@dataclass
class Limits:
    max_request_bytes: int = 4 * 1024 * 1024
    mailbox_concurrency: int = 4
    mailbox_requests: int = 10_000
    mailbox_window: float = 600.0
    upload_bytes: int = 150 * 1024 * 1024
    upload_window: float = 300.0
    page_size: int = 10
    max_header_bytes: int = 64 * 1024  # our cap on internetMessageHeaders (see README)
    delay: float = 0.0  # seconds each Graph request takes (to make overlaps certain)


class State:
    def __init__(self, tenant_id: str = "", tenant_domain: str = "contoso.example") -> None:
        self.lock = threading.RLock()
        self.tenant_id = tenant_id or "11111111-2222-3333-4444-555555555555"
        self.tenant_domain = tenant_domain
        self.apps: dict[str, AppReg] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.tokens: dict[str, Token] = {}
        self.device_codes: dict[str, DeviceCode] = {}
        self.faults: list[Fault] = []
        self.limits = Limits()
        self.hold: threading.Event | None = None  # requests wait for it once admitted
        self.stall: Stall | None = None  # park requests at a chosen moment (kill tests)
        self.import_mime: int | None = None  # None = available; 404/403/400 = refused
        self.token_lifetime = 3600
        self.uploads: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self.counters: dict[str, int] = {}
        self.server_errors: list[str] = []  # tracebacks of bugs in the server itself
        self._ids = itertools.count(1)

    # --- set-up ----------------------------------------------------------

    def new_id(self, prefix: str = "AAMk") -> str:
        return f"{prefix}{next(self._ids):08d}{secrets.token_hex(4)}"

    def add_app(self, client_id: str, **kw: Any) -> AppReg:
        app = AppReg(client_id, **kw)
        self.apps[client_id] = app
        return app

    def add_mailbox(self, upn: str) -> Mailbox:
        box = Mailbox(user_id=self.new_id("uid-"), upn=upn)
        root = Folder(self.new_id("AQMk"), "Top of Information Store", "", "msgfolderroot")
        box.folders[root.id] = root
        for wk, name in WELL_KNOWN.items():
            f = Folder(self.new_id("AQMk"), name, root.id, wk)
            box.folders[f.id] = f
        self.mailboxes[box.user_id] = box
        return box

    def mailbox(self, ident: str) -> Mailbox | None:
        low = ident.lower()
        for box in self.mailboxes.values():
            if box.user_id == ident or box.upn.lower() == low:
                return box
        return None

    def bump(self, name: str) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    # --- faults ----------------------------------------------------------

    def inject(self, status: int, count: int = 1, **kw: Any) -> Fault:
        fault = Fault(status, count, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str, when: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count <= 0 or fault.when != when:
                    continue
                if fault.path_contains not in path or (fault.method and fault.method != method):
                    continue
                fault.seen += 1
                if fault.seen % fault.every:
                    continue
                fault.count -= 1
                return fault
        return None

    # --- folders ---------------------------------------------------------

    def folder(self, box: Mailbox, ident: str) -> Folder | None:
        low = ident.lower()
        for f in box.folders.values():
            if f.id == ident or (f.well_known is not None and f.well_known == low):
                return f
        return None

    def children(self, box: Mailbox, parent_id: str) -> list[Folder]:
        return [f for f in box.folders.values() if f.parent_id == parent_id]

    def in_folder(self, box: Mailbox, folder_id: str) -> list[Message]:
        return [m for m in box.messages.values() if m.folder_id == folder_id]

    def count_in(self, box: Mailbox, folder_id: str) -> int:
        return len(self.in_folder(box, folder_id))

    def now(self) -> float:
        return time.time()
