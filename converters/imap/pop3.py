"""POP3 source: the INBOX of a POP3 account, incremental by UIDL.

Layout (same in every converter): constants, pure helpers, the class, I/O
helpers.

Exact bytes: poplib's `retr()` strips every line ending and refuses lines
over 2,048 bytes (long base64 or HTML lines are common), so we send RETR
ourselves and read the multi-line reply as raw lines: each line keeps the
ending the server sent (CRLF, as RFC 1939 requires), a leading "." added by
dot-stuffing is removed, and the final ".\\r\\n" ends the message. For a
message the server stores with CRLF endings (Dovecot always serves CRLF) the
result is byte for byte what IMAP's BODY[] gives for the same message.

Deleting: only with `--delete-after-export`, only messages `committed()`
(durable in the store), and only at QUIT in `close()`, so a crash or a
dropped connection before QUIT deletes nothing (RFC 1939 UPDATE state).
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import ssl
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, BinaryIO

from pstkit.converters.imap.conn import retry, tls_context
from pstkit.converters.imap.tlsprobe import greet_or_probe
from pstkit.errors import AuthError, ConnectError, TLSError, TransientError
from pstkit.location import Location
from pstkit.model import Fetched, FetchResult, FolderInfo, MessageMeta, Role, Skipped, utc
from pstkit.options import ConnectOptions, FetchFilter
from pstkit.secrets import resolve_secret

if TYPE_CHECKING:
    from pstkit.protocols import Source

INBOX = FolderInfo(("INBOX",), Role.INBOX, "INBOX")
MAX_RECONNECTS = 5


# --- pure --------------------------------------------------------------------


def read_multiline(lines: Iterable[bytes]) -> bytes:
    """Raw reply lines (with their endings) up to the terminating "." line
    -> the message bytes, dot-stuffing removed, endings kept as sent."""
    out: list[bytes] = []
    for line in lines:
        if line in (b".\r\n", b".\n"):
            return b"".join(out)
        out.append(line[1:] if line.startswith(b".") else line)
    raise EOFError("connection closed inside a multi-line reply")


def trim_added_crlf(raw: bytes, listed_size: int) -> bytes:
    """A message that does not end in CRLF gets one added before the final
    "." (RFC 1939 needs it); the exact size from LIST tells us so."""
    if len(raw) == listed_size + 2 and raw.endswith(b"\r\n"):
        return raw[:-2]
    return raw


def received_from_headers(raw: bytes) -> datetime | None:
    """When the message arrived: the date of the topmost Received: header
    (added by the last hop, the mail server), else the Date: header."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    fields: dict[bytes, bytes] = {}
    name = b""
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and name:
            fields[name] += b" " + line.strip()
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name not in fields:  # the first (topmost) one wins
            fields[name] = value.strip()
    for key in (b"received", b"date"):
        value = fields.get(key, b"")
        text = value.rsplit(b";", 1)[-1] if key == b"received" else value
        when = _parse_date(text.decode("ascii", "replace"))
        if when is not None:
            return when
    return None


def _parse_date(text: str) -> datetime | None:
    try:
        return utc(parsedate_to_datetime(text.strip()))
    except (TypeError, ValueError, IndexError):
        return None


def parse_uidl(lines: Iterable[bytes]) -> list[tuple[int, str]]:
    out = []
    for line in lines:
        num, _, uid = line.decode("ascii", "replace").strip().partition(" ")
        if num.isdigit() and uid:
            out.append((int(num), uid))
    return out


def parse_list(lines: Iterable[bytes]) -> dict[int, int]:
    out = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            out[int(parts[0])] = int(parts[1])
    return out


@dataclass(frozen=True)
class _Entry:
    num: int
    uidl: str
    size: int


# --- the source ----------------------------------------------------------------


class Pop3Source:
    """Reads the INBOX of one POP3 account; see the module docstring."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.key = location.display()
        self.max_connections = 1  # POP3 locks the mailbox per session
        self._loc = location
        self._options = options
        self._implicit_tls = location.scheme == "pop3s"
        self._port = location.port or (995 if self._implicit_tls else 110)
        self._ctx = tls_context(options)
        self._secret: str | None = None
        self._pop: poplib.POP3 | None = None
        self._numbers: dict[str, int] = {}  # UIDL -> message number in this session
        self._deleted: set[str] = set()

    def folders(self) -> list[FolderInfo]:
        self._session()  # fail early on bad credentials
        return [INBOX]

    def fetch(self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
              known: Container[tuple[str, str]]) -> Iterator[FetchResult]:
        if folder.path != INBOX.path:
            return
        done: set[str] = set()
        failures = 0
        while True:
            try:
                yield from self._fetch_pass(filt, known, done)
                return
            except (OSError, EOFError, poplib.error_proto) as e:
                failures += 1
                self._drop()
                if failures > MAX_RECONNECTS or isinstance(e, poplib.error_proto):
                    raise TransientError(self.key, _text(e)) from e

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        """DELE the durable messages (applied at QUIT in close())."""
        if not self._options.delete_after_export:
            return
        pop = self._session()
        for uidl in source_ids:
            num = self._numbers.get(uidl)
            if num is None or uidl in self._deleted:
                continue
            try:
                pop.dele(num)
            except (OSError, EOFError, poplib.error_proto) as e:
                self._drop()  # the server rolls back this session's DELEs
                raise TransientError(self.key, f"DELE failed: {_text(e)}") from e
            self._deleted.add(uidl)

    def close(self) -> None:
        pop, self._pop = self._pop, None
        if pop is None:
            return
        with contextlib.suppress(OSError):  # a silent server must not hold up the end
            pop.sock.settimeout(1.0)
        try:
            pop.quit()
        except (OSError, EOFError, poplib.error_proto) as e:
            _close(pop)
            if self._deleted:
                raise TransientError(self.key, f"QUIT failed, nothing deleted: {_text(e)}") from e

    # --- one pass ---------------------------------------------------------

    def _fetch_pass(self, filt: FetchFilter, known: Container[tuple[str, str]],
                    done: set[str]) -> Iterator[FetchResult]:
        pop = self._session()
        entries = self._listing(pop)
        if filt.newest_first:
            entries.reverse()  # message numbers follow arrival order
        stored = [e.uidl for e in entries if ("", e.uidl) in known]
        # Already durable in the store (an earlier run, or one that died
        # before QUIT): delete now if asked to.
        self.committed(INBOX, stored)
        for e in entries:
            if e.uidl in done or ("", e.uidl) in known:
                continue
            result = self._one(pop, e, filt)
            done.add(e.uidl)
            if result is not None:
                yield result

    def _one(self, pop: poplib.POP3, e: _Entry, filt: FetchFilter) -> FetchResult | None:
        meta = MessageMeta(INBOX.path, e.uidl, "", size=e.size)
        if filt.max_size is not None and e.size > filt.max_size:
            return Skipped(meta, f"larger than --max-size ({filt.max_size} bytes)")
        if (filt.since or filt.before) and not _in_window(_top_date(pop, e.num), filt):
            return None
        try:
            raw = trim_added_crlf(_command_multiline(pop, f"RETR {e.num}"), e.size)
        except poplib.error_proto as err:
            return Skipped(meta, f"server refused to send it: {_text(err)}")
        meta = MessageMeta(INBOX.path, e.uidl, "", received=received_from_headers(raw),
                           size=len(raw))
        return Fetched(meta, raw)

    def _listing(self, pop: poplib.POP3) -> list[_Entry]:
        uidls = parse_uidl(pop.uidl()[1])
        sizes = parse_list(pop.list()[1])
        self._numbers = {u: n for n, u in uidls}
        return [_Entry(n, u, sizes.get(n, 0)) for n, u in uidls]

    # --- connection -------------------------------------------------------

    def _session(self) -> poplib.POP3:
        if self._pop is None:
            self._pop = retry(self._open, 3 if self._secret else 1, 0.5)
            self._deleted = set()
            self._listing(self._pop)
        return self._pop

    def _drop(self) -> None:
        pop, self._pop = self._pop, None
        if pop is not None:
            _close(pop)

    def _open(self) -> poplib.POP3:
        pop = self._connect()
        try:
            self._secure(pop)
            self._login(pop)
        except BaseException:
            _close(pop)
            raise
        return pop

    def _connect(self) -> poplib.POP3:
        host, t = self._loc.host, self._options.timeout
        try:
            if self._implicit_tls:
                return poplib.POP3_SSL(host, self._port, context=self._ctx, timeout=t)
            # an implicit-TLS port would keep silent until the timeout: probe it
            tls_url = f"pop3s://{self._loc.user}@{host}:{self._port}"
            return greet_or_probe(self._plain, host, self._port, t, self.key, tls_url)
        except ssl.SSLError as e:
            raise TLSError(self.key, _ssl_reason(e)) from e
        except socket.gaierror as e:
            raise ConnectError(self.key, f"unknown host {host!r}") from e
        except ConnectionRefusedError as e:
            raise ConnectError(self.key, "connection refused") from e
        except (OSError, EOFError, poplib.error_proto) as e:
            raise ConnectError(self.key, _text(e)) from e

    def _plain(self, greeting_wait: float) -> poplib.POP3:
        """Connected, greeted within `greeting_wait`; later reads get the --timeout."""
        pop = poplib.POP3(self._loc.host, self._port, timeout=greeting_wait)
        pop.sock.settimeout(self._options.timeout)
        return pop

    def _secure(self, pop: poplib.POP3) -> None:
        if self._implicit_tls:
            return
        try:
            offered = "STLS" in pop.capa()
        except poplib.error_proto:
            offered = False  # CAPA is optional (RFC 2449)
        if offered and self._options.starttls:
            try:
                pop.stls(self._ctx)
            except ssl.SSLError as e:
                raise TLSError(self.key, _ssl_reason(e)) from e
            return
        if not self._options.insecure:
            raise TLSError(self.key, "server offers no STLS; refusing to send credentials "
                           "in clear", hint="use pop3s://, or --insecure on a trusted network")

    def _login(self, pop: poplib.POP3) -> None:
        if self._secret is None:
            self._secret = resolve_secret(self._options.password, self.key)
        try:
            if self._options.auth.lower() == "apop":
                pop.apop(self._loc.user, self._secret)
            else:
                pop.user(self._loc.user)
                pop.pass_(self._secret)
        except poplib.error_proto as e:
            text = _text(e)
            if "[SYS/TEMP]" in text.upper() or "[IN-USE]" in text.upper():
                raise TransientError(self.key, text) from e
            raise AuthError(self.key, text) from e


# --- I/O helpers -----------------------------------------------------------------


def _command_multiline(pop: poplib.POP3, command: str) -> bytes:
    """Send a command whose answer is multi-line; return it raw (see module)."""
    pop.sock.sendall(command.encode("ascii") + b"\r\n")
    file: BinaryIO = pop.file
    status = file.readline()
    if not status.startswith(b"+"):
        raise poplib.error_proto(status.strip() or b"-ERR connection closed")
    return read_multiline(iter(file.readline, b""))


def _close(pop: poplib.POP3) -> None:
    with contextlib.suppress(OSError):  # already broken, e.g. a failed TLS handshake
        pop.close()


def _top_date(pop: poplib.POP3, num: int) -> datetime | None:
    """The arrival date from the headers alone (TOP n 0), to skip messages
    outside --since/--before without downloading them."""
    try:
        return received_from_headers(_command_multiline(pop, f"TOP {num} 0"))
    except poplib.error_proto:
        return None  # TOP is optional (RFC 1939): decide after RETR


def _in_window(when: datetime | None, filt: FetchFilter) -> bool:
    if when is None:
        return True  # unknown: keep it; the pipeline decides
    if filt.since is not None and when < utc(filt.since):
        return False
    return not (filt.before is not None and when >= utc(filt.before))


def _ssl_reason(e: ssl.SSLError) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({e.verify_message})"
    return _text(e)


def _text(e: BaseException) -> str:
    arg = e.args[0] if e.args else e
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split()) or type(e).__name__


if TYPE_CHECKING:
    _: type[Source] = Pop3Source
