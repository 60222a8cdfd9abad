"""pstkit.handoff.Channel: every item arrives once, in each producer's order, and no more
than `size` items are ever queued or held by the consumer."""

from __future__ import annotations

import random
import threading

import pytest

from pstkit.handoff import Channel


def _producers(ch: Channel[tuple[int, int]], n: int, count: int) -> list[threading.Thread]:
    def run(p: int) -> None:
        for i in range(count):
            ch.put((p, i))
        ch.put((p, -1))

    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in range(n)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.parametrize(("producers", "size"), [(1, 1), (1, 4), (2, 8), (3, 2), (4, 5)])
def test_all_items_in_order_and_bounded(producers: int, size: int) -> None:
    ch: Channel[tuple[int, int]] = Channel(size)
    threads = _producers(ch, producers, 300)
    seen: dict[int, list[int]] = {p: [] for p in range(producers)}
    ended = 0
    rng = random.Random(size)
    while ended < producers:
        batch = ch.take(timeout=10)
        assert batch, "a producer is stuck"
        for k, (p, i) in enumerate(batch):
            # What is queued now plus what this batch still holds stays within the bound.
            assert len(ch._items) + len(batch) - k <= size
            if rng.random() < 0.1:
                threading.Event().wait(0.0005)  # let the producers run into the bound
            if i == -1:
                ended += 1
            else:
                seen[p].append(i)
            ch.done()
    for t in threads:
        t.join(10)
    assert seen == {p: list(range(300)) for p in range(producers)}


def test_take_times_out_empty() -> None:
    ch: Channel[int] = Channel(2)
    assert ch.take(timeout=0.01) == []
    ch.put(1)
    assert ch.take(timeout=0.01) == [1]


def test_done_all_frees_a_blocked_producer() -> None:
    ch: Channel[int] = Channel(2)
    ch.put(1)
    ch.put(2)
    assert ch.take() == [1, 2]  # held, not done: the channel is still full
    put = threading.Event()
    t = threading.Thread(target=lambda: (ch.put(3), put.set()), daemon=True)
    t.start()
    assert not put.wait(0.05)  # blocked by the two held items
    ch.done(None)
    assert put.wait(10)
    assert ch.take() == [3]
