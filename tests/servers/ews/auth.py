"""Who is calling the EWS test server: Basic, Bearer (with Entra's token endpoint) and NTLM.

NTLM is real: pyspnego's acceptor checks the NTLMv2 response against the
user's password. As IIS does it, NTLM authenticates the TCP *connection*
(`Conn`, one per handler), so a new connection must authenticate again.
`Negotiate` is offered beside `NTLM`, like IIS; a raw NTLM token under the
Negotiate name is accepted (that is what requests_ntlm sends).

The token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials
only) answers like Entra ID, error JSON and AADSTS numbers included; its
error shape is the Graph test server's `OAuthError`. The rest of
tests/servers/graph/oauth.py does not fit: it is bound to Graph's state and
accepts only the Graph scope.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import spnego
import spnego.exceptions

from tests.servers.ews.ops import User
from tests.servers.graph.core import OAuthError

SCHEMES = frozenset({"basic", "bearer", "ntlm"})
FULL_ACCESS = "full_access_as_app"  # the EWS application permission in Entra
TOKEN_SUFFIX = "/oauth2/v2.0/token"
NTLM_SIGNATURE = b"NTLMSSP\x00"
EXPIRED = 'Bearer error="invalid_token", error_description="The access token has expired"'

#: status, body, headers of a token-endpoint answer
Answer = tuple[int, bytes, dict[str, str]]


@dataclass(frozen=True)
class App:
    """An Entra app registration as Exchange sees it."""

    client_id: str
    secret: str
    roles: frozenset[str] = frozenset({FULL_ACCESS})  # admin-consented application permissions
    # Exchange RBAC: ApplicationImpersonation (on-premises) or no restricting
    # application access policy (Exchange Online).
    impersonation: bool = True


@dataclass
class Token:
    principal: User
    uses_left: int | None  # server-side expiry: EWS requests this token may still make


@dataclass
class Conn:
    """Per TCP connection: the NTLM handshake in flight, then the authenticated user."""

    user: User | None = None
    ntlm: Any = None  # spnego acceptor between NEGOTIATE and AUTHENTICATE


@dataclass
class Denied:
    """Answer 401 with these WWW-Authenticate values, one header each."""

    challenges: list[str] = field(default_factory=list)


class Authenticator:
    # NTLM_USER_FILE is process-wide: one NTLM step at a time across all servers.
    _ntlm_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, users: dict[str, User], static: dict[str, str], schemes: Iterable[str]):
        self.schemes = frozenset(s.lower() for s in schemes)
        if not self.schemes <= SCHEMES:
            raise ValueError(f"unknown auth schemes {sorted(self.schemes - SCHEMES)}")
        self.users = users
        self.static = static  # bearer token -> user name, given by tests
        self.tokens: dict[str, Token] = {}  # issued by the token endpoint
        self.apps: dict[str, App] = {}
        self.tenant = "contoso.example"
        self.tenant_id = "5b2a8f4e-6c1d-4e7a-9a3f-1c2d3e4f5a6b"
        #: the resource an app token must name (`<resource>/.default`)
        self.resource = "https://127.0.0.1"
        #: None: issued tokens never go stale; n: Exchange refuses them after n EWS requests
        self.token_uses: int | None = None
        self.expires_in = 3599
        self.token_requests: list[dict[str, str]] = []  # form fields, the secret left out
        self.ntlm_logins = 0  # completed NTLM handshakes (one per authenticated connection)
        self._lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="ews-ntlm-")

    def close(self) -> None:
        self._dir.cleanup()

    def challenges(self) -> list[str]:
        out = []
        if "ntlm" in self.schemes:
            out += ["Negotiate", "NTLM"]  # IIS's order with Windows authentication on
        if "basic" in self.schemes:
            out.append('Basic realm="127.0.0.1"')
        if "bearer" in self.schemes:
            out.append('Bearer authorization_uri="https://login.microsoftonline.com/common"')
        return out

    def check(self, header: str, conn: Conn) -> User | Denied:
        if not header:
            return conn.user if conn.user is not None else Denied(self.challenges())
        conn.user = None  # a new Authorization header starts afresh
        scheme, _, value = header.partition(" ")
        kind = scheme.lower()
        if kind in ("ntlm", "negotiate") and "ntlm" in self.schemes:
            return self._ntlm(scheme, value.strip(), conn)
        if kind == "basic" and "basic" in self.schemes:
            return self._basic(value.strip())
        if kind == "bearer" and "bearer" in self.schemes:
            return self._bearer(value.strip())
        return Denied(self.challenges())

    def _basic(self, value: str) -> User | Denied:
        try:
            name, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return Denied(self.challenges())
        user = self.users.get(name)
        if user is not None and secrets.compare_digest(user.password, password):
            return user
        return Denied(self.challenges())

    def _bearer(self, value: str) -> User | Denied:
        name = self.static.get(value)
        if name is not None and name in self.users:
            return self.users[name]
        with self._lock:
            token = self.tokens.get(value)
            if token is None or (token.uses_left is not None and token.uses_left <= 0):
                return Denied([EXPIRED])
            if token.uses_left is not None:
                token.uses_left -= 1
            return token.principal

    # --- NTLM ---------------------------------------------------------------------

    def _ntlm(self, scheme: str, value: str, conn: Conn) -> User | Denied:
        try:
            blob = base64.b64decode(value)
        except ValueError:
            return Denied(self.challenges())
        if not blob.startswith(NTLM_SIGNATURE) or len(blob) < 12:
            return Denied(self.challenges())  # SPNEGO-wrapped or Kerberos: not offered here
        kind = int.from_bytes(blob[8:12], "little")
        with self._user_file_set():
            if kind == 1:  # NEGOTIATE -> CHALLENGE, on this connection
                conn.ntlm = spnego.server(
                    protocol="ntlm", service="http", options=spnego.NegotiateOptions.use_ntlm
                )
                out = conn.ntlm.step(blob) or b""
                return Denied([f"{scheme} {base64.b64encode(out).decode()}"])
            if kind != 3 or conn.ntlm is None:
                return Denied(self.challenges())
            acceptor, conn.ntlm = conn.ntlm, None
            try:
                acceptor.step(blob)
            except spnego.exceptions.SpnegoError:
                return Denied(self.challenges())  # wrong password or unknown user
        user = self._user_named(acceptor.client_principal or "")
        if user is None:
            return Denied(self.challenges())
        conn.user = user
        with self._lock:
            self.ntlm_logins += 1
        return user

    @contextlib.contextmanager
    def _user_file_set(self) -> Iterator[None]:
        """NTLM_USER_FILE points at this server's users while pyspnego reads it, then
        is put back: other code in the test process never sees it."""
        with self._ntlm_lock:
            before = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = str(self._user_file())
            try:
                yield
            finally:
                if before is None:
                    del os.environ["NTLM_USER_FILE"]
                else:
                    os.environ["NTLM_USER_FILE"] = before

    def _user_file(self) -> Path:
        """pyspnego's Heimdal format, DOMAIN:USER:PASSWORD; UPNs have no domain."""
        lines = []
        for user in self.users.values():
            domain, sep, name = user.name.rpartition("\\")
            if user.password and ":" not in user.password:
                lines.append(f"{domain if sep else ''}:{name}:{user.password}")
        path = Path(self._dir.name) / "ntlm-users"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _user_named(self, principal: str) -> User | None:
        wanted = principal.lstrip("\\").casefold()
        return next((u for u in self.users.values() if u.name.casefold() == wanted), None)

    # --- the token endpoint ---------------------------------------------------------

    def is_token_path(self, path: str) -> bool:
        return path.split("?", maxsplit=1)[0].endswith(TOKEN_SUFFIX)

    def token_endpoint(self, path: str, body: bytes) -> Answer:
        tenant = path.split("?", maxsplit=1)[0][: -len(TOKEN_SUFFIX)].strip("/")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        try:
            payload = self._issue(tenant, form)
        except OAuthError as e:
            r = e.response()
            return r.status, r.body, r.headers
        return 200, json.dumps(payload).encode(), {"Content-Type": "application/json"}

    def _issue(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        if tenant.lower() not in (self.tenant, self.tenant_id, "organizations"):
            raise OAuthError(
                400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make "
                "sure you have the correct tenant ID and are signing into the correct cloud.",
            )  # fmt: skip
        app = self._app(form)
        scope = form.get("scope", "").strip()
        if not scope.endswith("/.default"):
            raise OAuthError(
                400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not "
                "valid. Client credential flows must have a scope value with /.default suffixed "
                "to the resource identifier (application ID URI).",
            )  # fmt: skip
        resource = scope[: -len("/.default")].rstrip("/")
        if resource.lower() != self.resource.lower():
            raise OAuthError(
                400, "invalid_resource", 500011, f"The resource principal named {resource} was "
                f"not found in the tenant named {self.tenant}.",
            )  # fmt: skip
        principal = User(f"app:{app.client_id}", "", "", impersonation=app.impersonation)
        value = "at-" + secrets.token_urlsafe(32)
        with self._lock:
            if FULL_ACCESS in app.roles:  # Exchange ignores a token without the EWS role
                self.tokens[value] = Token(principal, self.token_uses)
        return {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "ext_expires_in": self.expires_in,
            "access_token": value,
        }

    def _app(self, form: dict[str, str]) -> App:
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError(
                400, "unauthorized_client", 700016, f"Application with identifier "
                f"'{client_id}' was not found in the directory '{self.tenant}'.",
            )  # fmt: skip
        grant = form.get("grant_type", "")
        if grant == "refresh_token":  # what requests-oauthlib's auto refresh would send
            raise OAuthError(
                400, "invalid_request", 900144, "The request body must contain the following "
                "parameter: 'refresh_token'.",
            )  # fmt: skip
        if grant != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", 70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )  # fmt: skip
        secret = form.get("client_secret", "")
        if not secrets.compare_digest(secret.encode(), app.secret.encode()):
            raise OAuthError(
                401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                "secret being sent in the request is the client secret value, not the client "
                f"secret ID, for a secret added to app '{client_id}'.",
            )  # fmt: skip
        return app
