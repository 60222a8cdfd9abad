"""EWS logins for real: NTLM (pyspnego acceptor), Basic, OAuth2 client credentials.

Real exchangelib, requests_ntlm and requests-oauthlib against the EWS test
server (tests/servers/ews/auth.py), mostly through the CLI: store -> EWS
import, then verify.
"""

from __future__ import annotations

import base64
import http.client
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import spnego
from requests_ntlm import HttpNtlmAuth

from tests.helpers import cli, make_message, write_maildir
from tests.servers.ews import EwsServer
from tests.servers.ews.auth import App
from tests.servers.ews.ops import User
from tests.servers.ews.testkit import self_signed

pytest.importorskip("exchangelib")

KEY = ("name", "6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41", "PstkitSourceKey")
ALICE = User("alice@example.com", "Ntlm pass 1", "alice@example.com")
OPERATOR = User("CONTOSO\\svc-migrate", "0per@tor", "svc@example.com", impersonation=True)
APP = App("0f1e2d3c-app", "app secret value 42")
TENANT = "contoso.example"
SECRET_ENV = "PSTKIT_TEST_EWS_CLIENT_SECRET"
FOLDERS = {
    "": [(make_message(i), "S" if i % 2 else "") for i in range(8)],
    ".Sent": [(make_message(100 + i), "S") for i in range(3)],
    ".Projects": [(make_message(300 + i), "F") for i in range(4)],
}
TOTAL = sum(len(v) for v in FOLDERS.values())


def make_server(schema: Path, auth: set[str], tls: object = None) -> EwsServer:
    server = EwsServer(schema, tls, auth=auth).start()  # type: ignore[arg-type]
    for user in (ALICE, OPERATOR):
        server.add_user(user)
        server.add_mailbox(user.mailbox)
    server.add_app(APP)
    server.add_app(App("no-impersonation-app", "other secret", impersonation=False))
    server.auth.tenant = TENANT
    return server


@pytest.fixture
def store(tmp_path: Path) -> Path:
    write_maildir(tmp_path / "maildir", FOLDERS)
    code, _, err = cli("export", str(tmp_path / "maildir"), str(tmp_path / "store"))
    assert code == 0, err
    return tmp_path / "store"


def ews_url(server: EwsServer, user: str = ALICE.name, **params: str) -> str:
    who = f"{quote(user, safe='')}@" if user else ""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"ews://{who}127.0.0.1:{server.port}/EWS/Exchange.asmx?{query}"


def keys(server: EwsServer, mailbox: str = ALICE.mailbox) -> list[str]:
    return [i.props[KEY].value for i in server.mailboxes[mailbox].items.values()]


def one_line_error(code: int, out: str, err: str, exit_code: int, text: str) -> None:
    assert code == exit_code, out + err
    assert "Traceback" not in err and text in err, err
    assert [line for line in err.splitlines() if line.startswith("pstkit: error:")] == [
        next(line for line in err.splitlines() if text in line)
    ]


# --- NTLM ---------------------------------------------------------------------------------


@pytest.fixture
def ntlm_only(ews_schema_dir: Path) -> Iterator[EwsServer]:
    server = make_server(ews_schema_dir, {"ntlm"})  # like on-premises with Basic disabled
    yield server
    server.stop()
    assert server.response_errors == []


def test_ntlm_only_server_import_and_verify(
    ntlm_only: EwsServer, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", ALICE.password)
    url = ews_url(ntlm_only, scheme="http")
    code, out, err = cli("import", str(store), url, "--auth", "ntlm")
    assert code == 0, out + err
    found = keys(ntlm_only)
    assert len(found) == TOTAL and len(set(found)) == TOTAL
    assert ntlm_only.auth.ntlm_logins >= 1
    code, out, err = cli("verify", str(store), url)  # --auth auto picks NTLM from the 401
    assert code == 0, out + err
    assert ALICE.password not in out + err


def test_ntlm_with_a_domain_account_impersonating(
    ntlm_only: EwsServer, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", OPERATOR.password)
    url = ews_url(ntlm_only, OPERATOR.name, scheme="http")
    code, out, err = cli(
        "import", str(store), url, "--auth", "ntlm", "--impersonate", "--mailbox", ALICE.mailbox
    )
    assert code == 0, out + err
    assert len(keys(ntlm_only)) == TOTAL and keys(ntlm_only, OPERATOR.mailbox) == []


def test_ntlm_wrong_password_is_a_clear_auth_error(
    ntlm_only: EwsServer, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", "not the password")
    code, out, err = cli("import", str(store), ews_url(ntlm_only, scheme="http"), "--auth", "ntlm")
    one_line_error(code, out, err, 6, "the server refused the credentials (NTLM, HTTP 401)")
    assert "not the password" not in out + err
    assert ntlm_only.auth.ntlm_logins == 0 and ntlm_only.mailboxes[ALICE.mailbox].items == {}


def test_ntlm_authenticates_the_connection_not_the_request(ntlm_only: EwsServer) -> None:
    url = ntlm_only.url
    probe = requests.post(url, data=b"", timeout=10)
    assert probe.status_code == 401
    assert probe.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "NTLM"]
    with requests.Session() as session:
        session.auth = HttpNtlmAuth(f"\\{ALICE.name}", ALICE.password)
        for _ in range(3):  # SOAP errors are fine here: only the login is looked at
            assert session.post(url, data=b"<x/>", timeout=10).status_code != 401
    assert ntlm_only.auth.ntlm_logins == 1  # one handshake, three requests on its connection
    with requests.Session() as session:
        session.auth = HttpNtlmAuth(f"\\{ALICE.name}", ALICE.password)
        assert session.post(url, data=b"<x/>", timeout=10).status_code != 401
    assert ntlm_only.auth.ntlm_logins == 2  # a new connection logs in again


def test_negotiate_carrying_ntlm_is_accepted(ntlm_only: EwsServer) -> None:
    client = spnego.client(
        f"\\{ALICE.name}", ALICE.password, protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm
    )
    conn = http.client.HTTPConnection("127.0.0.1", ntlm_only.port, timeout=10)
    try:
        challenge = _post(conn, "Negotiate " + base64.b64encode(client.step() or b"").decode())
        assert challenge.status == 401
        scheme, _, token = (challenge.getheader("WWW-Authenticate") or "").partition(" ")
        assert scheme == "Negotiate"
        answer = client.step(base64.b64decode(token)) or b""
        assert _post(conn, "Negotiate " + base64.b64encode(answer).decode()).status != 401
        assert _post(conn, "").status != 401  # the connection stays logged in
    finally:
        conn.close()


def _post(conn: http.client.HTTPConnection, authorization: str) -> http.client.HTTPResponse:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if authorization:
        headers["Authorization"] = authorization
    conn.request("POST", "/EWS/Exchange.asmx", body=b"<x/>", headers=headers)
    response = conn.getresponse()
    response.read()
    return response


# --- Basic --------------------------------------------------------------------------------


@pytest.fixture
def basic_only(ews_schema_dir: Path) -> Iterator[EwsServer]:
    server = make_server(ews_schema_dir, {"basic"})
    yield server
    server.stop()
    assert server.response_errors == []


def test_basic_only_server_import(
    basic_only: EwsServer, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", ALICE.password)
    url = ews_url(basic_only, scheme="http")
    code, out, err = cli("import", str(store), url)  # auto: the server offers only Basic
    assert code == 0, out + err
    assert (
        sorted(keys(basic_only)) == sorted(set(keys(basic_only))) and len(keys(basic_only)) == TOTAL
    )
    assert cli("verify", str(store), url, "--auth", "basic")[0] == 0


def test_ntlm_asked_of_a_basic_only_server(
    basic_only: EwsServer, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", ALICE.password)
    code, out, err = cli("import", str(store), ews_url(basic_only, scheme="http"), "--auth", "ntlm")
    one_line_error(code, out, err, 6, "the server does not offer NTLM (it offers basic)")
    assert basic_only.operations == []  # refused before any EWS request


# --- OAuth2 client credentials ----------------------------------------------------------------


@pytest.fixture
def oauth(
    ews_schema_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EwsServer, Path]]:
    ctx, ca_file = self_signed(tmp_path)
    server = make_server(ews_schema_dir, {"bearer"}, ctx)
    # The token endpoint is trusted like any public one (system store or
    # REQUESTS_CA_BUNDLE); --ca-file pins only the EWS host.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    monkeypatch.setenv(SECRET_ENV, APP.secret)
    yield server, ca_file
    server.stop()
    assert server.response_errors == []


def app_args(ca_file: Path, client_id: str = APP.client_id) -> list[str]:
    return ["--client-id", client_id, "--tenant", TENANT, "--client-secret-env", SECRET_ENV,
            "--impersonate", "--mailbox", ALICE.mailbox, "--ca-file", str(ca_file)]  # fmt: skip


@pytest.mark.parametrize("connections", ["1", "3"])
def test_client_credentials_with_a_token_expiring_mid_run(
    oauth: tuple[EwsServer, Path], store: Path, connections: str
) -> None:
    server, ca_file = oauth
    server.auth.token_uses = 4  # Exchange refuses each token after 4 requests: 401 invalid_token
    url = ews_url(server, "", authority=server.authority)
    code, out, err = cli(
        "import", str(store), url, *app_args(ca_file), "--opt", "ews_batch_items=3",
        "--connections", connections,
    )  # fmt: skip
    assert code == 0, out + err
    found = keys(server)
    assert len(found) == TOTAL and len(set(found)) == TOTAL  # nothing lost, nothing twice
    requests_made = server.auth.token_requests
    assert len(requests_made) >= 3  # renewed mid-run, more than once
    assert {r["grant_type"] for r in requests_made} == {"client_credentials"}
    assert {r["scope"] for r in requests_made} == {"https://127.0.0.1/.default"}
    code, out, err = cli("verify", str(store), url, *app_args(ca_file))
    assert code == 0, out + err


@pytest.mark.slow
def test_client_side_expiry_asks_for_a_new_token_not_a_refresh(
    oauth: tuple[EwsServer, Path], store: Path
) -> None:
    server, ca_file = oauth
    server.auth.expires_in = 1  # the client sees the token expire between requests
    server.latency = 0.3
    url = ews_url(server, "", authority=server.authority)
    code, out, err = cli(
        "import", str(store), url, *app_args(ca_file), "--opt", "ews_batch_items=2"
    )
    assert code == 0, out + err
    assert len(keys(server)) == TOTAL == len(set(keys(server)))
    grants = [r["grant_type"] for r in server.auth.token_requests]
    assert len(grants) >= 2 and set(grants) == {"client_credentials"}  # never refresh_token


def test_client_secret_defaults_to_pstkit_client_secret(
    oauth: tuple[EwsServer, Path], store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As for Graph: with --client-id and no --client-secret-*, $PSTKIT_CLIENT_SECRET is used.
    server, ca_file = oauth
    monkeypatch.setenv("PSTKIT_CLIENT_SECRET", APP.secret)
    args = app_args(ca_file)
    del args[args.index("--client-secret-env"):args.index("--client-secret-env") + 2]
    url = ews_url(server, "", authority=server.authority)
    code, out, err = cli("import", str(store), url, *args)
    assert code == 0, out + err
    assert len(keys(server)) == TOTAL
    monkeypatch.delenv("PSTKIT_CLIENT_SECRET")
    code, out, err = cli("import", str(store), url, *args)
    assert code != 0 and "PSTKIT_CLIENT_SECRET" in err


def test_explicit_scope_parameter_is_sent(oauth: tuple[EwsServer, Path], store: Path) -> None:
    server, ca_file = oauth
    server.auth.resource = "https://mail.contoso.example"
    url = ews_url(
        server, "", authority=server.authority, scope="https://mail.contoso.example/.default"
    )
    code, out, err = cli("import", str(store), url, *app_args(ca_file))
    assert code == 0, out + err
    assert server.auth.token_requests[0]["scope"] == "https://mail.contoso.example/.default"


@pytest.mark.parametrize(
    ("change", "exit_code", "text"),
    [
        ({"secret": "wrong secret"}, 6, "the client secret was refused (AADSTS7000215)"),
        ({"client_id": "no-such-app"}, 6,
         "application no-such-app is unknown in this tenant (AADSTS700016)"),
        ({"scope": "https://other.example/.default"}, 6,
         "the scope was refused (check ?scope=) (AADSTS500011)"),
        ({"authority": "https://127.0.0.1:1"}, 5,
         "cannot connect to the token endpoint https://127.0.0.1:1/"),
        ({"client_id": "no-impersonation-app"}, 6,
         "the application may not reach alice@example.com (it needs full_access_as_app"),
        ({"drop": "--impersonate"}, 2, "reaches mailboxes only through impersonation"),
    ],
)  # fmt: skip
def test_client_credentials_errors_are_one_line(
    oauth: tuple[EwsServer, Path],
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    exit_code: int,
    text: str,
) -> None:
    server, ca_file = oauth
    if "secret" in change:
        monkeypatch.setenv(SECRET_ENV, change["secret"])
    if change.get("client_id") == "no-impersonation-app":
        monkeypatch.setenv(SECRET_ENV, "other secret")
    params = {"authority": change.get("authority", server.authority)}
    if "scope" in change:
        params["scope"] = change["scope"]
    args = [
        a
        for a in app_args(ca_file, change.get("client_id", APP.client_id))
        if a != change.get("drop")
    ]
    code, out, err = cli("import", str(store), ews_url(server, "", **params), *args)
    one_line_error(code, out, err, exit_code, text)
    assert server.mailboxes[ALICE.mailbox].items == {}
    assert APP.secret not in out + err


def test_secrets_reach_no_output_log_or_store(
    oauth: tuple[EwsServer, Path],
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, ca_file = oauth
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(APP.secret + "\n")
    monkeypatch.delenv(SECRET_ENV)
    server.auth.token_uses = 5
    caplog.set_level(logging.DEBUG)
    args = [a if a != SECRET_ENV else str(secret_file) for a in app_args(ca_file)]
    args[args.index("--client-secret-env")] = "--client-secret-file"
    url = ews_url(server, "", authority=server.authority)
    runs = [cli("--debug", "import", str(store), url, *args), cli("verify", str(store), url, *args)]
    assert [code for code, _, _ in runs] == [0, 0], runs
    tokens = list(server.auth.tokens)
    assert len(tokens) >= 2
    texts = [out + err for _, out, err in runs] + [caplog.text]
    for secret in [APP.secret, *tokens]:
        assert not any(secret in text for text in texts), secret[:6]
        for path in store.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_app_only_token_without_impersonation_is_explained(
    oauth: tuple[EwsServer, Path], store: Path, tmp_path: Path
) -> None:
    server, ca_file = oauth
    answer = requests.post(
        f"{server.authority}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": APP.client_id,
              "client_secret": APP.secret, "scope": "https://127.0.0.1/.default"},
        verify=str(ca_file), timeout=10,
    )  # fmt: skip
    token_file = tmp_path / "token"
    token_file.write_text(answer.json()["access_token"])
    url = ews_url(server, ALICE.name)  # delegate access, as if the token were the user's
    args = ["--token-file", str(token_file), "--ca-file", str(ca_file)]
    code, out, err = cli("import", str(store), url, *args)
    one_line_error(code, out, err, 6, "this app-only login acts only through impersonation")
    assert server.mailboxes[ALICE.mailbox].items == {}


def test_ntlm_over_tls_with_channel_binding(
    ews_schema_dir: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, ca_file = self_signed(tmp_path)
    server = make_server(ews_schema_dir, {"ntlm"}, ctx)
    try:
        monkeypatch.setenv("PSTKIT_PASSWORD", ALICE.password)
        code, out, err = cli("import", str(store), ews_url(server), "--ca-file", str(ca_file))
        assert code == 0, out + err
        assert len(keys(server)) == TOTAL and server.auth.ntlm_logins >= 1
    finally:
        server.stop()
    assert server.response_errors == []
