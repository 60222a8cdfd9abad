"""EwsSink under the faults real Exchange produces: throttling, drops, per-item errors, limits."""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.converters.ews.sink import EwsSink
from pstkit.errors import (
    AuthError,
    ConnectError,
    ConnectorError,
    QuotaExceeded,
    TLSError,
    TransientError,
    UsageError,
)
from pstkit.model import Role, StoredMessage
from pstkit.protocols import Failed
from tests.servers.ews import EwsServer, Kind
from tests.servers.ews.testkit import (
    ADMIN,
    PLAIN,
    USER,
    location,
    options,
    self_signed,
    start_server,
)
from tests.servers.ews.testkit import stored as make

pytest.importorskip("exchangelib")

INBOX = ("Inbox",)


@pytest.fixture
def sink(server: EwsServer) -> Iterator[EwsSink]:
    s = EwsSink(location(server), options(extra={"ews_max_backoff": "1"}))
    s.ensure_folder(INBOX, Role.INBOX)
    yield s
    s.close()


def mail(n: int, size: int = 200, marker: str = "") -> bytes:
    body = (f"line {n} {marker}\r\n" * (size // 12 + 1))[:size]
    return (
        f"Message-ID: <m{n}@example.com>\r\nSubject: test {n}\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


def batch(n: int, size: int = 200) -> list[tuple[StoredMessage, bytes]]:
    return [(make(mail(i, size), i), mail(i, size)) for i in range(n)]


def delivered_keys(server: EwsServer) -> list[str]:
    box = server.mailboxes[USER.mailbox]
    inbox = box.distinguished("inbox")
    assert inbox is not None
    key = ("name", "6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41", "PstkitSourceKey")
    return sorted(i.props[key].value for i in box.items_in(inbox.id))


def all_delivered(results: Sequence[object]) -> bool:
    return all(type(r).__name__ == "Delivered" and getattr(r, "target_id", "") for r in results)


@pytest.mark.parametrize(
    ("kind", "backoff_ms", "expected_wait"),
    [
        (Kind.BUSY, 300, 0.3),  # BackOffMilliseconds honoured
        (Kind.BUSY, None, 0.5),  # missing: our own first step
        (Kind.HTTP_503, None, 0.5),
        (Kind.HTTP_429, None, 0.5),
        (Kind.DROP_BEFORE, None, 0.5),
    ],
)
def test_transient_faults_are_retried_without_doubling(
    server: EwsServer, sink: EwsSink, kind: Kind, backoff_ms: int | None, expected_wait: float
) -> None:
    server.faults.arm(kind, op="CreateItem", backoff_ms=backoff_ms)
    results = sink.put_batch(INBOX, batch(5))
    assert all_delivered(results)
    assert server.faults.pending == 0
    assert delivered_keys(server) == [f"store-1:{i}" for i in range(5)]
    assert sink.backoffs == [expected_wait]


def test_backoff_is_capped(server: EwsServer, sink: EwsSink) -> None:
    server.faults.arm(Kind.BUSY, op="CreateItem", backoff_ms=600_000)  # ten minutes
    assert all_delivered(sink.put_batch(INBOX, batch(1)))
    assert sink.backoffs == [1.0]  # ews_max_backoff=1


def test_answer_lost_after_the_server_saved_the_items(server: EwsServer, sink: EwsSink) -> None:
    server.faults.arm(Kind.DROP_AFTER, op="CreateItem")
    results = sink.put_batch(INBOX, batch(4))
    assert all_delivered(results)
    assert delivered_keys(server) == [f"store-1:{i}" for i in range(4)]  # not 8
    assert server.operations.count("CreateItem") == 1  # found them, did not re-send
    box = server.mailboxes[USER.mailbox]
    assert {r.target_id for r in results} == set(box.items)  # type: ignore[union-attr]


def test_giving_up_raises_a_one_line_transient_error(server: EwsServer) -> None:
    sink = EwsSink(location(server), options(extra={"ews_retries": "2", "ews_max_backoff": "0"}))
    sink.ensure_folder(INBOX, Role.INBOX)
    server.faults.arm(Kind.BUSY, op="CreateItem", times=5)
    with pytest.raises(TransientError) as info:
        sink.put_batch(INBOX, batch(2))
    assert "\n" not in str(info.value)
    assert delivered_keys(server) == []


def test_per_item_errors_are_reported_and_the_rest_delivered(
    server: EwsServer, sink: EwsSink
) -> None:
    server.faults.item_errors[b"BROKEN-MIME"] = "ErrorMimeContentConversionFailed"
    server.faults.max_item_bytes = 5000
    items = batch(3)
    bad_mime = mail(10, marker="BROKEN-MIME")
    too_big = mail(11, size=6000)
    items.insert(1, (make(bad_mime, 10), bad_mime))
    items.append((make(too_big, 11), too_big))
    results = sink.put_batch(INBOX, items)
    assert [type(r).__name__ for r in results] == [
        "Delivered",
        "Failed",
        "Delivered",
        "Delivered",
        "Failed",
    ]
    assert "ErrorMimeContentConversionFailed" in results[1].reason  # type: ignore[union-attr]
    assert "ErrorMessageSizeExceeded" in results[4].reason  # type: ignore[union-attr]
    assert delivered_keys(server) == ["store-1:0", "store-1:1", "store-1:2"]


def test_per_item_busy_is_retried_for_that_item_only(server: EwsServer, sink: EwsSink) -> None:
    server.faults.item_errors_once.append((b"line 1 ", "ErrorServerBusy"))
    results = sink.put_batch(INBOX, batch(3))
    assert all_delivered(results)
    assert delivered_keys(server) == ["store-1:0", "store-1:1", "store-1:2"]
    assert server.operations.count("CreateItem") == 2 and len(sink.backoffs) == 1


def test_full_mailbox_ends_the_run(server: EwsServer, sink: EwsSink) -> None:
    server.faults.item_errors[b"line 2"] = "ErrorQuotaExceeded"
    with pytest.raises(QuotaExceeded):
        sink.put_batch(INBOX, batch(4))


def test_request_size_limit_leads_to_smaller_batches(server: EwsServer, sink: EwsSink) -> None:
    server.faults.max_request_bytes = 40_000
    results = sink.put_batch(INBOX, batch(20, size=4000))
    assert all_delivered(results)
    assert delivered_keys(server) == sorted(f"store-1:{i}" for i in range(20))
    assert sink.batch_limit.max_bytes <= 40_000 * 3 // 4
    first = server.operations.count("CreateItem")
    sink.put_batch(INBOX, [(make(mail(i, 4000), i + 100), mail(i, 4000)) for i in range(8)])
    assert server.operations.count("CreateItem") - first >= 2  # split up front now


def test_item_larger_than_any_request_is_failed_up_front(server: EwsServer) -> None:
    sink = EwsSink(location(server), options(extra={"ews_request_limit": "20000"}))
    sink.ensure_folder(INBOX, Role.INBOX)
    before = server.operations.count("CreateItem")
    results = sink.put_batch(INBOX, batch(1, size=30_000))
    assert isinstance(results[0], Failed) and "request" in results[0].reason
    assert server.operations.count("CreateItem") == before


def test_parallel_batches_into_different_folders(server: EwsServer) -> None:
    sink = EwsSink(location(server), options(connections=4))
    folders = [("Par", str(n)) for n in range(4)]
    for f in folders:
        sink.ensure_folder(f, None)
    out: dict[tuple[str, ...], list[object]] = {}

    def work(folder: tuple[str, ...], base: int) -> None:
        items = [(make(mail(base + i), base + i), mail(base + i)) for i in range(25)]
        out[folder] = list(sink.put_batch(folder, items))

    threads = [threading.Thread(target=work, args=(f, n * 100)) for n, f in enumerate(folders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    box = server.mailboxes[USER.mailbox]
    for f in folders:
        assert all_delivered(out[f])
        folder = box.folder_by_path(f)
        assert folder is not None and len(box.items_in(folder.id)) == 25


# --- errors that end the run, each one clear line -----------------------------


def test_wrong_password_is_an_auth_error(server: EwsServer) -> None:
    with pytest.raises(AuthError) as info:
        EwsSink(location(server), options("wrong password"))
    assert "401" in str(info.value) and "wrong password" not in str(info.value)


def test_401_in_the_middle_is_not_retried(server: EwsServer, sink: EwsSink) -> None:
    server.faults.arm(Kind.HTTP_401, op="CreateItem")
    with pytest.raises(AuthError):
        sink.put_batch(INBOX, batch(1))
    assert sink.backoffs == []


def test_unknown_mailbox(server: EwsServer) -> None:
    with pytest.raises(ConnectorError) as info:
        EwsSink(location(server), options(mailbox="nobody@example.com"))
    assert "nobody@example.com does not exist" in str(info.value)


def test_mailbox_without_rights(server: EwsServer) -> None:
    with pytest.raises(AuthError, match=re.escape("no access to mailbox bob@example.com")):
        EwsSink(location(server), options(mailbox="bob@example.com"))


def test_impersonation_denied(server: EwsServer) -> None:
    loc = location(server, PLAIN.name)
    with pytest.raises(AuthError, match=re.escape("may not impersonate bob@example.com")):
        EwsSink(loc, options(PLAIN.password, mailbox="bob@example.com", impersonate=True))


def test_impersonating_an_unknown_mailbox(server: EwsServer) -> None:
    loc = location(server, ADMIN.name)
    with pytest.raises(ConnectorError, match=re.escape("nobody@example.com does not exist")):
        EwsSink(loc, options(ADMIN.password, mailbox="nobody@example.com", impersonate=True))


def test_wrong_url_is_a_connect_error(server: EwsServer) -> None:
    loc = replace(location(server), path="/owa/")
    with pytest.raises(ConnectError, match="HTTP 404"):
        EwsSink(loc, options())


def test_nothing_listening_is_a_connect_error(server: EwsServer) -> None:
    loc = replace(location(server), port=1)
    with pytest.raises(ConnectError, match="Connection refused") as info:
        EwsSink(loc, options())
    assert "\n" not in str(info.value)


def test_secrets_stay_out_of_debug_logs(
    server: EwsServer, caplog: pytest.LogCaptureFixture
) -> None:
    raw_message = b"Subject: x\r\n\r\nx"
    caplog.set_level(logging.DEBUG)
    sink = EwsSink(location(server), options())
    sink.ensure_folder(INBOX, Role.INBOX)
    sink.put_batch(INBOX, [(make(raw_message, 1), raw_message)])
    basic = base64.b64encode(f"{USER.name}:{USER.password}".encode()).decode()
    assert USER.password not in caplog.text and basic not in caplog.text


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_untrusted_certificate_is_a_tls_error(ews_schema_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    ctx, _ = self_signed(tmp_path)
    srv = start_server(ews_schema_dir, tls=ctx)
    try:
        with pytest.raises(TLSError, match="certificate verify failed"):
            EwsSink(replace(location(srv), params={}), options())
        sink = EwsSink(replace(location(srv), params={}), options(insecure=True))  # told to trust
        sink.ensure_folder(INBOX, Role.INBOX)
    finally:
        srv.stop()


def test_folder_creation_survives_a_lost_answer(server: EwsServer, sink: EwsSink) -> None:
    server.faults.arm(Kind.DROP_AFTER, op="CreateFolder")
    server.faults.arm(Kind.BUSY, op="FindFolder", backoff_ms=10)
    sink.ensure_folder(("Lost", "Answer"), None)
    box = server.mailboxes[USER.mailbox]
    assert sum(f.name == "Lost" for f in box.folders.values()) == 1
    assert box.folder_by_path(("Lost", "Answer")) is not None
    assert server.faults.pending == 0


def test_bad_options_are_usage_errors(server: EwsServer) -> None:
    with pytest.raises(UsageError, match="ews_retries"):
        EwsSink(location(server), options(extra={"ews_retries": "many"}))
    with pytest.raises(UsageError, match="OAuth2 needs"):
        EwsSink(location(server), options(auth="oauth2"))
    with pytest.raises(UsageError, match="cannot use --auth xoauth2"):
        EwsSink(location(server), options(auth="xoauth2"))
    with pytest.raises(ConnectorError, match="--mailbox"):
        EwsSink(replace(location(server), user="alice"), options())


def test_two_writers_creating_the_same_folder(server: EwsServer) -> None:
    sinks = [EwsSink(location(server), options()) for _ in range(4)]
    barrier = threading.Barrier(len(sinks))

    def create(sink: EwsSink) -> None:
        barrier.wait()
        sink.ensure_folder(("Race", "Folder"), None)

    threads = [threading.Thread(target=create, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    box = server.mailboxes[USER.mailbox]
    assert sum(f.name == "Race" for f in box.folders.values()) == 1
    assert sum(f.name == "Folder" for f in box.folders.values()) == 1
    for n, sink in enumerate(sinks):
        assert all_delivered(sink.put_batch(("Race", "Folder"), [(make(mail(n), n), mail(n))]))
    folder = box.folder_by_path(("Race", "Folder"))
    assert folder is not None and len(box.items_in(folder.id)) == len(sinks)
