"""Entra ID (Azure AD) v2.0 endpoints, enough for MSAL to run for real.

OpenID discovery, the token endpoint (client credentials with a secret or a
certificate assertion, device code, refresh token) and the device-code
endpoint. Error bodies and AADSTS numbers follow Microsoft's documentation
("Microsoft Entra authentication and authorization error codes").
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.graph.core import OAuthError, Request, Response, json_response
from tests.servers.graph.state import AppReg, DeviceCode, State, Token

GRAPH = "https://graph.microsoft.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OIDC_SCOPES = {"openid", "profile", "offline_access"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handle(state: State, req: Request) -> Response:
    tenant, rest = req.segments[0], "/".join(req.segments[1:])
    try:
        _check_tenant(state, tenant)
        if rest == "v2.0/.well-known/openid-configuration" and req.method == "GET":
            return json_response(200, discovery(state, req.base))
        form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        if rest == "oauth2/v2.0/token" and req.method == "POST":
            return json_response(200, _token(state, req, form))
        if rest == "oauth2/v2.0/devicecode" and req.method == "POST":
            return json_response(200, _device_code(state, form))
    except OAuthError as e:
        return e.response()
    return json_response(404, {"error": "not_found", "error_description": req.path})


def _check_tenant(state: State, tenant: str) -> None:
    if tenant.lower() not in (state.tenant_id, state.tenant_domain.lower(), "organizations"):
        raise OAuthError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )


def discovery(state: State, base: str) -> dict[str, Any]:
    t = f"{base}/{state.tenant_id}"
    return {
        "issuer": f"{t}/v2.0",
        "authorization_endpoint": f"{t}/oauth2/v2.0/authorize",
        "token_endpoint": f"{t}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{t}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{base}/{state.tenant_id}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "tenant_region_scope": "EU",
    }


def _token(state: State, req: Request, form: dict[str, str]) -> dict[str, Any]:
    grant = form.get("grant_type", "")
    app = _app(state, form.get("client_id", ""))
    if grant == "client_credentials":
        _authenticate_client(state, req, app, form)
        return _client_credentials(state, app, form.get("scope", ""))
    if grant == DEVICE_GRANT:
        return _device_token(state, app, form.get("device_code") or form.get("code", ""))
    if grant == "refresh_token":
        return _refresh(state, app, form.get("refresh_token", ""))
    raise OAuthError(
        400,
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant}'.",
    )


def _app(state: State, client_id: str) -> AppReg:
    app = state.apps.get(client_id)
    if app is None:
        raise OAuthError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{state.tenant_domain}'. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant. You "
            "might have sent your authentication request to the wrong tenant.",
        )
    return app


def _authenticate_client(state: State, req: Request, app: AppReg, form: dict[str, str]) -> None:
    if "client_secret" in form:
        if app.secret is None or not secrets.compare_digest(form["client_secret"], app.secret):
            raise OAuthError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
            )
        return
    if form.get("client_assertion_type") == ASSERTION_TYPE:
        audience = f"{req.base}/{state.tenant_id}/oauth2/v2.0/token"
        _verify_assertion(app, form.get("client_assertion", ""), audience)
        return
    raise OAuthError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: "
        "'client_assertion' or 'client_secret'.",
    )


def _verify_assertion(app: AppReg, assertion: str, audience: str) -> None:
    def fail(why: str) -> OAuthError:
        return OAuthError(
            401, "invalid_client", 700027, f"Client assertion failed signature validation: {why}"
        )

    if app.cert_public_pem is None:
        raise fail("no certificate is registered for this application")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as e:
        raise fail(str(e)) from e
    if str(header.get("x5t#S256", "")).rstrip("=") != (app.cert_sha256 or "").rstrip("="):
        raise OAuthError(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used "
            "to sign the client assertion is not registered on application.",
        )
    key = x509.load_pem_x509_certificate(app.cert_public_pem).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise fail("only RSA certificates are supported")
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["PS256", "RS256"],
            audience=audience,
            options={"require": ["exp", "iss", "sub"]},
        )
    except jwt.PyJWTError as e:
        raise fail(str(e)) from e
    if claims["iss"] != app.client_id or claims["sub"] != app.client_id:
        raise fail("iss and sub must be the client id")


def _client_credentials(state: State, app: AppReg, scope: str) -> dict[str, Any]:
    if scope.strip() != f"{GRAPH}/.default":
        raise OAuthError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    # Without admin consent Entra still issues a token, only without roles:
    # Graph then answers 403. That is what a client sees in real life.
    roles = frozenset(app.roles) if app.admin_consented else frozenset()
    tok = _issue(state, app.client_id, roles, frozenset(), None)
    return {
        "token_type": "Bearer",
        "expires_in": state.token_lifetime,
        "ext_expires_in": state.token_lifetime,
        "access_token": tok.value,
    }


def _graph_scopes(scopes: list[str]) -> set[str]:
    out = set()
    for s in scopes:
        if s.lower() in OIDC_SCOPES:
            continue
        out.add(s[len(GRAPH) + 1 :] if s.startswith(GRAPH + "/") else s)
    return out


def _device_code(state: State, form: dict[str, str]) -> dict[str, Any]:
    app = _app(state, form.get("client_id", ""))
    scopes = form.get("scope", "").split()
    code = DeviceCode(
        secrets.token_urlsafe(24), secrets.token_hex(4).upper(), app.client_id, scopes
    )
    with state.lock:
        state.device_codes[code.device_code] = code
    uri = "https://microsoft.com/devicelogin"
    return {
        "device_code": code.device_code,
        "user_code": code.user_code,
        "verification_uri": uri,
        "expires_in": 900,
        "interval": 1,
        "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
        f"{code.user_code} to authenticate.",
    }


def _device_token(state: State, app: AppReg, device_code: str) -> dict[str, Any]:
    with state.lock:
        code = state.device_codes.get(device_code)
        if code is None or code.client_id != app.client_id:
            raise OAuthError(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not "
                "valid. Device codes expire after 15 minutes.",
            )
        code.polls += 1
        if code.approved_by is None:
            raise OAuthError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        del state.device_codes[device_code]
    wanted = _graph_scopes(code.scopes)
    missing = sorted(wanted - app.delegated)
    if missing or not app.admin_consented:
        raise OAuthError(
            400,
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{app.client_id}' named 'pstkit'. Send an interactive authorization request for "
            f"this user and resource. (scopes: {' '.join(missing) or 'all'})",
        )
    return _user_tokens(state, app, code.approved_by, frozenset(wanted))


def _user_tokens(state: State, app: AppReg, user_id: str, scopes: frozenset[str]) -> dict[str, Any]:
    tok = _issue(state, app.client_id, frozenset(), scopes, user_id)
    box = state.mailboxes[user_id]
    refresh = "rt-" + secrets.token_urlsafe(24)
    with state.lock:
        state.tokens[refresh] = Token(
            refresh,
            state.tenant_id,
            app.client_id,
            frozenset(),
            scopes,
            user_id,
            tok.expires + 86400,
        )
    claims = {
        "aud": app.client_id,
        "iss": f"https://login.example/{state.tenant_id}/v2.0",
        "iat": int(state.now()),
        "exp": int(tok.expires),
        "oid": user_id,
        "sub": user_id,
        "tid": state.tenant_id,
        "preferred_username": box.upn,
        "name": box.upn,
    }
    id_token = ".".join(
        [b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(claims).encode()), ""]
    )
    return {
        "token_type": "Bearer",
        "scope": " ".join(sorted(f"{GRAPH}/{s}" for s in scopes)),
        "expires_in": state.token_lifetime,
        "ext_expires_in": state.token_lifetime,
        "access_token": tok.value,
        "refresh_token": refresh,
        "id_token": id_token,
        "client_info": b64url(json.dumps({"uid": user_id, "utid": state.tenant_id}).encode()),
    }


def _refresh(state: State, app: AppReg, refresh: str) -> dict[str, Any]:
    with state.lock:
        rt = state.tokens.pop(refresh, None)
    if rt is None or rt.client_id != app.client_id or rt.user_id is None:
        raise OAuthError(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        )
    return _user_tokens(state, app, rt.user_id, rt.scopes)


def _issue(
    state: State, client_id: str, roles: frozenset[str], scopes: frozenset[str], user_id: str | None
) -> Token:
    tok = Token(
        "at-" + secrets.token_urlsafe(32),
        state.tenant_id,
        client_id,
        roles,
        scopes,
        user_id,
        state.now() + state.token_lifetime,
    )
    with state.lock:
        state.tokens[tok.value] = tok
    state.bump("tokens_issued")
    return tok


def approve_device_code(state: State, user_code: str, upn: str) -> None:
    """What the user does in the browser: sign in and enter the code."""
    box = state.mailbox(upn)
    if box is None:
        raise KeyError(upn)
    with state.lock:
        for code in state.device_codes.values():
            if code.user_code == user_code:
                code.approved_by = box.user_id
                return
    raise KeyError(user_code)
