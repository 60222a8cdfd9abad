"""MIME -> MAPI in a second process (convert.py): the child answers exactly what this
process would, in order; a child that dies or cannot start is replaced by this process
without an error; a PST written with the child is byte for byte the one written without
it; a killed write leaves no PST and no orphaned child; and a Ctrl-C at the terminal
(the child gets it too) leaves a whole PST that the re-run completes."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from pstkit.converters.pst.btree import Ndb, NdbError
from pstkit.converters.pst.write import convert
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.convert import Converter, Job, translate
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Delivered, Flag, Role, StoredMessage
from pstkit.options import ConnectOptions
from tests.helpers import REPO, cli, descendants, gone, kill_when, run_pstkit, signal_when

from .test_write_fastmime import _corpus_messages
from .test_write_fuzz import hostile

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _jobs(corpus: Path) -> list[Job]:
    rng = random.Random(7)
    raws = [*_corpus_messages(corpus), *(hostile(rng, i) for i in range(27))]
    flags = [frozenset(), frozenset({"seen"}), frozenset({"draft", "flagged"}),
             frozenset({"answered", "seen"})]
    return [(raw, flags[i % 4], WHEN) for i, raw in enumerate(raws)]


def test_the_child_answers_as_this_process_does(corpus: Path) -> None:
    jobs = _jobs(corpus)
    here = [translate(j) for j in jobs]
    conv = Converter(enabled=True)
    try:
        for start in range(0, len(jobs), 50):  # batches as the sink hands them over
            assert list(conv.map(jobs[start:start + 50])) == here[start:start + 50]
        assert conv.answered == len(jobs)
    finally:
        conv.close()


def test_jobs_sent_ahead_are_answered_in_the_batch_that_asks(corpus: Path) -> None:
    """As the sink sends mail ahead from its duplicate check: a batch takes the answers of
    its jobs sent ahead, in its own order, sends those that were not, and drops answers
    no batch asks for (a duplicate the pipeline skipped)."""
    jobs = _jobs(corpus)[:40]
    want = [translate(j) for j in jobs]
    conv = Converter(enabled=True)
    try:
        for job in jobs[:12]:  # under the child's queue bound (AHEAD)
            conv.ahead(job)
        skipped = {3, 4, 9}  # sent ahead, never asked for
        batch = [i for i in range(30) if i not in skipped]  # 12..29: not sent ahead
        assert list(conv.map(jobs[i] for i in batch)) == [want[i] for i in batch]
        conv.ahead(jobs[30])
        later = [31, 30, 32, 33]  # out of the order sent
        assert list(conv.map(jobs[i] for i in later)) == [want[i] for i in later]
        assert conv.enabled and conv.answered == 12 + 18 + 4
    finally:
        conv.close()


def test_a_left_batch_does_not_shift_the_next_ones_answers(corpus: Path) -> None:
    jobs = _jobs(corpus)[:30]
    conv = Converter(enabled=True)
    try:
        first = conv.map(jobs[:20])
        assert next(first) == translate(jobs[0])
        first.close()  # the writer failed mid-batch: the rest of its answers are dropped
        assert list(conv.map(jobs[20:])) == [translate(j) for j in jobs[20:]]
        assert conv.enabled
    finally:
        conv.close()


def test_a_dead_child_is_replaced_by_this_process(corpus: Path) -> None:
    jobs = _jobs(corpus)[:40]
    want = [translate(j) for j in jobs]
    conv = Converter(enabled=True)
    got = conv.map(jobs)
    answers = [next(got)]
    assert conv._child is not None
    conv._child.kill()  # mid-batch: what it had not answered is translated here
    conv._child.wait()
    answers += list(got)
    assert answers == want
    assert list(conv.map(jobs)) == want  # the next batch finds it dead and stays here
    assert not conv.enabled and conv._child is None
    assert list(conv.map(jobs[:5])) == want[:5]


def test_a_child_that_cannot_start_is_no_error(corpus: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    jobs = _jobs(corpus)[:10]
    conv = Converter(enabled=True)
    assert list(conv.map(jobs)) == [translate(j) for j in jobs]
    assert not conv.enabled and conv.answered == 0


def _stored(i: int) -> StoredMessage:
    return StoredMessage(i, ("Inbox",), "", 0, frozenset({Flag.SEEN}), frozenset({"k"}), WHEN,
                         f"<m{i}@x>", "", str(i), "e", store_id="s")


def _write(out: Path, raws: list[bytes], child: bool) -> tuple[list[object], int]:
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.converter = Converter(enabled=child)
    sink.ensure_folder(("Inbox",), Role.INBOX)
    results: list[object] = []
    for start in range(0, len(raws), 50):
        batch = [(_stored(i), raw) for i, raw in enumerate(raws[start:start + 50], start)]
        results += sink.put_batch(("Inbox",), batch)
    answered = sink.converter.answered
    sink.close()
    return results, answered


def test_the_file_is_the_same_with_or_without_the_child(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "urandom", lambda n: b"\x5a" * n)  # the same record key twice
    raws = [raw for raw, _f, _w in _jobs(corpus)]
    a, b = tmp_path / "here" / "out.pst", tmp_path / "there" / "out.pst"  # one store name
    a.parent.mkdir()
    b.parent.mkdir()
    here, _ = _write(a, raws, child=False)
    there, answered = _write(b, raws, child=True)
    assert answered == len(raws)
    assert there == here
    assert sum(isinstance(r, Delivered) for r in here) > len(raws) // 2
    assert b.read_bytes() == a.read_bytes()
    with b.open("rb") as f:
        assert check(f).findings == []


def _big(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"s{i}@example.com", "r@example.com", f"m {i}"
    msg["Date"] = "Mon, 04 Mar 2024 09:30:00 +0000"
    msg.set_content("body " * 200)
    msg.add_attachment(random.Random(i).randbytes(400_000), maintype="application",
                       subtype="octet-stream", filename=f"f{i}.bin")
    return msg.as_bytes()


def _big_store(tmp_path: Path) -> Path:
    """A store of 150 mails of ~0.5 MB (~75 MB): a PST write of it takes seconds."""
    md = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(150):
        (md / "cur" / f"{1700000000 + i}.m{i}.test:2,S").write_bytes(_big(i))
    store = tmp_path / "store"
    assert cli("--quiet", "export", f"maildir:{md}", str(store))[0] == 0
    return store


def _midway(proc: subprocess.Popen[Any], work: Path, kids: list[int]) -> Callable[[], bool]:
    """A look for kill_when/signal_when: the translating child is there (its pid kept in
    `kids`) and two batches (24 MB) are in the work file."""
    def look() -> bool:
        kids[:] = kids or descendants(proc.pid)
        return bool(kids) and work.exists() and work.stat().st_size > 24_000_000

    return look


def test_a_killed_write_leaves_no_pst_and_no_child(tmp_path: Path) -> None:
    store, out = _big_store(tmp_path), tmp_path / "out.pst"
    work = out.with_name(out.name + ".pstkit-tmp")
    proc = subprocess.Popen([sys.executable, "-m", "pstkit", "--quiet", "import", str(store),
                             f"pst:{out}"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "PSTKIT_PST_TRANSLATE": "child"})
    kids: list[int] = []
    assert kill_when(proc, _midway(proc, work, kids), timeout=60), "the write ended first"
    assert not out.exists()
    with work.open("rb") as f, pytest.raises(NdbError):
        Ndb.open(f)  # no header yet: no reader takes the work file for a PST
    assert all(gone(k) for k in kids), "the translating child outlived its writer"
    # the batches were not marked "sending" before they went out (AtomicSink): after a
    # kill nothing of them is in a PST, and the next run writes a new file anyway
    with sqlite3.connect(store / "catalog.sqlite") as db:
        ledger = db.execute("SELECT how, count(*) FROM deliveries GROUP BY how").fetchall()
    assert dict(ledger).keys() == {"delivered"}, ledger
    done = run_pstkit("--quiet", "import", str(store), f"pst:{out}", timeout=300,
                      env={"PSTKIT_PST_TRANSLATE": "child"})
    assert done.returncode == 0, done.stderr
    with out.open("rb") as f:
        assert check(f).findings == []
    assert not work.exists()


def test_ctrl_c_at_the_terminal_stops_writer_and_child_and_the_rerun_completes(
        tmp_path: Path) -> None:  # fmt: skip
    """A Ctrl-C at the terminal reaches the whole process group, the translating child
    too: the writer stops with the one-line report (exit 130), what it wrote is a whole
    PST, no child is left, and the re-run completes it with every mail once."""
    store, out = _big_store(tmp_path), tmp_path / "out.pst"
    work = out.with_name(out.name + ".pstkit-tmp")
    proc = subprocess.Popen([sys.executable, "-m", "pstkit", "import", str(store), f"pst:{out}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "PSTKIT_PST_TRANSLATE": "child"})
    kids: list[int] = []
    assert signal_when(proc, _midway(proc, work, kids), signal.SIGINT, timeout=60, group=True), \
        "the write ended first"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopping…" in err and "pstkit: error: interrupted" in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert all(gone(k) for k in kids), "the translating child outlived its writer"
    with out.open("rb") as f:
        assert check(f).findings == []
    done = run_pstkit("--quiet", "import", str(store), f"pst:{out}", timeout=300)
    assert done.returncode == 0, done.stderr
    ver = run_pstkit("--json", "--quiet", "verify", "--all", str(store), f"pst:{out}")
    totals = json.loads(ver.stdout)["totals"]
    assert totals == {"matching": 150, "missing": 0, "extra": 0, "differing": 0,
                      "errors": 0}, ver.stdout


def test_the_child_is_this_module(tmp_path: Path) -> None:
    """The child runs `python -m` on the module itself: it must answer a job piped in."""
    conv = Converter(enabled=True)
    try:
        job: Job = (b"Subject: hi\r\n\r\nbody\r\n", frozenset(), WHEN)
        assert list(conv.map([job] * convert.MIN_JOBS)) == [translate(job)] * convert.MIN_JOBS
        assert conv.answered == convert.MIN_JOBS
    finally:
        conv.close()


def test_by_default_it_translates_here_until_it_has_measured(
        corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No choice in the environment: the first DECIDE_AFTER seconds' jobs are translated
    here; then it decides, and the answers are the same either way."""
    monkeypatch.delenv("PSTKIT_PST_TRANSLATE", raising=False)
    jobs = _jobs(corpus)[:30]
    conv = Converter()
    try:
        assert conv.enabled is None
        assert list(conv.map(jobs[:10])) == [translate(j) for j in jobs[:10]]
        assert conv._child is None and conv.answered == 0  # too early to have measured
        monkeypatch.setattr(convert, "DECIDE_AFTER", 0.0)
        time.sleep(0.2)
        assert list(conv.map(jobs[10:])) == [translate(j) for j in jobs[10:]]
        assert conv.enabled is not None
        assert conv.answered == (20 if conv.enabled else 0)
    finally:
        conv.close()


def test_no_child_when_every_cpu_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a busy loop on every CPU there is none idle for a child: it stays here."""
    monkeypatch.delenv("PSTKIT_PST_TRANSLATE", raising=False)
    monkeypatch.setattr(convert, "DECIDE_AFTER", 0.5)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)  # they run
        conv = Converter()
        time.sleep(0.6)
        job: Job = (b"Subject: hi\r\n\r\nbody\r\n", frozenset(), WHEN)
        assert list(conv.map([job] * 8)) == [translate(job)] * 8
        assert conv.enabled is False and conv.answered == 0
        conv.close()
    finally:
        for p in busy:
            p.kill()
            p.wait()


def test_the_next_batch_hinted_is_sent_after_this_ones_jobs_and_only_once(
        corpus: Path) -> None:  # fmt: skip
    """The pipeline hints the next batch while one is written: its jobs go to the child
    once every job of the batch at hand has gone (so the child is not idle at the batch's
    end), the duplicate check's `ahead` and the next `map` send none of them again, and a
    hint replaced before it was used is never sent."""
    jobs = _jobs(corpus)[:70]
    want = [translate(j) for j in jobs]
    conv = Converter(enabled=True)
    try:
        first = conv.map(jobs[:20])
        got = [next(first)]  # the child runs: the batch's 20 jobs are sent
        conv.hint(jobs[50:70])  # replaced below before any was sent: never sent
        conv.hint(jobs[20:40])
        assert conv.waiting == 19  # nothing hinted goes before this batch is all sent
        got += list(first)
        assert got == want[:20]
        assert conv.waiting == 20  # the hinted batch, sent while the first was taken
        for job in jobs[20:40]:  # the next batch's duplicate check
            conv.ahead(job)
        assert conv.waiting == 20
        assert list(conv.map(jobs[20:40])) == want[20:40]
        assert list(conv.map(jobs[40:50])) == want[40:50]
        assert conv.waiting == 0 and conv.answered == 50  # each job translated once
    finally:
        conv.close()


def test_a_hinted_job_the_pipeline_skips_is_answered_in_vain(corpus: Path) -> None:
    jobs = _jobs(corpus)[:30]
    want = [translate(j) for j in jobs]
    conv = Converter(enabled=True)
    try:
        first = conv.map(jobs[:10])
        next(first)
        conv.hint(jobs[10:20])  # 12 and 15 turn out to be duplicates: never asked for
        assert len(list(first)) == 9
        batch = [i for i in range(10, 30) if i not in (12, 15)]
        assert list(conv.map(jobs[i] for i in batch)) == [want[i] for i in batch]
        assert conv.waiting == 0 and conv.answered == 30
    finally:
        conv.close()


def test_idle_time_counts_only_the_cpus_this_process_may_use() -> None:
    """From /proc/stat's per-CPU lines: two busy CPUs the writer may use and two idle ones
    it may not (its affinity) leave nothing idle for a child, which inherits it."""
    stat = (b"cpu  400 0 400 1000 0 0 0 0 0 0\n"
            b"cpu0 100 0 100 0 0 0 0 0 0 0\n"
            b"cpu1 100 0 100 0 0 0 0 0 0 0\n"
            b"cpu2 100 0 100 400 100 0 0 0 0 0\n"
            b"cpu3 100 0 100 500 0 0 0 0 0 0\n"
            b"intr 12345 0 0\nctxt 999\n")
    assert convert.cpu_ticks(stat, frozenset({0, 1})) == (0, 400, 2)
    assert convert.cpu_ticks(stat, frozenset({1, 2, 7})) == (500, 900, 2)  # 7: not listed
    assert convert.cpu_ticks(stat, None) == (1000, 1800, 4)
    assert convert.cpu_ticks(stat, frozenset({5})) is None
    assert convert.cpu_ticks(b"cpu0 1 2 x 4 5\n", None) is None
    with open("/proc/stat", "rb") as f:  # this machine's own: every CPU it has is listed
        real = convert.cpu_ticks(f.read(), None)
    assert real is not None and real[2] == os.cpu_count()
