"""The HTTPS server: TLS, routing, bearer tokens, permissions, limits, faults.

One process-local server per fixture on 127.0.0.1 and a random port. Every
Graph request passes, in this order: injected "before" fault, bearer token,
4 MB request cap, mailbox lookup, permission, per-mailbox concurrency (4) and
request-rate limits, the route, injected "after" fault.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.servers.graph import batch, oauth, pim, routes
from tests.servers.graph.core import GraphError, Request, Response
from tests.servers.graph.state import (
    CALENDARS_RW,
    CONTACTS_RW,
    MAIL_ADV_APP,
    MAIL_ADV_DELEGATED,
    MAIL_RW,
    Fault,
    Mailbox,
    Stall,
    State,
    Token,
)
from tests.servers.graph.tls import TlsFiles, make_tls

DEFAULT_CODES = {
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    413: ("RequestEntityTooLarge", "The request is larger than 4 MB."),
    429: ("TooManyRequests", "Too many requests, please retry later."),
    500: ("UnknownError", "An internal server error occurred."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    graph: GraphServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Recorded, not printed: the fixture fails the test on any error that is
        # not the client hanging up or refusing our certificate.
        error = sys.exc_info()[1]
        if not isinstance(error, ssl.SSLError | ConnectionError | TimeoutError):
            with self.graph.state.lock:
                self.graph.state.server_errors.append(traceback.format_exc())

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        # Handshake in the handler thread, so one slow client cannot stall accept().
        return self.graph.ssl.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        graph = self.server.graph
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        segs = [unquote(s) for s in parts.path.split("/") if s]
        req = Request(
            self.command,
            parts.path,
            segs,
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            graph.base,
        )
        resp = graph.handle(req)
        with graph.state.lock:
            graph.state.log.append((time.time(), req.method, req.path, resp.status))
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may be gone already (killed)
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class GraphServer:
    """Start with `GraphServer(tmpdir).start()`; stop with `.stop()`."""

    def __init__(self, directory: Path, tls: TlsFiles | None = None) -> None:
        self.tls = tls or make_tls(directory)
        self.state = State()
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.graph = self
        self.port = self._httpd.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    def start(self) -> GraphServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def location(self, mailbox: str, tenant: str | None = None) -> str:
        return (
            f"graph://{tenant or self.state.tenant_id}/{mailbox}"
            f"?authority={self.base}&graph={self.base}/v1.0"
        )

    # --- request handling ------------------------------------------------

    def handle(self, req: Request) -> Response:
        stall = self._stalled(req)
        if stall is not None and stall.when == "before":
            _park(stall)
            return GraphError(503, *DEFAULT_CODES[503]).response("stalled")
        resp = self._handle(req)
        if stall is not None:
            _park(stall)
            return Response(0, drop=True)
        return resp

    def _stalled(self, req: Request) -> Stall | None:
        with self.state.lock:
            stall = self.state.stall
            if stall is None or not stall.matches(req.method, req.path):
                return None
            stall.seen += 1
            return stall if stall.seen > stall.skip else None

    def _handle(self, req: Request) -> Response:
        rid = str(uuid.uuid4())
        try:
            if req.segments[1:] == ["$batch"] and req.method == "POST":
                return self._batch(req)
            if req.segments[:1] in (["v1.0"], ["beta"]):
                return self._graph(req)
            if req.segments[:1] == ["upload"] and len(req.segments) == 2:
                return routes.upload_chunk(self.state, req, req.segments[1])
            if req.segments:
                return oauth.handle(self.state, req)
            raise GraphError(404, "NotFound", "Unknown path.")
        except GraphError as e:
            return e.response(rid)

    def _batch(self, req: Request) -> Response:
        self._token(req)
        if len(req.body) > self.state.limits.max_request_bytes:
            raise GraphError(413, *DEFAULT_CODES[413])

        def one(sub: Request) -> Response:
            resp = self.handle(sub)
            return Response(504, b"", {}) if resp.drop else resp

        return batch.run(req, req.segments[0], one)

    def _graph(self, req: Request) -> Response:
        st = self.state
        fault = st.take_fault(req.method, req.path, "before")
        if fault is not None:
            raise _fault_error(fault)
        token = self._token(req)
        if len(req.body) > st.limits.max_request_bytes:
            raise GraphError(413, *DEFAULT_CODES[413])
        version, rest = req.segments[0], req.segments[1:]
        box, rest = self._mailbox(token, rest)
        _check_permission(token, box, rest, req.method)
        self._enter(box, len(req.body) if req.method in ("POST", "PUT", "PATCH") else 0)
        try:
            if st.hold is not None:
                st.hold.wait(30)
            if st.limits.delay:
                time.sleep(st.limits.delay)
            if rest[:1] and rest[0] in pim.ROOTS:  # contacts and calendars
                resp = pim.dispatch(st, req, box, rest)
            else:
                resp = routes.dispatch(st, req, box, version, rest)
        finally:
            with st.lock:
                box.in_flight -= 1
        after = st.take_fault(req.method, req.path, "after")
        if after is not None:
            return (
                Response(0, drop=True) if after.status == 0 else _fault_error(after).response("x")
            )
        return resp

    def _token(self, req: Request) -> Token:
        auth = req.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", challenge)
        with self.state.lock:
            tok = self.state.tokens.get(auth[7:].strip())
        if tok is None or tok.value.startswith("rt-"):
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed, there are no dots (.).",
                challenge,
            )
        if tok.expires < time.time():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
                challenge,
            )
        return tok

    def _mailbox(self, token: Token, rest: list[str]) -> tuple[Mailbox, list[str]]:
        if rest[:1] == ["me"]:
            if token.user_id is None:
                raise GraphError(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            return self.state.mailboxes[token.user_id], rest[1:]
        if rest[:1] != ["users"] or len(rest) < 3:
            raise GraphError(
                400,
                "BadRequest",
                f"Resource not found for the segment '{rest[0] if rest else ''}'.",
            )
        box = self.state.mailbox(rest[1])
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{rest[1]}' is invalid.")
        return box, rest[2:]

    def _enter(self, box: Mailbox, upload: int) -> None:
        st, now = self.state, time.time()
        with st.lock:
            _expire(box, now, st.limits.mailbox_window, st.limits.upload_window)
            if len(box.recent) >= st.limits.mailbox_requests:
                wait = box.recent[0] + st.limits.mailbox_window - now
                raise _throttled(st, "MailboxRequests", wait)
            if upload and sum(n for _t, n in box.uploads) + upload > st.limits.upload_bytes:
                wait = box.uploads[0][0] + st.limits.upload_window - now if box.uploads else 1
                raise _throttled(st, "MailboxUpload", wait)
            if box.in_flight >= st.limits.mailbox_concurrency:
                raise _throttled(st, "MailboxConcurrency", 1)
            box.in_flight += 1
            box.max_in_flight = max(box.max_in_flight, box.in_flight)
            box.recent.append(now)
            if upload:
                box.uploads.append((now, upload))


def _park(stall: Stall) -> None:
    stall.reached.set()
    stall.release.wait(60)


def _expire(box: Mailbox, now: float, window: float, upload_window: float) -> None:
    while box.recent and box.recent[0] < now - window:
        box.recent.popleft()
    while box.uploads and box.uploads[0][0] < now - upload_window:
        box.uploads.popleft()


def _throttled(state: State, limit: str, wait: float) -> GraphError:
    state.bump(f"throttled_{limit}")
    return GraphError(
        429,
        "ApplicationThrottled",
        f"Application is over its {limit} limit.",
        {"Retry-After": routes.retry_seconds(wait)},
    )


def _fault_error(fault: Fault) -> GraphError:
    code, message = DEFAULT_CODES.get(fault.status, ("UnknownError", "Injected failure."))
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    return GraphError(fault.status, fault.code or code, message, headers)


def _check_permission(token: Token, box: Mailbox, rest: list[str], method: str) -> None:
    denied = GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )
    if token.user_id is not None:
        if token.user_id != box.user_id or MAIL_RW not in token.scopes:
            raise denied
        advanced = MAIL_ADV_DELEGATED in token.scopes
    else:
        if MAIL_RW not in token.roles:
            raise denied
        advanced = MAIL_ADV_APP in token.roles
    if rest[-1:] == ["importMime"] and method == "POST" and not advanced:
        raise denied
    # Contacts and calendars need their own permission, as in Graph.
    granted = token.scopes if token.user_id is not None else token.roles
    if rest[:1] in (["contactFolders"], ["contacts"]) and CONTACTS_RW not in granted:
        raise denied
    if rest[:1] in (["calendar"], ["calendars"], ["events"]) and CALENDARS_RW not in granted:
        raise denied
