"""EWS autodiscover (issue #5): `ews://USER@HOST` without a path asks HOST's
autodiscover.svc for the mailbox's EWS URL; `ews://USER@autodiscover` starts from
the mailbox's domain. Through the CLI, against the EWS test server's autodiscover."""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from exchangelib.autodiscover.cache import AUTODISCOVER_PERSISTENT_STORAGE as SHELF

from pstkit.converters import open_source
from pstkit.converters.ews.discover import (
    Answer,
    NotThere,
    fallback_url,
    follow,
    given_url,
    srv_service_urls,
)
from pstkit.errors import EXIT_CONNECTION, EXIT_OK, ConnectorError
from pstkit.location import parse_location
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store
from tests.helpers import cli, make_message, write_maildir
from tests.servers.ews import EwsServer, User
from tests.servers.ews.autodiscover import PATH as AD_PATH
from tests.servers.ews.testkit import TOKEN, USER, self_signed, start_server

ALICE = USER.mailbox
MAIL = {"": [(make_message(i), "S") for i in range(3)], ".Sent": [(make_message(9), "S")]}
WRITES = {"CreateFolder", "CreateItem", "DeleteItem", "UpdateItem", "MoveItem"}


@pytest.fixture
def server(ews_schema_dir: Path) -> Iterator[EwsServer]:
    srv = start_server(ews_schema_dir)
    yield srv
    srv.stop()
    assert srv.response_errors == [] and srv.autodiscover.problems == []


@pytest.fixture
def store(tmp_path: Path) -> Path:
    src = tmp_path / "maildir"
    write_maildir(src, MAIL)
    with Store.create(tmp_path / "store") as st:
        source = open_source(parse_location(f"maildir:{src}"), ConnectOptions())
        export(source, st)
        source.close()
    return tmp_path / "store"


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", USER.password)


def host_target(srv: EwsServer, user: str = ALICE) -> str:
    """A host-only target: no path, so autodiscover decides."""
    scheme = "" if srv.scheme == "https" else "?scheme=http"
    return f"ews://{user.replace('@', '%40')}@127.0.0.1:{srv.port}{scheme}"


def delivered(srv: EwsServer, mailbox: str = ALICE) -> int:
    return len(srv.mailboxes[mailbox].items)


def one_line_error(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("pstkit: error:")]
    assert code == EXIT_CONNECTION and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- pure decisions ------------------------------------------------------------------


def test_a_path_is_used_as_given_and_no_path_means_discovery() -> None:
    loc = parse_location("ews://a%40b.example@mail.b.example:8443/custom/ews.asmx")
    assert given_url(loc) == "https://mail.b.example:8443/custom/ews.asmx"
    bare = parse_location("ews://a%40b.example@mail.b.example")
    assert given_url(bare) is None
    assert fallback_url(bare) == "https://mail.b.example/EWS/Exchange.asmx"


def test_srv_records_best_first() -> None:
    records = [(10, 5, 443, "b.example."), (0, 1, 443, "a.example."), (0, 9, 8443, "c.example.")]
    assert srv_service_urls(records) == [
        "https://c.example:8443/autodiscover/autodiscover.svc",
        "https://a.example/autodiscover/autodiscover.svc",
        "https://b.example/autodiscover/autodiscover.svc",
    ]


def _asking(
    answers: dict[tuple[str, str], Answer],
) -> tuple[list[str], Callable[[str, str], Answer]]:
    """A stand-in for one autodiscover service per URL, answering from a table."""
    asked: list[str] = []

    def ask(url: str, mailbox: str) -> Answer:
        asked.append(f"{mailbox}@{url}")
        if (url, mailbox) not in answers:
            raise NotThere(url, "HTTP 404")
        return answers[(url, mailbox)]

    return asked, ask


@pytest.mark.parametrize(
    ("answers", "result"),
    [
        ({("https://a/s", "u@x"): Answer("NoError", ews_url="https://e/ews")}, "https://e/ews"),
        ({("https://a/s", "u@x"): Answer("RedirectUrl", target="https://b/s"),
          ("https://b/s", "u@x"): Answer("NoError", ews_url="https://f/ews")}, "https://f/ews"),
        ({("https://a/s", "u@x"): Answer("RedirectAddress", target="v@y"),
          ("https://a/s", "v@y"): Answer("NoError", ews_url="https://g/ews")}, "https://g/ews"),
        ({("https://a/s", "u@x"): Answer("InvalidUser")}, "does not know the mailbox u@x"),
        ({("https://a/s", "u@x"): Answer("RedirectUrl", target="http://b/s")}, "non-https"),
        ({("https://a/s", "u@x"): Answer("RedirectUrl", target="https://a/s")}, "circle"),
        ({("https://a/s", "u@x"): Answer("NoError", ews_url="http://e/ews")}, "not https"),
        ({("https://a/s", "u@x"): Answer("NoError")}, "no EWS URL"),
        ({("https://a/s", "u@x"): Answer("RedirectUrl", target="https://gone/s")}, "redirected"),
        ({}, "no autodiscover service at https://a/s"),
    ],
)  # fmt: skip
def test_following_autodiscover_answers(
    answers: dict[tuple[str, str], Answer], result: str
) -> None:
    _, ask = _asking(answers)
    if result.startswith("https://"):
        mailbox = "v@y" if answers.get(("https://a/s", "v@y")) else "u@x"
        assert follow(ask, "https://a/s", "u@x") == (result, mailbox)
        return
    with pytest.raises(ConnectorError) as info:
        follow(ask, "https://a/s", "u@x")
    assert result in info.value.message
    assert isinstance(info.value, NotThere) == (not answers)  # only a first miss falls back


def test_redirect_hops_are_bounded() -> None:
    answers = {
        (f"https://h{i}/s", "u@x"): Answer("RedirectUrl", target=f"https://h{i + 1}/s")
        for i in range(20)
    }
    asked, ask = _asking(answers)
    with pytest.raises(ConnectorError, match="more than 10 redirects"):
        follow(ask, "https://h0/s", "u@x")
    assert len(asked) == 11


# --- the test server's autodiscover checks what Exchange would refuse --------------------

ENVELOPE = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover"
 xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Header>{header}</s:Header>
<s:Body><a:GetUserSettingsRequestMessage><a:Request>{request}</a:Request>
</a:GetUserSettingsRequestMessage></s:Body></s:Envelope>"""
ACTION = "<wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action>"
TO = "<wsa:To>https://x/autodiscover/autodiscover.svc</wsa:To>"
USERS = "<a:Users><a:User><a:Mailbox>alice@example.com</a:Mailbox></a:User></a:Users>"
WANTED = "<a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings>"


@pytest.mark.parametrize(
    ("header", "request_xml", "status", "problem"),
    [
        (ACTION + TO, USERS + WANTED, 200, None),
        (TO, USERS + WANTED, 500, "action None"),
        (ACTION, USERS + WANTED, 200, "no wsa:To"),
        (ACTION + TO, WANTED + USERS, 200, "not Users, RequestedSettings"),
        (ACTION + TO, USERS + "<a:RequestedSettings/>", 200, "RequestedSettings is empty"),
    ],
)
def test_the_service_refuses_what_exchange_refuses(
    server: EwsServer, header: str, request_xml: str, status: int, problem: str | None
) -> None:
    body = ENVELOPE.format(header=header, request=request_xml).encode()
    url = f"http://127.0.0.1:{server.port}{AD_PATH}"
    assert requests.post(url, data=body, timeout=10).status_code == 401  # no login, no answer
    r = requests.post(url, data=body, auth=(USER.name, USER.password), timeout=10)
    assert r.status_code == status
    found = server.autodiscover.problems[:]
    server.autodiscover.problems.clear()  # the fixture asserts it empty
    if problem is None:
        assert found == [] and b"<ErrorCode>NoError</ErrorCode>" in r.content
        assert b"<Name>ExternalEwsUrl</Name>" in r.content
    else:
        assert len(found) == 1 and problem in found[0]
        assert b"InvalidRequest" in r.content or b"ActionNotSupported" in r.content


# --- one host's autodiscover, through the CLI -------------------------------------------


def test_host_target_finds_ews_at_a_custom_path(server: EwsServer, store: Path) -> None:
    server.ews_path = "/custom/ews.asmx"  # the old guess /EWS/Exchange.asmx would get 404
    code, _, err = cli("import", str(store), host_target(server), "--auth", "basic")
    assert code == EXIT_OK, err
    assert delivered(server) == 4
    assert server.autodiscover.asked == [ALICE]  # asked once, whatever the folders
    assert "autodiscover" not in err and USER.password not in err


def test_internal_url_when_no_external_one(server: EwsServer, store: Path) -> None:
    server.ews_path = "/internal/ews.asmx"
    server.autodiscover.internal_url = f"http://127.0.0.1:{server.port}/internal/ews.asmx"
    server.autodiscover.external_url = ""  # SettingIsNotAvailable
    code, _, err = cli("import", str(store), host_target(server), "--auth", "basic")
    assert code == EXIT_OK, err
    assert delivered(server) == 4


def test_a_wrong_published_url_is_named_in_the_error(server: EwsServer, store: Path) -> None:
    wrong = f"http://127.0.0.1:{server.port}/wrong/ews.asmx"
    server.autodiscover.external_url = wrong
    code, _, err = cli("import", str(store), host_target(server), "--auth", "basic")
    line = one_line_error(code, err)
    assert f"{wrong} (named by autodiscover)" in line and "404" in line


def test_redirect_address_is_followed(server: EwsServer, store: Path) -> None:
    server.autodiscover.aliases["a.l.ice@example.com"] = ALICE
    target = host_target(server)
    code, _, err = cli("import", str(store), target, "--auth", "basic",
                       "--mailbox", "a.l.ice@example.com")  # fmt: skip
    assert code == EXIT_OK, err
    assert server.autodiscover.asked == ["a.l.ice@example.com", ALICE]
    assert delivered(server) == 4


def test_unknown_mailbox_is_one_clear_line(server: EwsServer, store: Path) -> None:
    code, _, err = cli("import", str(store), host_target(server), "--auth", "basic",
                       "--mailbox", "nobody@example.com")  # fmt: skip
    line = one_line_error(code, err)
    assert "does not know the mailbox nobody@example.com" in line
    assert "hint: check the address" in err
    assert "CreateItem" not in server.operations


def test_redirect_to_plain_http_is_refused(server: EwsServer, store: Path) -> None:
    server.autodiscover.redirect_url = f"http://127.0.0.1:{server.port}{AD_PATH}"
    code, _, err = cli("import", str(store), host_target(server), "--auth", "basic")
    assert "non-https" in one_line_error(code, err)
    assert server.operations == []


def test_no_autodiscover_falls_back_with_one_notice(server: EwsServer, store: Path) -> None:
    server.autodiscover.enabled = False  # HTTP 404, as a host without the service
    code, _, err = cli("import", str(store), host_target(server), "--auth", "basic")
    assert code == EXIT_OK, err
    notices = [line for line in err.splitlines() if "autodiscover" in line]
    assert len(notices) == 1, err
    assert "HTTP 404" in notices[0] and "/EWS/Exchange.asmx" in notices[0]
    assert delivered(server) == 4


def test_nothing_listening_falls_back_then_fails_cleanly(store: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"ews://alice%40example.com@127.0.0.1:{port}?scheme=http"
    code, _, err = cli("import", str(store), target, "--auth", "basic")
    line = one_line_error(code, err)
    assert "Connection refused" in line or "Errno" in line
    assert sum("no autodiscover service" in x for x in err.splitlines()) == 1


def test_ntlm_only_server_is_discovered_with_ntlm(ews_schema_dir: Path, store: Path) -> None:
    srv = EwsServer(ews_schema_dir, auth=("ntlm",)).start()  # Basic disabled, as on-premises
    try:
        srv.add_mailbox(ALICE)
        srv.add_user(USER)
        srv.ews_path = "/custom/ews.asmx"
        code, _, err = cli("import", str(store), host_target(srv))  # auto: NTLM from the 401
        assert code == EXIT_OK, err
        assert srv.autodiscover.asked == [ALICE] and delivered(srv) == 4
        assert USER.password not in err
    finally:
        srv.stop()
    assert srv.response_errors == [] and srv.autodiscover.problems == []


def test_plan_resolves_but_writes_nothing(server: EwsServer, store: Path) -> None:
    server.ews_path = "/custom/ews.asmx"
    code, out, err = cli("plan", str(store), host_target(server), "--auth", "basic")
    assert code == EXIT_OK, err
    assert "Inbox" in out
    assert server.autodiscover.asked == [ALICE]
    assert not WRITES & set(server.operations)
    assert delivered(server) == 0


def test_connections_still_parallel_after_discovery(server: EwsServer, tmp_path: Path) -> None:
    src = tmp_path / "maildir"
    write_maildir(src, {f".F{n}": [(make_message(10 * n + i), "") for i in range(6)]
                        for n in range(4)})  # fmt: skip
    with Store.create(tmp_path / "store") as st:
        export(open_source(parse_location(f"maildir:{src}"), ConnectOptions()), st)
    peak = _count_concurrency(server)
    code, _, err = cli("import", str(tmp_path / "store"), host_target(server), "--auth", "basic",
                       "--connections", "4", "--opt", "ews_batch_items=2")  # fmt: skip
    assert code == EXIT_OK, err
    assert delivered(server) == 24
    assert max(peak) > 1  # more than one request in flight: the pool is there


def _count_concurrency(server: EwsServer) -> list[int]:
    """Wrap the test server's EWS handler to record how many requests run at once; each
    takes 50 ms longer, so that requests sent over parallel connections overlap."""
    handle, lock, state, peak = server.handle, threading.Lock(), [0], [0]

    def counted(user: User, body: bytes) -> object:
        with lock:
            state[0] += 1
            peak.append(state[0])
        try:
            time.sleep(0.05)
            return handle(user, body)
        finally:
            with lock:
                state[0] -= 1

    server.handle = counted  # type: ignore[method-assign,assignment]
    return peak


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    return self_signed(tmp_path, ("localhost",))


def test_redirect_url_to_a_second_server_over_tls(
    ews_schema_dir: Path, store: Path, tls: tuple[ssl.SSLContext, Path]
) -> None:
    ctx, ca = tls
    first, second = start_server(ews_schema_dir, tls=ctx), start_server(ews_schema_dir, tls=ctx)
    try:
        first.autodiscover.redirect_url = f"https://127.0.0.1:{second.port}{AD_PATH}"
        code, _, err = cli("import", str(store), host_target(first), "--auth", "basic",
                           "--ca-file", str(ca))  # fmt: skip
        assert code == EXIT_OK, err
        assert (delivered(first), delivered(second)) == (0, 4)
        assert first.autodiscover.asked == second.autodiscover.asked == [ALICE]
        assert first.operations == []  # EWS itself was only asked at the second server
    finally:
        first.stop()
        second.stop()
    assert not (first.autodiscover.problems or second.autodiscover.problems)


class _Redirector(BaseHTTPRequestHandler):
    """A web server whose autodiscover URL answers with an HTTP redirect (as hosters do)."""

    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_http_redirect_of_autodiscover_is_followed_to_https(
    ews_schema_dir: Path, store: Path, tls: tuple[ssl.SSLContext, Path]
) -> None:
    srv = start_server(ews_schema_dir, tls=tls[0])
    handler = type("Handler", (_Redirector,), {"target": f"https://127.0.0.1:{srv.port}{AD_PATH}"})
    web = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        target = f"ews://alice%40example.com@127.0.0.1:{web.server_address[1]}?scheme=http"
        code, _, err = cli("import", str(store), target, "--auth", "basic",
                           "--ca-file", str(tls[1]))  # fmt: skip
        assert code == EXIT_OK, err
        assert srv.autodiscover.asked == [ALICE] and delivered(srv) == 4
    finally:
        web.shutdown()
        web.server_close()
        srv.stop()


def test_insecure_reaches_autodiscover_too(
    ews_schema_dir: Path, store: Path, tls: tuple[ssl.SSLContext, Path]
) -> None:
    srv = start_server(ews_schema_dir, tls=tls[0])
    try:
        code, _, err = cli("import", str(store), host_target(srv), "--auth", "basic", "--insecure")
        assert code == EXIT_OK, err
        assert srv.autodiscover.asked == [ALICE] and delivered(srv) == 4
    finally:
        srv.stop()


def test_bearer_token_reaches_autodiscover(
    ews_schema_dir: Path, store: Path, tls: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    srv = start_server(ews_schema_dir, tls=tls[0])  # OAuth2 only over https
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    try:
        srv.ews_path = "/custom/ews.asmx"
        args = ["--token-file", str(token_file), "--ca-file", str(tls[1])]
        code, _, err = cli("import", str(store), host_target(srv), *args)
        assert code == EXIT_OK, err
        assert srv.autodiscover.asked == [ALICE] and delivered(srv) == 4
        assert TOKEN not in err
    finally:
        srv.stop()


def test_untrusted_certificate_is_a_tls_error_not_a_fallback(
    ews_schema_dir: Path, store: Path, tls: tuple[ssl.SSLContext, Path]
) -> None:
    srv = start_server(ews_schema_dir, tls=tls[0])
    try:
        code, _, err = cli("import", str(store), host_target(srv), "--auth", "basic")
        line = one_line_error(code, err)
        assert "TLS failed" in line and "certificate verify failed" in line
        assert "--ca-file" in err  # the hint
        assert srv.autodiscover.asked == [] and srv.operations == []
    finally:
        srv.stop()


# --- discovery from the mailbox's domain ---------------------------------------------------


@pytest.fixture
def port_443(ews_schema_dir: Path, tls: tuple[ssl.SSLContext, Path]) -> Iterator[EwsServer]:
    try:
        srv = EwsServer(ews_schema_dir, tls[0], port=443).start()
    except OSError as e:
        reason = "not allowed" if e.errno in (errno.EACCES, errno.EPERM) else "in use"
        pytest.skip(f"cannot listen on 127.0.0.1:443 ({reason}: {e.strerror})")
    srv.add_mailbox("alice@localhost")
    srv.add_user(User("alice@localhost", USER.password, "alice@localhost"))
    yield srv
    srv.stop()
    assert srv.response_errors == [] and srv.autodiscover.problems == []


def test_domain_discovery_step_one(
    port_443: EwsServer, store: Path, tls: tuple[ssl.SSLContext, Path]
) -> None:
    def shelf() -> set[tuple[str, float]]:
        return {(p.name, p.stat().st_mtime) for p in SHELF.parent.glob(f"{SHELF.name}*")}

    before = shelf()
    code, _, err = cli("import", str(store), "ews://alice%40localhost@autodiscover",
                       "--auth", "basic", "--ca-file", str(tls[1]))  # fmt: skip
    assert code == EXIT_OK, err
    assert port_443.autodiscover.asked == ["alice@localhost"]
    assert delivered(port_443, "alice@localhost") == 4
    assert shelf() == before  # exchangelib's on-disk autodiscover cache untouched


def test_domain_discovery_goes_on_after_a_tls_failure_and_says_so(
    port_443: EwsServer, store: Path
) -> None:
    # No --ca-file: step 1 fails TLS, and the later steps find nothing.
    code, _, err = cli(
        "import", str(store), "ews://alice%40localhost@autodiscover", "--auth", "basic"
    )
    line = one_line_error(code, err)
    assert "TLS failed with autodiscover for localhost" in line
    assert "https://localhost/autodiscover/autodiscover.svc (certificate verify failed" in line
    assert "_autodiscover._tcp.localhost" in line  # the later steps were tried too
    assert "--ca-file" in err and port_443.autodiscover.asked == []


def test_domain_discovery_that_finds_nothing_lists_what_it_tried(store: Path) -> None:
    code, _, err = cli("import", str(store), "ews://alice%40nowhere.invalid@autodiscover",
                       "--auth", "basic")  # fmt: skip
    line = one_line_error(code, err)
    assert "autodiscover for nowhere.invalid" in line
    assert "https://nowhere.invalid/autodiscover/autodiscover.svc" in line
    assert "https://autodiscover.nowhere.invalid/autodiscover/autodiscover.svc" in line
    assert "_autodiscover._tcp.nowhere.invalid" in line
