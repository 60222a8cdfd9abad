"""Tokens for Microsoft Graph through MSAL.

App-only: client credentials with a secret or a certificate (one app, many
mailboxes). Delegated: the device-code flow, with MSAL's token cache in
$XDG_CACHE_HOME/pstkit (0600) so the user signs in once.

MSAL gets our httpx client as its `http_client` (MSAL accepts any object with
requests-like get/post), so one TLS setting (`--ca-file`) covers the token
endpoint and Graph. Entra's AADSTS codes become one-line AuthErrors here.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal

from pstkit.converters.graph.client import transport_error
from pstkit.errors import AuthError, UsageError
from pstkit.options import ConnectOptions, SecretSpec
from pstkit.secrets import resolve_secret

log = logging.getLogger("pstkit.graph")

GRAPH_RESOURCE = "https://graph.microsoft.com"
APP_SCOPES = [f"{GRAPH_RESOURCE}/.default"]
# Checked against the docs: importMime needs delegated Mail-Advanced.ReadWrite (application:
# Mail-Advanced.ReadWrite.All; both need admin consent); the PATCH that follows, the JSON
# fallback, folders and look-ups need Mail.ReadWrite. Contacts and calendars too: a PST's
# contacts and events go in as Graph contacts/events.
DELEGATED_SCOPES = [
    f"{GRAPH_RESOURCE}/{name}"
    for name in ("Mail.ReadWrite", "Mail-Advanced.ReadWrite", "Contacts.ReadWrite",
                 "Calendars.ReadWrite")
]  # fmt: skip

# AADSTS code -> what the user should be told.
AADSTS_HINTS = {
    90002: "tenant {tenant} not found: check the tenant id or domain (and the authority URL)",
    700016: "application {client} is not registered in tenant {tenant} (wrong tenant, or the "
    "app was never consented there)",
    7000215: "the client secret is wrong or expired",
    700027: "the certificate is not registered on application {client}",
    65001: "consent missing: an administrator must grant the app's Graph permissions "
    "(Mail.ReadWrite, Mail-Advanced.ReadWrite, Contacts.ReadWrite, Calendars.ReadWrite) "
    "in tenant {tenant}",
    70020: "the device code expired before sign-in finished",
    50126: "wrong user name or password",
}


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pstkit" / "msal-token-cache.json"


def _write_private(path: Path, text: str) -> None:
    """Write `text` readable by the owner only, atomically (temp file -> rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_cert(path: Path) -> dict[str, str]:
    """A PEM file holding the private key and the certificate, as MSAL wants them."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the client certificate {path}: {e}") from e
    key_end, cert_start = text.find("-----END"), text.find("-----BEGIN CERTIFICATE-----")
    if "PRIVATE KEY-----" not in text or cert_start < 0 or key_end < 0:
        raise UsageError(f"{path} must hold a PEM private key and a PEM certificate")
    return {"private_key": text, "public_certificate": text[cert_start:]}


class MsalHttp:
    """MSAL's `http_client` (requests-like get/post) on top of our httpx client.

    The one difference that matters: MSAL puts the certificate assertion in the
    form as bytes, which requests encodes as text and httpx would not.
    """

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> httpx.Response:
        return self._http.get(url, params=params, headers=headers)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **_: Any
    ) -> httpx.Response:
        if isinstance(data, dict):
            data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        return self._http.post(url, params=params, data=data, headers=headers)

    def close(self) -> None:
        """MSAL may close its client; ours belongs to the sink."""


class GraphAuth:
    """Hands out access tokens; thread-safe; never logs them."""

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        authority_base: str,
        http: httpx.Client,
        mode: str,
        credential: str | dict[str, str] | None = None,
        token_cache: Path | None = None,
        prompt: Callable[[str], None] | None = None,
        username: str = "",
    ) -> None:
        self._tenant, self._client = tenant, client_id
        self._mode, self._username = mode, username
        self._lock = threading.Lock()
        self._cache_path = token_cache
        self._cache = msal.SerializableTokenCache()
        self._prompt = prompt or (lambda text: print(text, file=sys.stderr, flush=True))
        authority = f"{authority_base.rstrip('/')}/{tenant}"
        try:
            self._app: Any = self._build(authority, client_id, http, credential)
        except ValueError as e:
            raise self._error(str(e), authority) from e
        except httpx.HTTPError as e:
            raise transport_error(authority, e) from e

    def _build(self, authority: str, client_id: str, http: httpx.Client, credential: Any) -> Any:
        # Instance discovery asks login.microsoftonline.com about the authority's
        # host; for a host MSAL does not know (a test server, a proxy) turn it off.
        known = urlsplit(authority).hostname in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS
        if self._mode == "device-code":
            self._load_cache()
            return msal.PublicClientApplication(
                client_id,
                authority=authority,
                http_client=MsalHttp(http),
                token_cache=self._cache,
                instance_discovery=known,
            )
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=authority,
            http_client=MsalHttp(http),
            instance_discovery=known,
        )

    def _error(self, text: str, where: str) -> AuthError:
        if "Unable to get authority configuration" in text:  # MSAL's words for AADSTS90002
            text = "AADSTS90002"
        for code, hint in AADSTS_HINTS.items():
            if f"AADSTS{code}" in text:
                return AuthError(where, hint.format(tenant=self._tenant, client=self._client))
        first = text.split(".", maxsplit=1)[0] if text else "unknown error"
        return AuthError(where, first)

    def _load_cache(self) -> None:
        if self._cache_path is not None and self._cache_path.exists():
            try:
                self._cache.deserialize(self._cache_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                log.warning("ignoring unreadable token cache %s: %s", self._cache_path, e)

    def _save_cache(self) -> None:
        if self._cache_path is not None and self._cache.has_state_changed:
            _write_private(self._cache_path, self._cache.serialize())

    def token(self, *, fresh: bool = False) -> str:
        """A bearer token; `fresh` drops the cached one (after a 401)."""
        with self._lock:
            try:
                result = self._acquire(fresh)
            except httpx.HTTPError as e:
                raise transport_error(self._tenant, e) from e
            if "access_token" not in result:
                text = f"{result.get('error', '')}: {result.get('error_description', '')}"
                raise self._error(text, f"tenant {self._tenant}")
            self._save_cache()
            return str(result["access_token"])

    def _acquire(self, fresh: bool) -> dict[str, Any]:
        if self._mode != "device-code":
            if fresh:
                self._app.remove_tokens_for_client()
            return dict(self._app.acquire_token_for_client(APP_SCOPES))
        accounts = self._app.get_accounts(username=self._username or None) or (
            [] if self._username else self._app.get_accounts()
        )
        if accounts:
            got = self._app.acquire_token_silent(
                DELEGATED_SCOPES, account=accounts[0], force_refresh=fresh
            )
            if got and "access_token" in got:
                return dict(got)
        flow = self._app.initiate_device_flow(scopes=DELEGATED_SCOPES)
        if "user_code" not in flow:
            return dict(flow)
        self._prompt(str(flow["message"]))
        return dict(self._app.acquire_token_by_device_flow(flow))


# --- from ConnectOptions (used by the sink) ----------------------------------


def tls_verify(options: ConnectOptions) -> ssl.SSLContext | bool:
    if options.insecure:
        return False
    if options.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(options.ca_file))
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"cannot use CA file {options.ca_file}: {e}") from e


def auth_from_options(
    tenant: str, mailbox: str, authority: str, http: httpx.Client, options: ConnectOptions
) -> GraphAuth:
    if not options.client_id:
        raise UsageError(
            "Graph needs the application (client) id of your app registration",
            hint="give it with --client-id",
        )
    mode = options.auth if options.auth == "device-code" else "client-credentials"
    credential: str | dict[str, str] | None = None
    if mode == "client-credentials":
        if options.client_cert is not None:
            credential = read_cert(options.client_cert)
        else:
            spec = options.client_secret or SecretSpec(
                env="PSTKIT_CLIENT_SECRET", label="client secret"
            )
            credential = resolve_secret(spec, options.client_id)
    cache = options.extra.get("token_cache")
    return GraphAuth(
        tenant=tenant,
        client_id=options.client_id,
        authority_base=authority,
        http=http,
        mode=mode,
        credential=credential,
        username=mailbox,
        token_cache=cache_file() if cache is None else Path(cache).expanduser(),
    )
