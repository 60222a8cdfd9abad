"""How the EWS sink logs in: Basic, NTLM, a given OAuth2 token, or OAuth2 client credentials.

With ews_client.py the only module that imports exchangelib. The pure part
(which scheme, which token URL and scope, what an Entra error means) is kept
apart from the two exchangelib subclasses that carry it out:

- `ClientCredentials`: app-only OAuth2 against any Entra authority (sovereign
  clouds) and any resource (hybrid on-premises Exchange), with a token that
  is renewed by asking again, never by a refresh grant;
- `TokenAwareFailFast`: exchangelib's FailFast, except that a 401 saying the
  bearer token is invalid (expired early, revoked) fetches a new token and
  resends, which is safe: a request answered 401 was never executed.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import requests.exceptions
from exchangelib import (
    Credentials,
    FailFast,
    Identity,
    OAuth2AuthorizationCodeCredentials,
    OAuth2Credentials,
)
from exchangelib.errors import ErrorInvalidExchangeImpersonationHeaderData
from oauthlib.oauth2 import (  # type: ignore[import-untyped]
    OAuth2Error,
    OAuth2Token,
    TokenExpiredError,
)

from pstkit.errors import AuthError, ConnectError, UsageError
from pstkit.location import Location
from pstkit.options import ConnectOptions, SecretSpec
from pstkit.secrets import resolve_secret

# Same parameter name and default as the Graph converter's (converters must not
# import each other, so the constant is copied).
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
EXCHANGE_ONLINE = "outlook.office365.com"
#: consecutive "invalid token" 401s answered by fetching a new token; then it is an auth error
TOKEN_RETRIES = 3
PASSWORD_AUTH = ("basic", "ntlm", "password", "auto")
CLIENT_CREDENTIALS = ("oauth2", "client-credentials")


# --- pure ------------------------------------------------------------------------------


def token_url(authority: str, tenant: str) -> str:
    return f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token"


def default_scope(host: str) -> str:
    """The app-only scope for an EWS host.

    Exchange Online names its resource after the EWS host in every cloud:
    outlook.office365.com, outlook.office365.us (GCC High), partner.outlook.cn
    (21Vianet). Hybrid Modern Authentication registers the on-premises
    external URL (https://mail.contoso.com) as a service principal name of
    the "Office 365 Exchange Online" app, so the on-premises host is the
    resource there too. See learn.microsoft.com: "Configure Exchange Server
    on-premises to use Hybrid Modern Authentication" (the SPN step), and
    "Authenticate an EWS application by using OAuth" for the /.default scope.
    """
    return f"https://{(host or EXCHANGE_ONLINE).lower()}/.default"


def offered_schemes(header: str) -> frozenset[str]:
    """Auth scheme names in a (comma-joined) WWW-Authenticate header, lower case."""
    out = set()
    for part in header.split(","):
        word = part.strip().split(" ", 1)[0]
        if word and "=" not in word:
            out.add(word.lower())
    return frozenset(out)


def password_scheme(wanted: str, offered: frozenset[str], where: str) -> str:
    """basic or ntlm: what the user asked for, or what the server offers (NTLM first,
    as Outlook does). Asking for one the server does not offer is a clear error,
    not a 401 after a handshake that could never succeed."""
    has_ntlm = bool(offered & {"ntlm", "negotiate"})
    if wanted in ("password", "auto"):
        return "ntlm" if has_ntlm else "basic"
    if offered and wanted == "ntlm" and not has_ntlm:
        raise AuthError(where, f"the server does not offer NTLM (it offers {_names(offered)})")
    if offered and wanted == "basic" and "basic" not in offered:
        raise AuthError(where, f"the server does not offer Basic (it offers {_names(offered)})")
    return wanted


def _names(offered: frozenset[str]) -> str:
    return ", ".join(sorted(offered))


def entra_error(where: str, client_id: str, error: str, description: str) -> AuthError:
    """An Entra token-endpoint refusal as one line; the AADSTS number kept for searching."""
    aadsts = description.split(":", 1)[0] if description.startswith("AADSTS") else ""
    code = f" ({aadsts})" if aadsts else ""
    if aadsts == "AADSTS7000215" or (error == "invalid_client" and not aadsts):
        why = "the client secret was refused"
    elif aadsts == "AADSTS700016" or error == "unauthorized_client":
        why = f"application {client_id} is unknown in this tenant"
    elif aadsts == "AADSTS90002" or error == "invalid_tenant":
        why = "the tenant was not found (check --tenant and ?authority=)"
    elif error in ("invalid_scope", "invalid_resource"):
        why = "the scope was refused (check ?scope=)"
    else:
        why = f"the token endpoint refused the login: {error or 'unknown error'}"
    return AuthError(where, why + code)


def login_error(
    where: str, client_id: str, e: OAuth2Error | ErrorInvalidExchangeImpersonationHeaderData
) -> AuthError:
    if isinstance(e, OAuth2Error):
        return entra_error(where, client_id, e.error or "", e.description or "")
    return AuthError(
        where, "this app-only login acts only through impersonation: add --impersonate "
        "--mailbox ADDRESS",
    )  # fmt: skip


def impersonation_denied(where: str, mailbox: str, app: bool) -> AuthError:
    if app:  # Exchange Online: the app permission, or a policy that leaves this mailbox out
        return AuthError(
            where, f"the application may not reach {mailbox} (it needs full_access_as_app "
            "with admin consent, and no application access policy excluding this mailbox)",
        )  # fmt: skip
    return AuthError(
        where, f"this account may not impersonate {mailbox} "
        "(it needs the ApplicationImpersonation role)",
    )  # fmt: skip


def unreachable(
    token_url: str | None, e: requests.exceptions.ConnectionError
) -> ConnectError | None:
    """An unreachable token endpoint, named as such (and not retried); None if `e` is not that."""
    url = getattr(e.request, "url", None) or ""
    if not token_url or not url.startswith(token_url):
        return None
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(e))
    return ConnectError(
        f"the token endpoint {token_url}", errno.group(0) if errno else type(e).__name__
    )


# --- exchangelib ----------------------------------------------------------------------


class ClientCredentials(OAuth2Credentials):  # type: ignore[misc]
    """OAuth2 client credentials with our token URL and scope."""

    def __init__(
        self, client_id: str, client_secret: str, tenant_id: str, url: str, scope: str, mailbox: str
    ) -> None:
        # The identity makes exchangelib impersonate `mailbox` in its own calls too
        # (server version guessing), which an app token cannot make otherwise.
        super().__init__(
            client_id, client_secret, tenant_id=tenant_id,
            identity=Identity(primary_smtp_address=mailbox),
        )  # fmt: skip
        self._url = url
        self._scope = scope

    @property
    def token_url(self) -> str:
        return self._url

    @property
    def scope(self) -> list[str]:
        return [self._scope]

    def session_params(self) -> dict[str, Any]:
        # No auto_refresh_url: requests-oauthlib would answer an expired token with a
        # refresh_token grant, which client credentials never get (Entra refuses it,
        # AADSTS900144). Without it the expiry raises TokenExpiredError before anything
        # is sent, and exchangelib renews the session with a new client-credentials token.
        return {"token": self.access_token}


class TokenAwareFailFast(FailFast):  # type: ignore[misc]
    """FailFast, but a bearer token refused as invalid is replaced and the request resent."""

    def __init__(self) -> None:
        super().__init__()
        self._strikes = 0
        self._lock = threading.Lock()

    def raise_response_errors(self, response: Any) -> None:
        challenge = response.headers.get("WWW-Authenticate", "")
        with self._lock:
            if response.status_code != 401:
                self._strikes = 0
            elif "invalid_token" in challenge and self._strikes < TOKEN_RETRIES:
                self._strikes += 1
                # exchangelib retires this session (which forgets the app token and
                # fetches a new one) and its service loop resends on TokenExpiredError.
                raise TokenExpiredError()
        super().raise_response_errors(response)


def credentials(
    location: Location, options: ConnectOptions, offered: str, where: str
) -> tuple[Any, str]:
    """exchangelib credentials and auth type for what the options ask for."""
    auth = options.auth.lower()
    if options.token is not None and auth in ("auto", "oauth2"):
        token = resolve_secret(options.token, where)
        bearer = OAuth2Token({"access_token": token, "token_type": "Bearer"})
        return OAuth2AuthorizationCodeCredentials(access_token=bearer), "OAuth 2.0"
    wants_app = options.client_secret is not None or options.client_id is not None
    if wants_app and auth in ("auto", *CLIENT_CREDENTIALS):
        return client_credentials(location, options, where), "OAuth 2.0"
    if auth in CLIENT_CREDENTIALS:
        raise UsageError(
            "ews with OAuth2 needs --token-file/--token-command, or --client-id, --tenant "
            "and a client secret ($PSTKIT_CLIENT_SECRET, --client-secret-env/--client-secret-file)"
        )
    if auth not in PASSWORD_AUTH:
        raise UsageError(f"ews cannot use --auth {options.auth} (use basic, ntlm or oauth2)")
    scheme = password_scheme(auth, offered_schemes(offered), where)
    password = resolve_secret(options.password, where)
    return Credentials(location.user, password), "NTLM" if scheme == "ntlm" else "basic"


def client_credentials(location: Location, options: ConnectOptions, where: str) -> Any:
    if not options.client_id or not options.tenant:
        raise UsageError("ews client credentials need --client-id and --tenant")
    if not options.impersonate or not options.mailbox:
        # Exchange answers an app-only token without ExchangeImpersonation with
        # ErrorInvalidExchangeImpersonationHeaderData: say so before connecting.
        raise UsageError(
            "an app-only (client credentials) login reaches mailboxes only through "
            "impersonation: add --impersonate --mailbox ADDRESS"
        )
    # The same default as the Graph sink: the secret never has to be in argv.
    spec = options.client_secret or SecretSpec(env="PSTKIT_CLIENT_SECRET", label="client secret")
    secret = resolve_secret(spec, where)
    params = location.params
    url = token_url(params.get("authority", DEFAULT_AUTHORITY), options.tenant)
    scope = params.get("scope") or default_scope(location.host)
    return ClientCredentials(options.client_id, secret, options.tenant, url, scope, options.mailbox)
