"""EwsSink over TLS: a connection dropped mid-import, the reason a handshake fails, --insecure."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.converters.ews.sink import EwsSink
from pstkit.errors import TLSError
from pstkit.model import Role, StoredMessage
from pstkit.protocols import Delivered
from tests.servers.ews import EwsServer, Kind
from tests.servers.ews.testkit import USER, location, options, self_signed, start_server
from tests.servers.ews.testkit import stored as make

pytest.importorskip("exchangelib")
pytest.importorskip("cryptography")

INBOX = ("Inbox",)


@pytest.fixture
def tls_server(ews_schema_dir: Path, tmp_path: Path) -> Iterator[tuple[EwsServer, Path]]:
    ctx, ca_file = self_signed(tmp_path)
    srv = start_server(ews_schema_dir, tls=ctx)
    yield srv, ca_file
    srv.stop()
    assert srv.response_errors == []


def mail(n: int, size: int = 10) -> bytes:
    head = f"Message-ID: <t{n}@example.com>\r\nSubject: tls {n}\r\n"
    return (head + "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n").encode() + b"x" * size


def batch(n: int, size: int = 10) -> list[tuple[StoredMessage, bytes]]:
    return [(make(mail(i, size), i), mail(i, size)) for i in range(n)]


def inbox_count(server: EwsServer) -> int:
    box = server.mailboxes[USER.mailbox]
    inbox = box.distinguished("inbox")
    assert inbox is not None
    return len(box.items_in(inbox.id))


@pytest.mark.parametrize("kind", [Kind.CUT_REQUEST, Kind.DROP_AFTER])
def test_tls_connection_dropped_mid_import_is_retried_after_a_look_up(
    tls_server: tuple[EwsServer, Path], kind: Kind
) -> None:
    """A TLS connection cut while the request is being sent (SSLEOFError, which
    exchangelib passes on as TransportError, as gromox 3.10 does under load) or
    after the items were saved is a drop like any other: look up, send the rest."""
    server, ca_file = tls_server
    sink = EwsSink(replace(location(server), params={}), options(ca_file=ca_file))
    try:
        sink.ensure_folder(INBOX, Role.INBOX)
        server.faults.arm(kind, op=None if kind is Kind.CUT_REQUEST else "CreateItem")
        results = sink.put_batch(INBOX, batch(3, 1_000_000))  # still sending when cut
    finally:
        sink.close()
    assert all(isinstance(r, Delivered) for r in results), results
    assert inbox_count(server) == 3  # neither lost nor doubled
    assert server.faults.pending == 0
    assert len(sink.backoffs) == 1


def test_untrusted_certificate_reason_is_whole(tls_server: tuple[EwsServer, Path]) -> None:
    server, _ = tls_server
    with pytest.raises(TLSError) as info:
        EwsSink(replace(location(server), params={}), options())
    text = str(info.value)
    assert "certificate verify failed" in text
    assert text.count("(") == text.count(")"), text  # not cut off inside "(_ssl.c:1006)"


def test_insecure_warns_once_not_per_request(
    tls_server: tuple[EwsServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = tls_server
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        sink = EwsSink(replace(location(server), params={}), options(insecure=True))
        try:
            sink.ensure_folder(INBOX, Role.INBOX)
            sink.put_batch(INBOX, batch(2))
        finally:
            sink.close()
    names = [type(w.message).__name__ for w in seen]
    assert names.count("InsecureRequestWarning") == 0, names
    notices = [r.getMessage() for r in caplog.records if "--insecure" in r.getMessage()]
    assert len(notices) == 1 and "not checked" in notices[0]
