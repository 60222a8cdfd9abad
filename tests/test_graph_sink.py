"""GraphSink against the Graph test server: both modes, throttling, ambiguity, resume."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from converters import graph_json as gj
from pstkit.model import Delivered, Flag, Role, StoredMessage
from pstkit.protocols import Failed
from tests.graphserver import child_import
from tests.graphserver import messages as server_messages
from tests.graphserver.fixtures import (
    UPN,
    corpus_messages,
    graph,
    graph_log,
    graph_tls,
    open_sink,
    stored,
)
from tests.graphserver.server import GraphServer
from tests.graphserver.state import Mailbox, Message

__all__ = ["graph", "graph_tls"]  # fixtures used by name
Batch = list[tuple[StoredMessage, bytes]]


def box(server: GraphServer) -> Mailbox:
    found = server.state.mailbox(UPN)
    assert found is not None
    return found


def key_of(m: Message) -> str:
    for pid, value in m.ext.items():
        if pid.lower() == f"string {{{gj.PSTKIT_GUID}}} name pstkitsourcekey":
            return value
    return ""


def folder_path(server: GraphServer, m: Message) -> tuple[str, ...]:
    b, fid = box(server), m.folder_id
    out: list[str] = []
    while b.folders[fid].well_known != "msgfolderroot":
        out.insert(0, b.folders[fid].display_name)
        fid = b.folders[fid].parent_id
    return tuple(out)


CASES = [
    (frozenset({Flag.SEEN}), frozenset({"Blue", "$Forwarded"}), "flagged-no"),
    (frozenset({Flag.FLAGGED}), frozenset(), "unread-flagged"),
    (frozenset({Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED}), frozenset({"Red", "Green"}), "all"),
]


def _batch(corpus: Path, count: int) -> Batch:
    raws = corpus_messages(corpus, count)
    out = []
    for n, raw in enumerate(raws, 1):
        flags, kws, _ = CASES[n % len(CASES)]
        received = datetime(2020, 1, n % 28 + 1, 8, n % 60, 0, tzinfo=UTC)
        out.append((stored(n, raw, flags, kws, received), raw))
    return out


def _check_delivered(server: GraphServer, batch: Batch, path: tuple[str, ...], mode: str) -> None:
    msgs = list(box(server).messages.values())
    keys = Counter(key_of(m) for m in msgs)
    for msg, raw in batch:
        assert keys[msg.stable_key] == 1, msg.stable_key
        (m,) = [x for x in msgs if key_of(x) == msg.stable_key]
        assert folder_path(server, m) == path
        assert m.created_via == mode
        assert m.props["isDraft"] is False
        assert m.props["isRead"] is (Flag.SEEN in msg.flags)
        assert msg.received is not None
        assert m.props["receivedDateTime"] == msg.received.strftime("%Y-%m-%dT%H:%M:%SZ")
        want_flag = "flagged" if Flag.FLAGGED in msg.flags else "notFlagged"
        assert m.props["flag"]["flagStatus"] == want_flag
        assert m.props["categories"] == sorted(k for k in msg.keywords if not k.startswith("$"))
        if mode == "importMime":
            assert m.mime == raw
        else:
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            try:
                sent = parsedate_to_datetime(str(parsed["Date"]))
            except (TypeError, ValueError, IndexError):
                continue
            assert m.props["sentDateTime"] == sent.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_import_mime_delivers_exact_bytes_once(graph: GraphServer, corpus: Path) -> None:
    batch = _batch(corpus, 12)
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Projects", "2024"), None)
        results = sink.put_batch(("Projects", "2024"), batch)
        assert all(isinstance(r, Delivered) and r.target_id for r in results)
        for (_msg, raw), r in zip(batch, results, strict=True):
            assert isinstance(r, Delivered)
            assert sink.read_mime(r.target_id) == raw  # $value read-back
        assert sink.mode == "importMime" and sink.mode_counts["importMime"] == 12
    finally:
        sink.close()
    _check_delivered(graph, batch, ("Projects", "2024"), "importMime")


@pytest.mark.parametrize("refusal", [404, 403])
def test_json_fallback_when_import_mime_refused(
    graph: GraphServer, corpus: Path, refusal: int, caplog: pytest.LogCaptureFixture
) -> None:
    graph.state.import_mime = refusal
    batch = _batch(corpus, 12)
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Sent",), Role.SENT)
        with graph_log(caplog):
            results = sink.put_batch(("Sent",), batch)
        assert all(isinstance(r, Delivered) for r in results), results
        assert sink.mode == "json" and sink.mode_counts == {"importMime": 0, "json": 12}
        assert "importMime is not available" in caplog.text
    finally:
        sink.close()
    _check_delivered(graph, batch, ("Sent Items",), "json")


def test_well_known_roles_and_folder_tree(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Gesendete Elemente",), Role.SENT)
        sink.ensure_folder(("Inbox", "Lists", "python-dev"), None)
        sink.ensure_folder(("inbox", "lists"), None)  # Exchange compares names case-blind
        found = {f.path: f.role for f in sink.folders()}
    finally:
        sink.close()
    assert found[("Sent Items",)] is Role.SENT
    assert found[("Inbox",)] is Role.INBOX and found[("Deleted Items",)] is Role.TRASH
    assert found[("Junk Email",)] is Role.JUNK and found[("Archive",)] is Role.ARCHIVE
    assert ("Inbox", "Lists", "python-dev") in found
    assert sum(1 for p in found if p[:2] == ("Inbox", "Lists")) == 2  # no second "lists"


def test_throttling_storm_every_item_exactly_once(graph: GraphServer, corpus: Path) -> None:
    graph.state.inject(429, count=400, retry_after=0, every=2)
    graph.state.inject(503, count=20, retry_after=0, every=7, method="GET")
    batch = _batch(corpus, 40)
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Storm",), None)
        chunks = [batch[i : i + 5] for i in range(0, len(batch), 5)]
        with ThreadPoolExecutor(8) as pool:
            results = [
                r for rs in pool.map(lambda c: sink.put_batch(("Storm",), c), chunks) for r in rs
            ]
        assert all(isinstance(r, Delivered) for r in results)
        assert sink.api.stats["throttled"] >= 40
    finally:
        sink.close()
    assert graph.state.counters.get("throttled_MailboxConcurrency", 0) == 0  # never over 4 at once
    _check_delivered(graph, batch, ("Storm",), "importMime")


def test_never_more_than_four_requests_at_once(graph: GraphServer) -> None:
    graph.state.limits.delay = 0.05  # requests overlap, so the per-mailbox cap matters
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\nhi\r\n"
    sink = open_sink(graph)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda n: sink.put_batch(("Inbox",), [(stored(n, raw), raw)]), range(32))
            )
    finally:
        sink.close()
    assert all(isinstance(r, Delivered) for (r,) in results)
    assert graph.state.counters.get("throttled_MailboxConcurrency", 0) == 0
    assert box(graph).max_in_flight <= 4


def test_upload_budget_is_waited_out(graph: GraphServer) -> None:
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\n" + b"y" * 3000 + b"\r\n"
    graph.state.limits.upload_bytes = 3 * len(gj.import_body(stored(1, raw), raw)["mimeContent"])
    graph.state.limits.upload_window = 1.0
    sink = open_sink(graph)
    try:
        batch = [(stored(n, raw), raw) for n in range(1, 7)]
        assert all(isinstance(r, Delivered) for r in sink.put_batch(("Inbox",), batch))
    finally:
        sink.close()
    assert graph.state.counters["throttled_MailboxUpload"] >= 1
    assert Counter(key_of(m) for m in box(graph).messages.values()) == Counter(
        m.stable_key for m, _ in batch
    )


@pytest.mark.parametrize("status", [0, 503, 504])
def test_ambiguous_failures_never_double(graph: GraphServer, corpus: Path, status: int) -> None:
    # The server stores the item, then drops the connection or answers 5xx.
    graph.state.inject(status, count=4, when="after", path_contains="importMime", every=2)
    batch = _batch(corpus, 10)
    sink = open_sink(graph)
    try:
        results = sink.put_batch(("Inbox",), batch)
    finally:
        sink.close()
    assert all(isinstance(r, Delivered) for r in results)
    _check_delivered(graph, batch, ("Inbox",), "importMime")


def test_retry_after_is_honoured(graph: GraphServer, corpus: Path) -> None:
    graph.state.inject(429, count=1, retry_after=1, path_contains="importMime")
    sink = open_sink(graph)
    try:
        (raw,) = corpus_messages(corpus, 1)
        assert isinstance(sink.put_batch(("Inbox",), [(stored(1, raw), raw)])[0], Delivered)
    finally:
        sink.close()
    hits = [(t, s) for t, _m, p, s in graph.state.log if p.endswith("/importMime")]
    assert [s for _t, s in hits] == [429, 201]
    assert hits[1][0] - hits[0][0] >= 1.0  # a lower bound the client must respect


def test_resume_finds_what_was_delivered(graph: GraphServer, corpus: Path) -> None:
    batch = _batch(corpus, 8)
    first = open_sink(graph)
    try:
        first.put_batch(("Inbox",), batch[:5])
    finally:
        first.close()  # "killed" here; a new run starts from scratch
    second = open_sink(graph)
    try:
        todo = [(m, r) for m, r in batch if not second.find_duplicates(m, r, ("Inbox",))]
        assert [m.id for m, _ in todo] == [6, 7, 8]
        second.put_batch(("Inbox",), todo)
        inventory = list(second.inventory(("Inbox",)))
        assert sorted(i.stable_key for i in inventory) == sorted(m.stable_key for m, _ in batch)
        assert all(i.size for i in inventory)
        second.delete(("Inbox",), [inventory[0].target_id, inventory[0].target_id])
        assert len(list(second.inventory(("Inbox",)))) == 7
    finally:
        second.close()


def test_find_duplicates_by_message_id_for_foreign_items(graph: GraphServer, corpus: Path) -> None:
    (raw,) = corpus_messages(corpus, 1)
    graph.state.import_mime = 404
    sink = open_sink(graph)
    try:
        msg = stored(1, raw, message_id="<unique-1@example>")
        sink.put_batch(("Inbox",), [(msg, raw)])
        other_store = stored(99, raw, message_id="<unique-1@example>")  # different stable key
        assert len(sink.find_duplicates(other_store, raw, ("Inbox",))) == 1
    finally:
        sink.close()


def _big_message(size: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@example.org", "big"
    m["Message-ID"], m["Date"] = "<big@example.org>", "Tue, 02 Feb 2021 10:00:00 +0000"
    m.set_content("see attachment")
    m.add_attachment(
        bytes(range(256)) * (size // 256),
        maintype="application",
        subtype="octet-stream",
        filename="big.bin",
    )
    return m.as_bytes()


def test_large_message_uses_upload_session(
    graph: GraphServer, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _big_message(5 * 1024 * 1024)
    sink = open_sink(graph)
    try:
        with graph_log(caplog):
            (r,) = sink.put_batch(("Inbox",), [(stored(1, raw, frozenset({Flag.SEEN})), raw)])
        assert isinstance(r, Delivered)
        assert sink.mode_counts == {"importMime": 0, "json": 1}
        assert "over importMime's 4 MB request cap" in caplog.text
    finally:
        sink.close()
    (m,) = box(graph).messages.values()
    assert [len(a.data) for a in m.attachments] == [5 * 1024 * 1024 // 256 * 256]
    assert key_of(m) == "store-7f3a:1" and m.props["isDraft"] is False
    assert any(p.startswith("/upload/") for _t, _m, p, _s in graph.state.log)


def test_bad_message_is_failed_not_fatal(graph: GraphServer) -> None:
    graph.state.limits.max_header_bytes = 5  # the server refuses any X- header now
    graph.state.import_mime = 404
    raw = b"From: a@example.org\r\nX-Spam: yes\r\nSubject: hi\r\n\r\nbody\r\n"
    good = b"From: a@example.org\r\nSubject: ok\r\n\r\nbody\r\n"
    sink = open_sink(graph)
    try:
        r = sink.put_batch(("Inbox",), [(stored(1, raw), raw), (stored(2, good), good)])
    finally:
        sink.close()
    assert isinstance(r[0], Failed) and "InvalidInternetMessageHeaderCollection" in r[0].reason
    assert isinstance(r[1], Delivered)


@pytest.mark.slow
def test_kill_and_resume(graph: GraphServer) -> None:
    count = 30
    graph.state.limits.delay = 0.03  # slow enough to be killed mid-way
    repo = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.graphserver.child_import",
            graph.location(UPN),
            str(graph.ca_file),
            str(count),
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    for _ in range(8):  # let it deliver a few, then kill it without warning
        child.stdout.readline()
    child.kill()
    child.wait()
    before = len(box(graph).messages)
    assert 8 <= before < count
    sink = open_sink(graph)
    try:
        for n in range(1, count + 1):
            raw = child_import.message(n)
            msg = stored(n, raw)
            if not sink.find_duplicates(msg, raw, ("Inbox",)):
                assert isinstance(sink.put_batch(("Inbox",), [(msg, raw)])[0], Delivered)
    finally:
        sink.close()
    keys = Counter(key_of(m) for m in box(graph).messages.values())
    assert keys == Counter(f"store-7f3a:{n}" for n in range(1, count + 1))


def test_delete_in_batches_under_throttling(graph: GraphServer) -> None:
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\nhi\r\n"
    sink = open_sink(graph)
    try:
        results = sink.put_batch(("Inbox",), [(stored(n, raw), raw) for n in range(45)])
        ids = [r.target_id for r in results if isinstance(r, Delivered)]
        graph.state.inject(429, count=6, retry_after=0, every=4, method="DELETE")
        sink.delete(("Inbox",), [*ids[:40], "AAMk-gone"])
        assert sorted(k.stable_key for k in sink.inventory(("Inbox",))) == [
            f"store-7f3a:{n}" for n in range(40, 45)
        ]
    finally:
        sink.close()
    batches = [p for _t, m, p, _s in graph.state.log if p.endswith("/$batch")]
    assert 3 <= len(batches) <= 9  # 41 ids in 20s, plus re-sent throttled parts


def test_half_made_copy_is_removed_not_taken_for_a_duplicate(graph: GraphServer) -> None:
    raw = b"From: a@example.org\r\nSubject: x\r\nMessage-ID: <half@example.org>\r\n\r\nhi\r\n"
    msg = stored(1, raw, message_id="<half@example.org>")
    # What a run killed between "create" and "attachments done" leaves behind.
    made = gj.json_message(msg, raw, msg.stable_key + gj.INCOMPLETE).body
    inbox = graph.state.folder(box(graph), "inbox")
    assert inbox is not None
    half = server_messages.create_json(graph.state, inbox.id, made)
    box(graph).messages[half.id] = half
    sink = open_sink(graph)
    try:
        assert sink.find_duplicates(msg, raw, ("Inbox",)) == []
        assert half.id not in box(graph).messages
        assert isinstance(sink.put_batch(("Inbox",), [(msg, raw)])[0], Delivered)
    finally:
        sink.close()
    assert [key_of(m) for m in box(graph).messages.values()] == [msg.stable_key]
