"""IMAP connections for the IMAP source (and the IMAP sink): connect, TLS,
login, reconnect, and the translation of library errors into pstkit.errors.

Shared by every IMAP converter so TLS and credential handling are decided
in one place: TLS is verified by default (`--ca-file` adds a CA,
`--insecure` turns verification off), plain `imap://` upgrades with STARTTLS
and refuses to send a password in clear unless `--insecure`.
"""

from __future__ import annotations

import ast
import contextlib
import imaplib
import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

from imapclient import IMAPClient, SocketTimeout
from imapclient import exceptions as imap_exc

from pstkit.converters.imap.tlsprobe import greet_or_probe
from pstkit.converters.imap.tlsread import FastTlsClient
from pstkit.errors import AuthError, ConnectError, ConnectorError, TLSError, TransientError
from pstkit.location import Location
from pstkit.options import ConnectOptions
from pstkit.secrets import resolve_secret

T = TypeVar("T")

#: What a broken or closed connection raises from inside imaplib/imapclient.
DROPPED = (imaplib.IMAP4.abort, imap_exc.IMAPClientAbortError, OSError, EOFError)


class _Secret:
    """Holds a password/token for reconnects; never printed."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


def tls_context(options: ConnectOptions) -> ssl.SSLContext:
    if options.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    cafile = str(options.ca_file) if options.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as e:
        raise TLSError(options.ca_file, f"cannot load --ca-file: {e}") from e


class ImapConnector:
    """Opens logged-in IMAPClient connections to one account."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.location = location
        self.options = options
        self.key = location.display()
        self.implicit_tls = location.scheme == "imaps"
        self.port = location.port or (993 if self.implicit_tls else 143)
        self._ctx = tls_context(options)
        self._secret: _Secret | None = None

    # --- public -------------------------------------------------------------

    def open(self) -> IMAPClient:
        """Connect and log in once; errors become pstkit.errors."""
        client = self._connect()
        try:
            self._secure(client)
            self._login(client)
        except BaseException:
            _close_quietly(client)
            raise
        return client

    def reopen(self, attempts: int = 6, first_delay: float = 0.5) -> IMAPClient:
        """Reconnect after a drop: retried with capped exponential backoff,
        since a restarting server refuses connections for a moment. Bad
        credentials and TLS failures are final, never retried. All attempts
        together get the --timeout budget: a stalled server (it accepts TCP but
        never greets) fails after about one timeout, not after one per attempt."""
        return retry(self.open, attempts, first_delay, budget=self.options.timeout)

    # --- steps --------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        host, timeout = self.location.host, self.options.timeout
        try:
            if self.implicit_tls:
                client = self._client(timeout)
            else:  # an implicit-TLS port would keep silent until the timeout: probe it
                tls_url = f"imaps://{self.location.user}@{host}:{self.port}"
                client = greet_or_probe(self._client, host, self.port, timeout, self.key,
                                        tls_url)  # fmt: skip
        except ssl.SSLError as e:
            raise TLSError(self.key, _ssl_reason(e)) from e
        except socket.gaierror as e:
            raise ConnectError(self.key, f"unknown host {host!r}") from e
        except TimeoutError as e:
            raise ConnectError(self.key, f"no answer within {self.options.timeout:g} s "
                               "(the server accepts connections but does not respond)") from e
        except (OSError, imaplib.IMAP4.error) as e:
            raise ConnectError(self.key, _os_reason(e)) from e
        # imapclient sets imaplib's debug level to 5, which makes imaplib
        # build the repr() of every fetched literal for a log line that is
        # then dropped: measured 4x slower FETCH. We never want that trace
        # (it would also contain the LOGIN command), so switch it off.
        client._imap.debug = 0
        # Commands are written whole (sink_wire); without Nagle's wait a small write
        # after a literal goes out at once instead of after the server's delayed ACK.
        with contextlib.suppress(OSError):
            client._imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Keep raw (modified UTF-7) names: we decode them ourselves and
        # EXAMINE exactly the name the server listed.
        client.folder_encode = False
        # INTERNALDATE as an aware datetime: imapclient's default turns it into naive
        # local time, which `utc()` would then take for UTC (hours off outside UTC).
        client.normalise_times = False
        return client

    def _client(self, greeting_wait: float) -> IMAPClient:
        """Connected, greeted within `greeting_wait`; later reads get the --timeout."""
        return FastTlsClient(self.location.host, port=self.port, ssl=self.implicit_tls,
                             ssl_context=self._ctx,
                             timeout=SocketTimeout(greeting_wait, self.options.timeout))

    def _secure(self, client: IMAPClient) -> None:
        if self.implicit_tls:
            return
        offered = _has_cap(client, "STARTTLS")
        if offered and self.options.starttls:
            try:
                client.starttls(self._ctx)
            except ssl.SSLError as e:
                raise TLSError(self.key, _ssl_reason(e)) from e
            except (*DROPPED, imaplib.IMAP4.error) as e:
                raise TLSError(self.key, f"STARTTLS failed: {e}") from e
            return
        if not self.options.insecure:
            why = "offers no STARTTLS" if not offered else "STARTTLS was turned off"
            raise TLSError(self.key, f"server {why}; refusing to send credentials in clear",
                           hint="use imaps://, or --insecure if this network is trusted")

    def _login(self, client: IMAPClient) -> None:
        mech = self._mechanism(client)
        user = self.location.user
        secret = self._get_secret(mech)
        try:
            if mech == "password":
                client.login(user, secret.value)
            elif mech == "xoauth2":
                client.oauth2_login(user, secret.value)
            else:
                client.oauthbearer_login(user, secret.value)
        except imap_exc.LoginError as e:
            text = _one_line(e)
            if "[UNAVAILABLE]" in text.upper():
                raise TransientError(self.key, text) from e
            raise AuthError(self.key, text) from e
        except DROPPED as e:
            raise TransientError(self.key, f"connection lost during login: {e}") from e

    def _mechanism(self, client: IMAPClient) -> str:
        auth = self.options.auth.lower()
        if auth in ("password", "xoauth2", "oauthbearer"):
            return auth
        if auth != "auto":
            raise AuthError(self.key, f"IMAP does not support --auth {auth}")
        if self.options.token is None:
            return "password"
        return "xoauth2" if _has_cap(client, "AUTH=XOAUTH2") else "oauthbearer"

    def _get_secret(self, mech: str) -> _Secret:
        if self._secret is None:
            spec = self.options.password if mech == "password" else self.options.token
            if spec is None:
                raise AuthError(self.key, f"{mech} login needs a token (--token-file/-command)")
            self._secret = _Secret(resolve_secret(spec, self.key))
        return self._secret


def retry(fn: Callable[[], T], attempts: int, first_delay: float,
          budget: float | None = None) -> T:
    """Call `fn`, retrying ConnectError/TransientError (not TLS or auth), at most
    `attempts` times and, with a `budget`, not starting an attempt after `budget`
    seconds have passed."""
    delay = first_delay
    start = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (TLSError, AuthError):
            raise
        except (ConnectError, TransientError):
            spent = time.monotonic() - start
            if attempt == attempts or (budget is not None and spent + delay >= budget):
                raise
        time.sleep(delay)
        delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


def _has_cap(client: IMAPClient, cap: str) -> bool:
    try:
        return bool(client.has_capability(cap))
    except DROPPED as e:
        raise ConnectError(client.host, f"connection lost: {e}") from e


#: seconds a LOGOUT may take before the socket is just dropped: a healthy server answers
#: at once, and a silent one must not hold up the end of a run (Ctrl-C, issue 15.9)
LOGOUT_WAIT = 1.0


def _close_quietly(client: IMAPClient) -> None:
    with contextlib.suppress(OSError, AttributeError):
        client._imap.sock.settimeout(LOGOUT_WAIT)
    try:
        client.logout()
    except (*DROPPED, imaplib.IMAP4.error, imap_exc.IMAPClientError):
        try:
            client.shutdown()
        except (*DROPPED, imaplib.IMAP4.error):
            pass


def cut(client: IMAPClient) -> None:
    """Drop the connection without LOGOUT: for a client another thread is blocked in
    (a LOGOUT would wait behind that thread's read; the cut wakes it with an error)."""
    with contextlib.suppress(OSError, AttributeError):
        client._imap.sock.shutdown(socket.SHUT_RDWR)


def close(client: IMAPClient) -> None:
    """LOGOUT, or just drop the socket if the connection is already broken."""
    _close_quietly(client)


def _ssl_reason(e: ssl.SSLError) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({e.verify_message})"
    if "WRONG_VERSION_NUMBER" in str(e):  # a plain-text greeting where a TLS hello was due
        return "this port does not speak TLS: try imap:// (STARTTLS) or port 993"
    return _one_line(e)


def _os_reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    return _one_line(e)


def _one_line(e: BaseException) -> str:
    """The server's text: imapclient wraps it as str(bytes), `b'[AUTH…] …'`."""
    arg = e.args[0] if len(e.args) == 1 else e
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    if len(text) > 2 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raw = None
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", "replace")
    return " ".join(text.split()) or type(e).__name__


def dropped(key: str, e: BaseException) -> ConnectorError:
    """A connection that broke mid-command, as a retryable error."""
    return TransientError(key, f"connection lost: {_one_line(e)}")
