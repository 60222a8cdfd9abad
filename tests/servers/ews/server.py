"""A protocol-level EWS server for tests: real HTTP, real SOAP, Microsoft's schema.

Every request is validated against ../shared/ews-schema (an invalid one gets
Exchange's ErrorSchemaValidation fault); every response is validated too and
any violation is recorded in `response_errors` (tests assert it stays empty).
Listens on 127.0.0.1 only, on a random port; Basic, Bearer and NTLM auth
(auth.py), chosen per server.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from lxml import etree

from tests.servers.ews import autodiscover, soap
from tests.servers.ews.auth import App, Authenticator, Conn, Denied
from tests.servers.ews.faults import FaultPlan, Kind
from tests.servers.ews.mailbox import Mailbox
from tests.servers.ews.ops import OPERATIONS, Context, RequestFault, User
from tests.servers.ews.schema import EnvelopeValidator

EWS_PATH = "/ews/exchange.asmx"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class Reply:
    """What the handler sends back: status, body, extra headers; or drop the connection."""

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        drop: bool = False,
        challenges: Iterable[str] = (),
    ) -> None:
        self.status, self.body, self.headers, self.drop = status, body, headers or {}, drop
        self.challenges = list(challenges)  # one WWW-Authenticate header each, as IIS sends


class EwsServer:
    def __init__(
        self,
        schema_dir: Path,
        tls: ssl.SSLContext | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        auth: Iterable[str] = ("basic", "bearer"),
        port: int = 0,  # 0: any free port; autodiscover by domain needs 443
    ) -> None:
        self.validator = EnvelopeValidator(schema_dir)
        self.mailboxes: dict[str, Mailbox] = {}
        self.users: dict[str, User] = {}
        self.tokens: dict[str, str] = {}  # bearer token -> user name
        self.auth = Authenticator(self.users, self.tokens, auth)
        self.faults = FaultPlan()
        self.response_errors: list[str] = []
        self.operations: list[str] = []  # every operation received, in order
        #: seconds added to every answer, as a stand-in for a real server's work and
        #: network (the benchmark uses it to measure client-side concurrency)
        self.latency = 0.0
        self.now = now
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.ews = self  # type: ignore[attr-defined]
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.ews_path = EWS_PATH  # where EWS answers; autodiscover publishes it
        self.autodiscover = autodiscover.AutodiscoverService(
            self.mailboxes, lambda host: f"{self.scheme}://{host}{self.ews_path}"
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/EWS/Exchange.asmx"

    def add_mailbox(self, smtp: str, language: str = "en") -> Mailbox:
        box = Mailbox(smtp.lower(), language)
        self.mailboxes[box.smtp] = box
        return box

    def add_user(self, user: User, token: str | None = None) -> None:
        self.users[user.name] = user
        if token:
            self.tokens[token] = user.name

    def add_app(self, app: App) -> None:
        """An Entra app that may get tokens from `token_url` (client credentials)."""
        self.auth.apps[app.client_id] = app

    @property
    def authority(self) -> str:
        """What `?authority=` must say for this server's token endpoint."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> EwsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.auth.close()

    def __enter__(self) -> EwsServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- request processing (called from handler threads) ----------------

    def authenticate(self, header: str, conn: Conn) -> User | Reply:
        found = self.auth.check(header, conn)
        return Reply(401, b"", challenges=found.challenges) if isinstance(found, Denied) else found

    def handle(self, user: User, body: bytes) -> Reply:
        limit = self.faults.max_request_bytes
        if limit is not None and len(body) > limit:
            return Reply(413, b"")  # IIS/WCF request limit: no SOAP, just the status
        try:
            env = etree.fromstring(body, PARSER)
        except etree.XMLSyntaxError as e:
            return Reply(500, soap.schema_fault(e.lineno or 0, e.offset or 0, str(e)))
        bad = self.validator.violations(env)
        if bad:
            return Reply(500, soap.schema_fault(bad[0].line, bad[0].column, bad[0].message))
        body_el = env.find(f"{{{soap.SOAP}}}Body")
        request = (
            None if body_el is None else next((c for c in body_el if isinstance(c.tag, str)), None)
        )
        if request is None:
            return Reply(500, soap.schema_fault(0, 0, "empty soap:Body"))
        op = etree.QName(request).localname
        with self._lock:
            self.operations.append(op)
        fault = self.faults.take(op)
        early = _early_fault_reply(fault.kind, fault.backoff_ms) if fault else None
        if early is not None:
            return early
        reply = self._dispatch(user, env, request, op)
        if fault is not None and fault.kind is Kind.EMPTY_ANSWER:
            return Reply(200, soap.empty_echo(op))
        reply.drop = fault is not None and fault.kind is Kind.DROP_AFTER
        return reply

    def _dispatch(self, user: User, env: etree._Element, request: etree._Element, op: str) -> Reply:
        principal = self._principal(user, env)
        if isinstance(principal, Reply):
            return principal
        handler = OPERATIONS.get(op)
        if handler is None:
            return Reply(
                500, soap.fault("ErrorInvalidOperation", f"{op} is not implemented here", [])
            )
        ctx = Context(user, principal, self.mailboxes, self.faults, self.now)
        try:
            out = soap.envelope(handler(ctx, request))
        except RequestFault as e:
            return Reply(200, soap.gromox_fault("SOAP:Client", str(e)))
        problems = self.validator.violations(out)
        if problems:
            with self._lock:
                self.response_errors.extend(f"{op}: {p.message}" for p in problems)
        return Reply(200, etree.tostring(out, xml_declaration=True, encoding="utf-8"))

    def _principal(self, user: User, env: etree._Element) -> Mailbox | Reply:
        header = env.find(f"{{{soap.SOAP}}}Header")
        imp = None if header is None else header.find(soap.t("ExchangeImpersonation"))
        if imp is None and not user.mailbox:  # an app-only token acts only through impersonation
            return Reply(
                500,
                soap.fault(
                    "ErrorInvalidExchangeImpersonationHeaderData",
                    "ExchangeImpersonation SOAP header must be present for this type of "
                    "OAuth token.",
                    [],
                ),
            )
        if imp is None:
            own = self.mailboxes.get(user.mailbox.lower())
            return (
                own
                if own is not None
                else Reply(
                    500, soap.fault("ErrorNonExistentMailbox", f"No mailbox for {user.name}", [])
                )
            )
        address = (
            (
                imp.findtext(f".//{soap.t('PrimarySmtpAddress')}")
                or imp.findtext(f".//{soap.t('SmtpAddress')}")
                or imp.findtext(f".//{soap.t('PrincipalName')}")  # a UPN: ours are addresses
                or ""
            )
            .strip()
            .lower()
        )
        if not address and not (imp.findtext(f".//{soap.t('SID')}") or "").strip():
            # "when a caller does not specify a UPN, an e-mail address, or a user SID …
            # or … the values are empty" (ResponseCode page)
            return Reply(
                500,
                soap.fault(
                    "ErrorInvalidExchangeImpersonationHeaderData",
                    "The impersonation header names no user.",
                    [],
                ),
            )
        if not user.impersonation:
            return Reply(
                500,
                soap.fault(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                    [],
                ),
            )
        box = self.mailboxes.get(address)
        if box is None:
            return Reply(
                500,
                soap.fault(
                    "ErrorNonExistentMailbox",
                    f"The SMTP address has no mailbox associated with it: {address}",
                    [],
                ),
            )
        return box


def _early_fault_reply(kind: Kind, backoff_ms: int | None) -> Reply | None:
    if kind is Kind.BUSY:
        return Reply(500, soap.server_busy(backoff_ms))
    if kind is Kind.HTTP_503:
        return Reply(503, b"Service Unavailable")
    if kind is Kind.HTTP_429:
        return Reply(429, b"Too Many Requests", {"Retry-After": "1"})
    if kind is Kind.HTTP_401:
        return Reply(401, b"", {"WWW-Authenticate": 'Basic realm="127.0.0.1"'})
    if kind is Kind.DROP_BEFORE:
        return Reply(drop=True)
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as IIS does

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests stay quiet

    def setup(self) -> None:
        super().setup()
        self.conn = Conn()  # one handler per TCP connection: NTLM state lives here

    def do_POST(self) -> None:
        ews: EwsServer = self.server.ews  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        if ews.faults.cut_now():
            self.rfile.read(min(length, 1024))  # a little of it, then the line goes dead
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = self.rfile.read(length)
        if ews.auth.is_token_path(self.path):
            status, answer, headers = ews.auth.token_endpoint(self.path, body)
            self._send(Reply(status, answer, headers))
            return
        path = self.path.split("?")[0].lower()
        serves_ad = ews.autodiscover.enabled and path == autodiscover.PATH
        if path != ews.ews_path.lower() and not serves_ad:
            self._send(Reply(404, b"Not Found"))
            return
        if ews.latency:
            time.sleep(ews.latency)
        user = ews.authenticate(self.headers.get("Authorization", ""), self.conn)
        if serves_ad and not isinstance(user, Reply):  # same users as EWS
            self._send(Reply(*ews.autodiscover.handle(body, self.headers.get("Host", ""))))
            return
        self._send(user if isinstance(user, Reply) else ews.handle(user, body))

    def do_GET(self) -> None:
        self._send(Reply(404, b"Not Found"))

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        ctype = "text/xml; charset=utf-8" if reply.body.startswith(b"<?xml") else "text/plain"
        self.send_header("Content-Type", reply.headers.pop("Content-Type", ctype))
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        for challenge in reply.challenges:
            self.send_header("WWW-Authenticate", challenge)
        self.end_headers()
        self.wfile.write(reply.body)
