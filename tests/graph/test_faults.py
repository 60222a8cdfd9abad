"""GraphSink under throttling, limits, ambiguous failures, kills: nothing lost, nothing doubled."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pstkit.converters.graph import jsonmail as gj
from pstkit.model import Delivered
from pstkit.protocols import Failed
from tests.servers.graph import child_import
from tests.servers.graph.checks import box, check_delivered, key_of, make_batch
from tests.servers.graph.fixtures import (
    UPN,
    corpus_messages,
    graph,
    graph_tls,
    open_sink,
    stored,
)
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]  # fixtures used by name


def test_throttling_storm_every_item_exactly_once(graph: GraphServer, corpus: Path) -> None:
    graph.state.inject(429, count=400, retry_after=0, every=2)
    graph.state.inject(503, count=20, retry_after=0, every=7, method="GET")
    batch = make_batch(corpus, 40)
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
    check_delivered(graph, batch, ("Storm",), "importMime")


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
    graph.state.limits.upload_bytes = 3 * len(gj.import_mime_body(raw))
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
    batch = make_batch(corpus, 10)
    sink = open_sink(graph)
    try:
        results = sink.put_batch(("Inbox",), batch)
    finally:
        sink.close()
    assert all(isinstance(r, Delivered) for r in results)
    check_delivered(graph, batch, ("Inbox",), "importMime")


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


@pytest.mark.slow
def test_kill_and_resume(graph: GraphServer) -> None:
    count = 30
    graph.state.limits.delay = 0.03  # slow enough to be killed mid-way
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.servers.graph.child_import",
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
    try:  # as the pipeline resumes: settle what may have been in flight, send the rest
        for n in range(1, count + 1):
            raw = child_import.message(n)
            msg = stored(n, raw, message_id=f"<{n}@kill>")
            if not sink.settle(("Inbox",), msg, raw, ""):
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
        start = len(graph.state.log)
        sink.delete(("Inbox",), [*ids[:40], "AAMk-gone"])
        assert sorted(k.stable_key for k in sink.inventory(("Inbox",))) == [
            f"store-7f3a:{n}" for n in range(40, 45)
        ]
    finally:
        sink.close()
    batches = [p for _t, m, p, _s in graph.state.log[start:] if p.endswith("/$batch")]
    assert 3 <= len(batches) <= 9  # 41 ids in 20s, plus re-sent throttled parts


def test_size_rejection_is_reported_per_item(graph: GraphServer) -> None:
    graph.state.limits.max_request_bytes = 8000  # a tenant with a smaller cap than we assume
    small = b"From: a@example.org\r\nSubject: small\r\n\r\nhi\r\n"
    big = b"From: a@example.org\r\nSubject: big\r\n\r\n" + b"z" * 9000 + b"\r\n"
    sink = open_sink(graph)
    try:
        results = sink.put_batch(("Inbox",), [(stored(1, small), small), (stored(2, big), big)])
    finally:
        sink.close()
    assert isinstance(results[0], Delivered)
    assert isinstance(results[1], Failed) and "413" in results[1].reason
    assert len(box(graph).messages) == 1
