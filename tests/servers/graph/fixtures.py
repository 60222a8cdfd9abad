"""Pytest fixtures and helpers for the Graph tests (import them into a test module)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pstkit.converters.graph.sink import GraphSink
from pstkit.location import parse_location
from pstkit.model import Flag, StoredMessage
from pstkit.options import ConnectOptions, SecretSpec
from tests.servers.graph import oauth
from tests.servers.graph.pim import PimBox, PimItem, pim_of
from tests.servers.graph.server import GraphServer
from tests.servers.graph.tls import TlsFiles, make_tls

APP, SECRET, UPN = "pstkit-app", "test-secret-value", "alice@contoso.example"
SECRET_ENV = "PSTKIT_TEST_GRAPH_SECRET"


@pytest.fixture(scope="session")
def graph_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("graph-tls"))


@pytest.fixture
def graph(
    graph_tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GraphServer]:
    server = GraphServer(tmp_path, graph_tls).start()
    server.state.add_app(APP, secret=SECRET)
    server.state.add_mailbox(UPN)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield server
    server.stop()
    assert not server.state.server_errors, server.state.server_errors[0]


@contextlib.contextmanager
def graph_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture pstkit.graph warnings even if someone set propagate=False on "pstkit"."""
    logger = logging.getLogger("pstkit.graph")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, "pstkit.graph"):
            yield
    finally:
        logger.removeHandler(caplog.handler)


def options(server: GraphServer, **kw: Any) -> ConnectOptions:
    extra = kw.pop("extra", {})
    base: dict[str, Any] = {
        "client_id": APP,
        "client_secret": SecretSpec(env=SECRET_ENV, prompt=False, label="client secret"),
        "ca_file": server.ca_file,
        "timeout": 30.0,
    }
    base.update(kw)
    return ConnectOptions(extra=extra, **base)


def open_sink(
    server: GraphServer, upn: str = UPN, tenant: str | None = None, **kw: Any
) -> GraphSink:
    return GraphSink(parse_location(server.location(upn, tenant)), options(server, **kw))


def stored(
    n: int,
    raw: bytes,
    flags: frozenset[Flag] = frozenset(),
    keywords: frozenset[str] = frozenset(),
    received: datetime | None = None,
    message_id: str = "",
) -> StoredMessage:
    return StoredMessage(
        id=n,
        folder=("INBOX",),
        sha256="",
        size=len(raw),
        flags=flags,
        keywords=keywords,
        received=received or datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC),
        message_id=message_id,
        subject="",
        source_id=str(n),
        source_epoch="1",
        store_id="store-7f3a",
    )


def corpus_messages(corpus: Path, limit: int = 0) -> list[bytes]:
    files = sorted(p for p in (corpus / "eml").iterdir() if p.is_file())
    data = [p.read_bytes() for p in files]
    return data[:limit] if limit else data


def auto_approve(server: GraphServer, upn: str, stop: threading.Event) -> threading.Thread:
    """Plays the user at the browser: approves each device code as it appears."""

    def run() -> None:
        while not stop.is_set():
            with server.state.lock:
                codes = [
                    c.user_code for c in server.state.device_codes.values() if not c.approved_by
                ]
            for code in codes:
                oauth.approve_device_code(server.state, code, upn)
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def pim_box(server: GraphServer, upn: str = UPN) -> PimBox:
    """The contacts and calendars the test server holds for `upn`."""
    box = server.state.mailbox(upn)
    assert box is not None
    return pim_of(server.state, box)


def source_key(item: PimItem) -> str:
    """The PstkitSourceKey the sink stamped on a contact or event ("" if none)."""
    return next((v for k, v in item.ext.items() if "pstkitsourcekey" in k.lower()), "")
