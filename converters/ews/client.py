"""The exchangelib edge of the EWS sink (exchangelib is imported only here and in
auth.py, discover.py, errors.py and wire.py; never in the sink's logic, converters/ews/sink.py).

`EwsClient` wraps one exchangelib Account and offers the few operations the
sink needs. Every exchangelib/requests exception is translated here into a
`pstkit.errors` class (those the retry logic needs are in ews/errors.py), so the
sink's logic (converters/ews/sink.py) never sees a third-party exception.

exchangelib runs with FailFast: retrying is the sink's job, because only the
sink knows how to check whether an unanswered CreateItem created anything.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests.adapters
import requests.exceptions
from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration
from exchangelib import errors as xerr
from exchangelib.folders import FolderCollection, known_folders
from exchangelib.properties import DistinguishedFolderId
from exchangelib.properties import Mailbox as XMailbox
from exchangelib.services import CreateFolder
from oauthlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from urllib3.exceptions import InsecureRequestWarning

from pstkit.converters.ews import auth as ews_auth
from pstkit.converters.ews import discover as ews_discover
from pstkit.converters.ews import props as ews_props
from pstkit.converters.ews.errors import (
    NOT_ABOUT_ITEMS,
    TRANSIENT,
    Refused,
    Throttled,
    fault_words,
    http_error,
    is_fault,
)
from pstkit.converters.ews.wire import (
    Archive,
    MimeCreateItem,
    anonymous_post,
    dropped,
    folder_spec,
    reason,
    register_props,
    verify_with,
)
from pstkit.errors import AuthError, ConnectError, ConnectorError, TLSError
from pstkit.itemfields import emails_text, utc_text
from pstkit.location import Location
from pstkit.model import Role
from pstkit.options import ConnectOptions
from pstkit.protocols import TargetItem

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderRef:
    id: str
    parent_id: str
    name: str
    total_count: int | None
    folder_class: str
    handle: Any  # exchangelib's folder object, opaque to the sink


@dataclass(frozen=True)
class ItemError:
    """One item refused inside an answered CreateItem."""

    code: str  # the EWS ResponseCode, e.g. ErrorMessageSizeExceeded
    message: str
    transient: bool


class EwsClient:
    """One mailbox, reached as `location` describes; safe to share between threads."""

    def __init__(self, location: Location, options: ConnectOptions, mailbox: str) -> None:
        self.where = location.display()
        self.mailbox = mailbox
        # exchangelib logs request headers (Authorization included) at DEBUG level:
        # keep its loggers quieter than that, whatever the application's level.
        for name in ("exchangelib", "requests_oauthlib"):
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() < logging.INFO:
                logger.setLevel(logging.INFO)
            # exchangelib logs failed requests with log.error and a multi-line dump; with
            # no handler, Python's last-resort handler would print it to stderr, under our
            # one-line error. pstkit reports the error itself.
            if not logger.handlers:
                logger.addHandler(logging.NullHandler())
        register_props()
        self._token_url: str | None = None  # set when the credentials fetch app tokens
        self._client_id = options.client_id or ""
        self._auth_type = ""  # named in a 401's message: which login was refused
        with self.translated():
            self._account = self._connect(location, options)

    # --- connection -------------------------------------------------------------

    def _connect(self, location: Location, options: ConnectOptions) -> Account:
        verify: bool | str = True
        if options.insecure:
            # Said once here, not by urllib3 on every request (six times for one run).
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
            log.warning("%s: the server's TLS certificate is not checked (--insecure)", self.where)
        if options.insecure or options.ca_file:
            verify = False if options.insecure else str(options.ca_file)
        url, credentials, auth_type = self._endpoint(location, options, verify)
        config = Configuration(
            service_endpoint=url,
            credentials=credentials,
            auth_type=auth_type,
            retry_policy=ews_auth.TokenAwareFailFast(),
            max_connections=max(1, options.connections),
        )
        access = IMPERSONATION if options.impersonate else DELEGATE
        account = Account(self.mailbox, config=config, autodiscover=False, access_type=access)
        # Nothing is sent before the first service call, so the protocol can still be
        # adjusted: exchangelib's default retry wait (10 s) would also hide whether
        # the server sent BackOffMilliseconds.
        account.protocol.RETRY_WAIT = 0
        # exchangelib shares one protocol (and session pool) per endpoint and
        # credentials in the process; make sure it allows our connections.
        wanted = max(1, options.connections)
        account.protocol.max_connections = max(account.protocol.max_connections, wanted)
        if verify is not True:
            verify_with(account.protocol, verify)
        return account

    def _endpoint(
        self, location: Location, options: ConnectOptions, verify: bool | str
    ) -> tuple[str, Any, str]:
        """The EWS URL (given, autodiscovered or guessed: see ews_discover) and its credentials."""

        def creds_for(offered: str) -> tuple[Any, str]:
            return self._credentials(location, options, offered)

        found = ews_discover.Discovery(location, options, self.mailbox, creds_for).endpoint()
        self.mailbox = found.mailbox  # after a RedirectAddress: the address that exists there
        return ews_discover.for_ews(found, lambda url: self._probe(url, verify, options), creds_for)

    def _probe(self, url: str, verify: bool | str, options: ConnectOptions) -> str:
        """One unauthenticated POST: clean TLS/404/network errors, and the auth schemes offered."""
        try:
            r = anonymous_post(url, verify, options.timeout)
        except requests.exceptions.SSLError as e:
            why = reason(e)
            tls = why if why.startswith("certificate verify failed") else "TLS handshake failed"
            raise TLSError(self.where, tls) from e
        except requests.exceptions.RequestException as e:
            raise ConnectError(self.where, reason(e)) from e
        if r.status_code == 404:
            raise ConnectError(self.where, "no EWS endpoint at this URL (HTTP 404)")
        return r.headers.get("WWW-Authenticate", "")

    def _credentials(
        self, location: Location, options: ConnectOptions, offered: str
    ) -> tuple[Any, str]:
        credentials, auth_type = ews_auth.credentials(location, options, offered, self.where)
        self._token_url = getattr(credentials, "token_url", None)
        self._auth_type = auth_type
        return credentials, auth_type

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Turn exchangelib's exceptions into pstkit's, with one-line messages."""
        try:
            yield
        except (xerr.UnauthorizedError, xerr.ErrorInvalidLicense) as e:
            how = f"{self._auth_type}, " if self._auth_type else ""
            raise AuthError(
                self.where, f"the server refused the credentials ({how}HTTP 401)"
            ) from e
        except (OAuth2Error, xerr.ErrorInvalidExchangeImpersonationHeaderData) as e:
            raise ews_auth.login_error(self.where, self._client_id, e) from e
        except requests.exceptions.ConnectionError as e:
            # exchangelib turns its own into ErrorTimeoutExpired: this is a token fetch.
            raise ews_auth.unreachable(self._token_url, e) or Throttled(self.where, str(e)) from e
        except xerr.ErrorImpersonateUserDenied as e:
            app = self._token_url is not None
            raise ews_auth.impersonation_denied(self.where, self.mailbox, app) from e
        except (xerr.ErrorNonExistentMailbox, xerr.ErrorMailboxMoveInProgress) as e:
            raise ConnectorError(f"mailbox {self.mailbox} does not exist at {self.where}") from e
        except xerr.ErrorAccessDenied as e:
            raise AuthError(self.where, f"no access to mailbox {self.mailbox} ({e})") from e
        except TRANSIENT as e:
            raise Throttled(self.where, str(e), getattr(e, "back_off", None) or None) from e
        except xerr.MalformedResponseError as e:  # a TransportError: must come first
            raise http_error(self.where, e) from e
        except xerr.TransportError as e:
            inner = e.__context__
            if isinstance(inner, xerr.ResponseMessageError):
                # exchangelib's server version guess wraps the real refusal
                # (ErrorImpersonateUserDenied…): report that one.
                with self.translated():
                    raise inner from None
            raise self._transport_error(e) from e
        except xerr.EWSError as e:
            raise ConnectorError(f"{self.where}: {type(e).__name__}: {e}") from e

    def _transport_error(self, e: xerr.TransportError) -> ConnectorError:
        drop = dropped(e)
        if drop is not None:  # SSLEOFError mid-request: the look-up before resend applies
            return Throttled(self.where, f"connection dropped ({reason(drop)})")
        return ConnectError(self.where, str(e))

    def _call(self, fn: Callable[[], T]) -> T:
        with self.translated():
            return fn()

    def restore_pool(self, size: int) -> None:
        """exchangelib shrinks the session pool on every busy answer; give it back."""
        protocol = self._account.protocol
        with contextlib.suppress(Exception):
            while protocol.session_pool_size < size:
                protocol.increase_poolsize()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._account.protocol.close()

    # --- folders ------------------------------------------------------------------

    def top(self) -> FolderRef:
        return self._call(lambda: _ref(self._account.msg_folder_root))

    def roles(self) -> dict[str, Role]:
        """Folder id -> role, in one GetFolder whatever the mailbox's language."""
        wanted = [
            (role, self._distinguished(dist)) for role, dist in ews_props.DISTINGUISHED.items()
        ]

        def resolve() -> dict[str, Role]:
            found = FolderCollection(
                account=self._account, folders=[f for _, f in wanted]
            ).resolve()
            return {
                f.id: role
                for (role, _), f in zip(wanted, found, strict=True)
                if not isinstance(f, Exception)
            }

        return self._call(resolve)

    def walk(self, top: FolderRef) -> list[FolderRef]:
        """Every folder below `top`, asked afresh (FindFolder, deep traversal);
        Folder.walk() would answer from exchangelib's cache."""

        def find() -> list[FolderRef]:
            deep = FolderCollection(account=self._account, folders=[top.handle])
            return [_ref(f) for f in deep.find_folders(depth="Deep")]

        return self._call(find)

    def role_folder(self, role: Role) -> FolderRef:
        def resolve() -> FolderRef:
            folder = self._distinguished(ews_props.DISTINGUISHED[role])
            (found,) = FolderCollection(account=self._account, folders=[folder]).resolve()
            if isinstance(found, Exception):
                raise found
            return _ref(found)

        return self._call(resolve)

    def _distinguished(self, dist: str) -> Any:
        classes = [
            c
            for c in vars(known_folders).values()
            if isinstance(c, type) and getattr(c, "DISTINGUISHED_FOLDER_ID", None) == dist
        ]
        fid = DistinguishedFolderId(id=dist, mailbox=XMailbox(email_address=self.mailbox))
        return (classes[0] if classes else Archive)(root=self._account.root, _distinguished_id=fid)

    # --- items ----------------------------------------------------------------------

    def create(
        self, target: FolderRef, items: list[tuple[bytes, ews_props.ItemProps]]
    ) -> list[str | ItemError]:
        """One CreateItem request; per item the new ItemId or why it was refused."""

        def send() -> list[str | ItemError]:
            service = MimeCreateItem(account=self._account, chunk_size=len(items))
            try:
                answers = list(service.call(items, target.handle, "SaveOnly", "SendToNone"))
            except (xerr.SOAPError, xerr.ResponseMessageError) as e:
                if isinstance(e, NOT_ABOUT_ITEMS):
                    raise
                if not is_fault(e):  # no answer we can read: the items may exist
                    raise Throttled(self.where, f"unreadable answer ({str(e)[:80]}…)") from e
                # A SOAP fault for the whole request (gromox: "E-3045: failed to find
                # proper type for node 'DistributionList'"): something in it was refused.
                raise Refused(self.where, fault_words(e)) from e
            out: list[str | ItemError] = []
            for res in answers:
                if isinstance(res, Exception):
                    out.append(ItemError(type(res).__name__, str(res), isinstance(res, TRANSIENT)))
                else:
                    out.append(res.id)
            return out

        return self._call(send)

    def find_by_keys(self, target: FolderRef, keys: list[str]) -> dict[str, str]:
        """Stamped source key -> ItemId, for those of `keys` already in `target`."""

        def find() -> dict[str, str]:
            found: dict[str, str] = {}
            for start in range(0, len(keys), 50):  # keep each restriction small
                query = target.handle.filter(pstkit_source_key__in=keys[start : start + 50])
                found.update((i.pstkit_source_key, i.id) for i in query.only("pstkit_source_key"))
            return found

        return self._call(find)

    def find_by_message_id(self, target: FolderRef, message_id: str) -> list[str]:
        return self._call(
            lambda: [i.id for i in target.handle.filter(message_id=message_id).only("id")]
        )

    def soft_delete(self, ids: list[str]) -> None:
        def delete() -> None:
            for res in self._account.bulk_delete(
                [(i, None) for i in ids], delete_type="SoftDelete"
            ):
                # Already gone (a retry after a lost answer) is what was wanted.
                if isinstance(res, Exception) and not isinstance(res, xerr.ErrorItemNotFound):
                    raise res

        self._call(delete)

    def typed_child(self, parent: FolderRef, name: str, folder_class: str) -> FolderRef:
        """The child `name` of `parent` (names compare without case), created unless it
        exists, with `folder_class` (IPF.Appointment/IPF.Contact/IPF.Task make a
        calendar/contacts/tasks folder). CreateFolder directly: Folder.save() relies on
        exchangelib's folder cache, which misses folders made by a request whose answer
        was lost."""

        def find() -> FolderRef | None:
            shallow = FolderCollection(account=self._account, folders=[parent.handle])
            found = shallow.find_folders(depth="Shallow")
            return next((_ref(f) for f in found if f.name.casefold() == name.casefold()), None)

        def find_or_create() -> FolderRef:
            existing = find()
            if existing is not None:
                return existing
            spec = folder_spec(self._account.root, name, folder_class)
            (made,) = CreateFolder(account=self._account).call(parent.handle, [spec])
            if isinstance(made, xerr.ErrorFolderExists):  # made meanwhile by another writer
                again = find()
                if again is not None:
                    return again
            if isinstance(made, Exception):
                raise made
            # Found again rather than taken from the answer: exchangelib then picks
            # the folder class (Calendar, Contacts…) whose item types it may list.
            return find() or FolderRef(made.id, parent.id, name, 0, folder_class, made)

        return self._call(find_or_create)

    def listing(self, target: FolderRef) -> list[TargetItem]:
        """Id, size, subject, Message-ID and stamped key of every item, in folders of any
        kind: calendar items and contacts have no InternetMessageId, and exchangelib
        refuses to ask for it in their folders. Contacts also give their display name and
        e-mail addresses, events their start and end, which verify compares
        (`pstkit.itemfields`)."""
        models = getattr(target.handle, "supported_item_models", ())
        # GetItem refuses a property of another item type ("a property that is only
        # available on calendar items is requested in a GetItem operation call for a
        # message": ResponseCode page), and exchangelib would ask every mail item for
        # them (meeting requests and generic folders' models have them): event and
        # contact fields only in calendar and contacts folders.
        typed = {"start": "IPF.Appointment", "end": "IPF.Appointment",
                 "display_name": "IPF.Contact", "email_addresses": "IPF.Contact"}  # fmt: skip
        known = {
            f.name
            for model in models
            for f in model.FIELDS
            if target.folder_class.startswith(typed.get(f.name, ""))
        }
        wanted = ("id", "size", "subject", "message_id", "pstkit_source_key",
                  "display_name", "email_addresses", "start", "end")  # fmt: skip
        fields = [f for f in wanted if f in known]
        return self._call(
            lambda: [
                TargetItem(
                    i.id,
                    getattr(i, "size", None),
                    getattr(i, "subject", None) or "",
                    getattr(i, "message_id", None) or "",
                    getattr(i, "pstkit_source_key", None) or "",
                    fields=_compared_fields(i),
                )
                for i in target.handle.all().only(*fields)
            ]
        )


def _compared_fields(item: Any) -> tuple[tuple[str, str], ...]:
    """What verify compares of a contact or event ("" where the item has none)."""
    kind = type(item).__name__
    if kind == "Contact":
        addresses = [getattr(a, "email", None) or "" for a in item.email_addresses or []]
        return (("name", getattr(item, "display_name", None) or ""),
                ("emails", emails_text(addresses)))
    if kind == "DistributionList":
        return (("name", getattr(item, "display_name", None) or ""),)
    if kind == "CalendarItem":
        # EWSDateTime refuses astimezone(UTC): go through the timestamp.
        return tuple((k, utc_text(datetime.fromtimestamp(v.timestamp(), UTC))
                      if isinstance(v, datetime) else "")
                     for k, v in (("start", item.start), ("end", item.end)))  # fmt: skip
    return ()


def _ref(folder: Any) -> FolderRef:
    parent = folder.parent_folder_id.id if folder.parent_folder_id else ""
    return FolderRef(
        folder.id, parent, folder.name or "", folder.total_count, folder.folder_class or "", folder
    )
