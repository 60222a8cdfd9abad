"""The shared memory between the PST writer and its translating child (ring.py, convert.py):
slots never overlap and are given back in order; answers are the same whether the bytes
went through the slots or the pipes, also when the memory is full, a job is too large
for it or an answer does not fit its slot."""

from __future__ import annotations

import marshal
import os
import struct
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst.write import convert, ring, wire
from pstkit.converters.pst.write.convert import Converter, translate
from pstkit.converters.pst.write.ring import Ring, Shared, slot_size

from .test_write_convert import _jobs


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4096),
       st.lists(st.tuples(st.booleans(), st.integers(1, 5000)), max_size=200))
def test_slots_stay_inside_and_apart(size: int, steps: list[tuple[bool, int]]) -> None:
    r = Ring(size)
    live: list[tuple[int, int]] = []  # oldest first, as the writer gives them back
    for take, n in steps:
        if take or not live:
            start = r.take(n)
            if start is None:
                # refused only when neither after the newest slot nor at the buffer's
                # start n bytes are free and inside
                places = [live[-1][1], 0] if live else [0]
                assert not any(p + n <= size and all(p + n <= a or b <= p for a, b in live)
                               for p in places)
                continue
            assert start >= 0 and start + n <= size
            assert all(start + n <= a or b <= start for a, b in live), "slots overlap"
            live.append((start, start + n))
        else:
            r.give_back(live.pop(0)[0])
        assert r.taken == sum(b - a for a, b in live)
    if not live:
        assert r.take(size) == 0  # an empty ring has all of its room


def test_slots_are_given_back_in_order() -> None:
    r = Ring(100)
    first, second = r.take(10), r.take(10)
    assert (first, second) == (0, 10)
    with pytest.raises(ValueError):
        r.give_back(10)
    r.give_back(0)
    r.give_back(10)
    assert r.taken == 0


def test_a_full_ring_wraps_to_its_start_when_the_oldest_are_back() -> None:
    r = Ring(100)
    assert [r.take(40), r.take(40)] == [0, 40]
    assert r.take(30) is None  # 20 left at the end, 0 at the start
    r.give_back(0)
    assert r.take(30) == 0  # before the oldest, now at 40
    assert r.take(11) is None  # 10 between the newest (30) and the oldest (40)
    assert r.take(10) == 30


def _answers(jobs: list[convert.Job]) -> tuple[list[convert.Result], Converter]:
    conv = Converter(enabled=True)
    got: list[convert.Result] = []
    try:
        for start in range(0, len(jobs), 25):
            got += conv.map(jobs[start : start + 25])
    finally:
        conv.close()
    return got, conv


def test_answers_come_back_through_the_shared_memory(corpus: Path) -> None:
    if Shared.create(4096) is None:
        pytest.skip("no memfd here: the pipes carry everything")
    jobs = _jobs(corpus)
    want = [translate(j) for j in jobs]
    got, conv = _answers(jobs)
    assert got == want
    assert conv.answered == len(jobs)
    # each answer that fits its job's slot comes that way (the corpus jobs are small, so
    # there is always room); a few corpus mails have answers of 7-11 times their size
    fits = sum(len(marshal.dumps(("ok", convert._pack(w)))) <= slot_size(len(j[0]))
               for j, w in zip(jobs, want, strict=True))
    assert 0 < fits < len(jobs)
    assert conv.in_slots == fits


@pytest.mark.parametrize("size", [64 * 1024, 300 * 1024])
def test_a_small_memory_wraps_and_sends_the_rest_through_the_pipes(
        corpus: Path, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A memory with room for a few jobs: slots wrap round many times, jobs that find no
    room (or are over MAX_JOB) and answers over their slot go through the pipes."""
    if Shared.create(4096) is None:
        pytest.skip("no memfd here: the pipes carry everything")
    monkeypatch.setattr(ring, "SIZE", size)
    monkeypatch.setattr(convert, "MAX_JOB", 40 * 1024)
    jobs = _jobs(corpus) * 3
    got, conv = _answers(jobs)
    assert got == [translate(j) for j in jobs]
    assert 0 < conv.in_slots < len(jobs)


def test_answers_larger_than_their_slot_come_through_the_pipe(
        corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if Shared.create(4096) is None:
        pytest.skip("no memfd here: the pipes carry everything")
    monkeypatch.setattr(convert, "slot_size", lambda n: n)  # room for the job only
    jobs = _jobs(corpus)
    got, conv = _answers(jobs)
    assert got == [translate(j) for j in jobs]
    assert conv.in_slots < len(jobs)  # a MAPI answer is mostly larger than its mail


def test_an_answer_marshal_cannot_write_comes_back_as_an_error() -> None:
    """The child's loop (wire.serve) answers ("error", why) for a result marshal cannot
    write; the writer then translates that job itself (Converter._next)."""
    jobs_r, jobs_w = os.pipe()
    answers_r, answers_w = os.pipe()
    switch = sys.getswitchinterval()  # serve sets the child's
    with os.fdopen(jobs_r, "rb") as inp, os.fdopen(answers_w, "wb") as out:
        child = threading.Thread(target=wire.serve,
                                 args=(inp, out, None, lambda job: [object(), job[0]]))
        child.start()
        with os.fdopen(jobs_w, "wb") as send:
            meta = wire.pack_meta(frozenset(), None, None)
            raw = b"Subject: x\r\n\r\nbody\r\n"
            send.write(struct.pack("<Q", len(meta)) + meta + struct.pack("<Q", len(raw)) + raw)
        child.join(10)
    sys.setswitchinterval(switch)
    with os.fdopen(answers_r, "rb") as got:
        size = struct.unpack("<Q", got.read(8))[0]
        kind, why = marshal.loads(got.read(size))
    assert kind == "error" and "unmarshallable" in why


@settings(max_examples=300, deadline=None)
@given(st.frozensets(st.sampled_from(["seen", "answered", "flagged", "draft", "ü"])),
       st.one_of(st.none(), st.datetimes(timezones=st.sampled_from(
           [None, UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)),
            ZoneInfo("Europe/Berlin")]))),
       st.one_of(st.none(), st.tuples(st.integers(0, 2**40), st.integers(0, 2**30),
                                      st.integers(0, 2**31))))
def test_a_jobs_flags_time_and_place_cross_as_they_are(
        flags: frozenset[str], received: datetime | None,
        where: tuple[int, int, int] | None) -> None:
    got = wire.unpack_meta(wire.pack_meta(flags, received, where))
    assert got == (flags, received, where)
    if received is not None:  # the same zone, not only the same instant
        assert got[1] is not None and got[1].utcoffset() == received.utcoffset()
        assert (got[1].tzinfo is None) == (received.tzinfo is None)
        assert got[1].fold == received.fold
