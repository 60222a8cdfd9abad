"""MSAL for real against the test server's Entra endpoints; wording of auth errors."""

from __future__ import annotations

import hashlib
import logging
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pstkit.converters.graph.auth import cache_file
from pstkit.converters.graph.sink import GraphSink
from pstkit.errors import AuthError, ConnectError, PstkitError, TLSError, UsageError
from pstkit.model import Delivered
from tests.servers.graph.fixtures import (
    APP,
    SECRET,
    UPN,
    auto_approve,
    graph,
    graph_tls,
    open_sink,
    stored,
)
from tests.servers.graph.oauth import b64url
from tests.servers.graph.server import GraphServer
from tests.servers.graph.state import MAIL_ADV_APP, MAIL_RW
from tests.servers.graph.tls import make_client_cert, make_tls

__all__ = ["graph", "graph_tls"]

RAW = b"From: a@example.org\r\nSubject: hello\r\nMessage-ID: <h@example.org>\r\n\r\nhi\r\n"


def _deliver_one(sink: GraphSink, mode: str = "importMime") -> None:
    """One message in: by importMime (delegated Mail-Advanced.ReadWrite or application
    Mail-Advanced.ReadWrite.All, as the default test apps have), else as JSON."""
    (r,) = sink.put_batch(("Inbox",), [(stored(1, RAW), RAW)])
    assert isinstance(r, Delivered) and sink.mode == mode


def test_client_secret(graph: GraphServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        sink = open_sink(graph)
        try:
            _deliver_one(sink)
        finally:
            sink.close()
    assert graph.state.counters["tokens_issued"] == 1
    tokens = [t for t in graph.state.tokens]
    assert SECRET not in caplog.text and not any(t in caplog.text for t in tokens)


def test_client_certificate(graph: GraphServer, tmp_path: Path) -> None:
    cert = make_client_cert(tmp_path / "app.pem")
    der = cert.public_bytes(serialization.Encoding.DER)
    graph.state.add_app(
        "cert-app",
        cert_sha256=b64url(hashlib.sha256(der).digest()),
        cert_public_pem=cert.public_bytes(serialization.Encoding.PEM),
    )
    sink = open_sink(graph, client_id="cert-app", client_cert=tmp_path / "app.pem")
    try:
        _deliver_one(sink)
    finally:
        sink.close()
    other = make_client_cert(tmp_path / "other.pem")  # not registered on the app
    assert other is not None
    with pytest.raises(AuthError, match="certificate is not registered"):
        open_sink(graph, client_id="cert-app", client_cert=tmp_path / "other.pem")


def test_device_code_with_private_token_cache(graph: GraphServer) -> None:
    graph.state.add_app("public-app")
    stop = threading.Event()
    auto_approve(graph, UPN, stop)
    try:
        sink = open_sink(graph, client_id="public-app", auth="device-code", extra={})
        try:
            _deliver_one(sink)
        finally:
            sink.close()
    finally:
        stop.set()
    path = cache_file()
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SECRET not in path.read_text()
    # A second run signs in from the cache: no new device code is needed.
    codes_before = graph.state.counters["tokens_issued"]
    sink = open_sink(graph, client_id="public-app", auth="device-code")
    try:
        _deliver_one(sink)
    finally:
        sink.close()
    assert not graph.state.device_codes
    assert graph.state.counters["tokens_issued"] == codes_before  # cached access token


def test_expired_token_is_renewed_once(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        with graph.state.lock:
            for tok in graph.state.tokens.values():
                tok.expires = 0  # Graph now answers 401 "token is expired"
        _deliver_one(sink)
    finally:
        sink.close()
    assert graph.state.counters["tokens_issued"] == 2


def _error(graph: GraphServer, **kw: object) -> PstkitError:
    with pytest.raises(PstkitError) as info:
        sink = open_sink(graph, **kw)  # type: ignore[arg-type]
        sink.close()
    assert "\n" not in str(info.value)
    return info.value


def test_wrong_tenant(graph: GraphServer) -> None:
    e = _error(graph, tenant="fabrikam.example")
    assert isinstance(e, AuthError) and "tenant fabrikam.example not found" in str(e)


def test_unknown_app_says_wrong_tenant(graph: GraphServer) -> None:
    e = _error(graph, client_id="nope")
    assert isinstance(e, AuthError) and "not registered in tenant" in str(e)


def test_wrong_secret(graph: GraphServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTKIT_TEST_GRAPH_SECRET", "wrong")
    e = _error(graph)
    assert isinstance(e, AuthError) and "client secret is wrong" in str(e)


def test_missing_application_permission(graph: GraphServer) -> None:
    graph.state.apps[APP].roles = set()
    e = _error(graph)
    assert isinstance(e, AuthError) and "needs the Graph permission Mail.ReadWrite" in str(e)


def test_admin_consent_missing(graph: GraphServer) -> None:
    graph.state.apps[APP].admin_consented = False  # app-only: token without roles
    e = _error(graph)
    assert isinstance(e, AuthError) and "Mail.ReadWrite" in str(e)


def test_delegated_consent_missing(graph: GraphServer) -> None:
    graph.state.add_app("public-app", delegated={MAIL_RW})  # Mail-Advanced not consented
    stop = threading.Event()
    auto_approve(graph, UPN, stop)
    try:
        e = _error(graph, client_id="public-app", auth="device-code")
    finally:
        stop.set()
    assert isinstance(e, AuthError) and "consent missing" in str(e)


def test_mailbox_not_found(graph: GraphServer) -> None:
    e = _error(graph, upn="bob@contoso.example")
    assert isinstance(e, ConnectError) and "mailbox not found" in str(e)


def test_no_client_id(graph: GraphServer) -> None:
    e = _error(graph, client_id=None)
    assert isinstance(e, UsageError) and "client) id" in str(e)


def test_without_mail_advanced_import_falls_back(graph: GraphServer) -> None:
    graph.state.apps[APP].roles = {MAIL_RW}
    assert MAIL_ADV_APP not in graph.state.apps[APP].roles
    sink = open_sink(graph)
    try:
        _deliver_one(sink, "json")
    finally:
        sink.close()


def test_untrusted_server_certificate(graph: GraphServer, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other_ca = make_tls(tmp_path / "other").ca_file  # not the CA that signed the server
    e = _error(graph, ca_file=other_ca)
    assert isinstance(e, TLSError) and "CERTIFICATE_VERIFY_FAILED" in str(e)
