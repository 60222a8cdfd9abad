"""The two requests of a Graph mail delivery: importMime, then the PATCH (batched)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from pstkit.converters.graph.finish import MAX_BATCH, SLOTS, spread
from pstkit.model import Delivered, Flag
from pstkit.protocols import Failed, TwoStepSink
from tests.servers.graph.checks import box, key_of
from tests.servers.graph.fixtures import graph, graph_tls, open_sink, stored
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]


def _raw(n: int) -> bytes:
    return (f"From: a@example.org\r\nSubject: two-step {n}\r\nMessage-ID: <{n}@two.example>\r\n"
            f"\r\nbody {n}\r\n").encode()  # fmt: skip


@given(st.integers(min_value=0, max_value=500))
def test_spread_covers_every_item_once_in_even_chunks(n: int) -> None:
    parts = spread(n)
    assert [i for p in parts for i in p] == list(range(n))
    assert all(1 <= len(p) <= MAX_BATCH for p in parts)
    if parts:
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # the 4 slots finish together
        assert len(parts) % SLOTS == 0 or len(parts) == n


def test_patches_go_in_sequential_batches(graph: GraphServer) -> None:
    batch = [(stored(n, _raw(n), frozenset({Flag.SEEN}) if n % 2 else frozenset(),
                     message_id=f"<{n}@two.example>"), _raw(n)) for n in range(1, 46)]  # fmt: skip
    sink = open_sink(graph)
    reported: list[tuple[int, str]] = []

    def note(made: Sequence[tuple[int, str]]) -> None:  # called before any PATCH
        assert not any(key_of(m) for m in box(graph).messages.values())
        reported.extend(made)

    try:
        assert isinstance(sink, TwoStepSink)
        results = sink.put_batch_noting(("Inbox",), batch, note)
    finally:
        sink.close()
    ids = [r.target_id for r in results if isinstance(r, Delivered)]
    assert sorted(reported) == sorted(zip([m.id for m, _ in batch], ids, strict=True))
    log = [(m, p) for _t, m, p, _s in graph.state.log]
    assert sum(p.endswith("/importMime") for _m, p in log) == 45
    calls = [p for m, p in log if p.endswith("/$batch")]
    assert len(calls) == 4  # 45 PATCHes: 3 calls of <= 20, spread over 4 slots
    assert box(graph).max_in_flight <= 4
    for (msg, _), r in zip(batch, results, strict=True):
        assert isinstance(r, Delivered)
        m = box(graph).messages[r.target_id]
        assert key_of(m) == msg.stable_key and m.props["isRead"] is (Flag.SEEN in msg.flags)


def test_failed_patch_is_not_delivered_and_is_finished_later(graph: GraphServer) -> None:
    batch = [(stored(n, _raw(n), frozenset({Flag.FLAGGED}), message_id=f"<{n}@two.example>"),
              _raw(n)) for n in range(1, 4)]  # fmt: skip
    # The first PATCH is refused for good; in its sequential batch the others get 424
    # and go again.
    graph.state.inject(400, count=1, method="PATCH", path_contains="/messages/")
    sink = open_sink(graph)
    try:
        results = sink.put_batch(("Inbox",), batch)
        failed = [(msg, r) for (msg, raw), r in zip(batch, results, strict=True)
                  if isinstance(r, Failed)]  # fmt: skip
        assert len(failed) == 1 and "not finished" in failed[0][1].reason
        assert sum(isinstance(r, Delivered) for r in results) == 2
        (msg, res), raw = failed[0], _raw(failed[0][0].id)
        item_id = res.reason.split("created as ")[1].split()[0]
        assert not key_of(box(graph).messages[item_id])  # made, not finished
        # The next run: the ledger kept the id; settle finishes the item, no resend.
        assert sink.settle(("Inbox",), msg, raw, item_id) == [item_id]
    finally:
        sink.close()
    assert len(box(graph).messages) == 3
    m = box(graph).messages[item_id]
    assert key_of(m) == msg.stable_key and m.props["flag"]["flagStatus"] == "flagged"


def test_an_answer_other_than_201_is_looked_up_not_trusted(graph: GraphServer) -> None:
    # The item is made, but the answer is a 200 without a message: not the documented 201.
    graph.state.inject(200, count=1, when="after", path_contains="/importMime")
    msg = stored(7, _raw(7), frozenset({Flag.SEEN}), message_id="<7@two.example>")
    sink = open_sink(graph)
    try:
        (r,) = sink.put_batch(("Inbox",), [(msg, _raw(7))])
        assert sink.mode_counts["importMime"] == 1
    finally:
        sink.close()
    assert isinstance(r, Delivered)
    (m,) = box(graph).messages.values()  # adopted by its Message-ID, not sent twice
    assert m.id == r.target_id and key_of(m) == msg.stable_key and m.props["isRead"] is True
