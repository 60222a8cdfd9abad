"""MIME -> MAPI of mail items in a second process, while this one writes the PST.

`to_mapi` (parsing, decoding, header translation) is about half of the writer's CPU and a
pure function of (raw, flags, received), so a child process can do it ahead of the
writer: on two cores the two halves overlap. Mails are sent as the pipeline first shows
them to the sink (`ahead`), so the child also works while this process reads, verifies
and records a batch. Only the translation moves; the file is
written by this process alone, in the order items come, so what is written does not
depend on where an item was translated (tests/pst/test_write_convert.py).

The child is `python -P -m pstkit.converters.pst.write.convert`, talking length-prefixed
frames over its stdin and stdout, the messages and answers themselves in shared memory
where it can (wire.py, ring.py; no multiprocessing: a spawned pool re-runs the
parent's `__main__`, and its workers keep their own ends of the queue pipes, so they
outlive a killed parent). A reader thread in the child drains stdin, so the parent can
send ahead without either side blocking on a full pipe; when the parent dies, stdin ends
and the child exits. Whatever goes wrong with the child (it cannot start, dies, answers
garbage) is not an error: the items not yet answered, and all later ones, are translated
here, as they were before this module. An item the child could not translate for any
reason other than hostile input is translated again here, so it fails exactly as it
would have.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

import pstkit
from pstkit import malloc

from . import ring
from .mapi import Attachment, Message, Prop, to_mapi
from .ring import MAX_JOB, Ring, Shared, slot_size
from .wire import SWITCH_S, Job, Slot, drain, mapped, sending, serve, widen

log = logging.getLogger("pstkit")
_Key = tuple[int, frozenset[str], datetime | None]


def _key(job: Job) -> _Key:
    """A job sent ahead is known again by its bytes object (alive while it waits in
    `_sent`, so its id is not reused) and its flags and time."""
    return id(job[0]), job[1], job[2]


#: the outcome of one job: its MAPI form, or why it cannot be written (hostile input)
Result = Message | str
#: jobs sent and not yet answered, at most (their bytes: the memory of both processes).
#: 16 / 8 MiB left the child idle a sixth of its time waiting for the next job; with the
#: next batch hinted (`hint`) 12 MiB is as fast as 16 and holds less (bench_pst_write,
#: 20,000 messages: 14.6 s either way, peak 180 against 190 MiB)
AHEAD, AHEAD_BYTES = 64, 12 << 20
MIN_JOBS = 4  # smaller batches are translated here: a round trip would cost more


def translate(job: Job) -> Result:
    raw, flags, received = job
    try:
        return to_mapi(raw, flags, received)
    except (ValueError, OverflowError) as e:  # hostile input: the item fails, not the run
        return str(e)


def _pack(result: Result) -> object:
    """A result as the child sends it: a message as nested tuples and lists, which
    marshal writes and reads (a fifth faster to read back than a pickle of the
    dataclasses, in the writer's own thread: 1,500 bench answers 0.10 against 0.13 s)."""
    if isinstance(result, str):
        return result
    atts = [(a.props, None if a.embedded is None else _pack(a.embedded))
            for a in result.attachments]
    return result.props, result.recipients, atts, result.calendar


_Packed = tuple[list[Prop], list[list[Prop]], list[tuple[list[Prop], object]], bool]


def _unpack(packed: object) -> Result:
    return packed if isinstance(packed, str) else _message(packed)


def _message(packed: object) -> Message:
    props, recipients, atts, calendar = cast(_Packed, packed)
    return Message(props, recipients,
                   [Attachment(p, None if e is None else _message(e)) for p, e in atts], calendar)


def _answer(data: bytes | memoryview) -> tuple[str, object]:
    kind, value = marshal.loads(data)  # copies its bytes out
    return kind, (_unpack(value) if kind == "ok" else value)


class Converter:
    """Translates jobs in order, in the child when it works, here when not."""

    def __init__(self, enabled: bool | None = None) -> None:
        #: PSTKIT_PST_TRANSLATE=here or =child decides (tests and benchmarks compare the
        #: two); by default the child is used when a CPU is idle for it, which is known
        #: after DECIDE_AFTER seconds of this writer's own work (None until then)
        self.enabled = _choice() if enabled is None else enabled
        self._cpus = _usable_cpus()
        self._since = (time.monotonic(), _cpu_times(self._cpus))
        keep_freed_memory()  # for the writer here, as `_child_env` for the child
        self._child: subprocess.Popen[bytes] | None = None
        self._sent: deque[Job] = deque()  # sent to the child, in order; answers unread
        self._slots: deque[Slot] = deque()  # the slot of each job in `_sent`
        self._sent_bytes = 0  # the size of the jobs in `_sent`
        self._shared: Shared | None = None  # the memory the slots are in (ring.py)
        self._ring: Ring | None = None
        self._posted: Counter[_Key] = Counter()  # the keys in `_sent`
        #: the pipeline's next batch, read ahead (`hint`): replaced whole by any thread,
        #: taken from by this one
        self._hints: deque[Job] = deque()
        self._answers: queue.Queue[bytes | int | BaseException] | None = None
        #: for the sending thread: each job with its slot
        self._jobs: queue.SimpleQueue[tuple[Job, Slot] | None] | None = None
        self._sender: threading.Thread | None = None
        self.answered = 0  # jobs the child translated
        self.in_slots = 0  # ... whose answers came back through the shared memory
        self.slotted = 0  # jobs sent through the shared memory

    def ahead(self, job: Job) -> None:
        """Send `job` to the child now (when it runs and has fewer than AHEAD jobs or
        AHEAD_BYTES waiting): a later `map` that has it takes its answer. The sink sends
        each mail as the pipeline first shows it (its duplicate check), so the child
        translates while this process reads, verifies and records a batch, not only
        while it writes."""
        self._decide()
        if not self._posted[_key(job)] and self._room() and self._start():
            self._post(job)

    @property
    def waiting(self) -> int:
        """Jobs sent to the child whose answers were not read yet."""
        return len(self._sent)

    def hint(self, jobs: Iterable[Job]) -> None:
        """Jobs that will probably come next (the pipeline's next batch, read while this
        one is written): sent to the child once every job of the batch at hand is, so it
        does not sit idle from the end of one batch until the next one's duplicate check
        (5,000 bench messages: the writer waited for answers a fifth of its time and the
        child for jobs two fifths of its own). Any thread may call it; each call replaces
        the hints before it. Those that never come (duplicates) are answered in vain."""
        if self.enabled and self._child is not None:
            self._hints = deque(jobs)

    def _feed(self, mine: set[_Key]) -> None:
        """Hints to the child while it has room; not those of the batch at hand (`mine`:
        `map` sends them itself) or already sent."""
        hints = self._hints
        while hints and self._room():
            try:
                job = hints.popleft()
            except IndexError:  # replaced meanwhile
                return
            key = _key(job)
            if key not in mine and not self._posted[key]:
                self._post(job)

    def _decide(self) -> None:
        """Whether a second process would run beside this one: with no idle CPU the two
        only take turns, and the hand-over costs CPU (about 25 %): 5,000 bench messages
        took 4.8 s with the child and 5.9 s here on two idle cores, 6.2 s and 5.1 s with
        one core busy. Measured over this writer's first DECIDE_AFTER seconds (it is busy
        on one CPU meanwhile), where /proc/stat tells; else from the load average."""
        if self.enabled is not None:
            return
        t0, before = self._since
        if time.monotonic() - t0 < DECIDE_AFTER:
            return  # until then, jobs are translated here
        after = _cpu_times(self._cpus)
        cpus = len(self._cpus) if self._cpus is not None else 1
        if before is None or after is None or after[1] - before[1] < 10:
            self.enabled = _quiet_load(cpus)
            return
        # the idle share of the CPUs this process may run on, in CPUs: others' idle time
        # is no use to a child that inherits the same affinity
        idle = (after[0] - before[0]) / (after[1] - before[1]) * after[2]
        self.enabled = cpus >= 2 and idle >= SPARE_IDLE
        log.debug("PST writer: %.1f CPUs idle: translating %s", idle,
                  "in a second process" if self.enabled else "here")

    def map(self, jobs: Iterable[Job]) -> Iterator[Result]:
        """The answers to `jobs`, in order. Jobs sent ahead are matched by identity (the
        same bytes object, flags and time); answers to jobs sent ahead that no batch asked
        for (a duplicate the pipeline skipped, a batch left mid-way) are read and dropped.
        The others are sent as answers come back, at most AHEAD waiting."""
        todo = list(jobs)
        if not todo:
            return
        self._decide()
        if (not self._sent and len(todo) < MIN_JOBS) or not self._start():
            yield from map(translate, todo)
            return
        done = 0
        try:
            there = Counter(_key(j) for j in self._sent)
            unsent: deque[Job] = deque()
            for job in todo:
                if there[_key(job)] > 0:
                    there[_key(job)] -= 1
                else:
                    unsent.append(job)
            got: dict[_Key, deque[Result]] = {}
            mine = {_key(job) for job in todo}
            for job in todo:
                key = _key(job)
                while not got.get(key):
                    while unsent and (self._room() or not self._sent):
                        self._post(unsent.popleft())
                    if not self._sent:
                        raise _ChildError("the child is gone")
                    front = _key(self._sent[0])
                    got.setdefault(front, deque()).append(self._next())
                if not unsent:
                    self._feed(mine)
                yield got[key].popleft()
                done += 1
        except (OSError, EOFError, _ChildError) as e:
            self._give_up(e)
            yield from map(translate, todo[done:])

    def _room(self) -> bool:
        """Whether the child may get one more job: a bound on its queue's memory."""
        return len(self._sent) < AHEAD and self._sent_bytes < AHEAD_BYTES

    def _post(self, job: Job) -> None:
        if self._child is None or self._jobs is None:
            return
        slot: Slot = None
        if self._ring is not None and len(job[0]) <= MAX_JOB:
            size = slot_size(len(job[0]))
            start = self._ring.take(size)
            slot = None if start is None else (start, size)
            self.slotted += slot is not None
        self._sent.append(job)  # first: if the send fails, the job is done here
        self._sent_bytes += len(job[0])
        self._slots.append(slot)
        self._posted[_key(job)] += 1
        self._jobs.put((job, slot))

    def _answered(self) -> Job:
        """The oldest job sent, out of `_sent` (its slot given back)."""
        job = self._sent.popleft()
        self._sent_bytes -= len(job[0])
        slot = self._slots.popleft()
        if slot is not None and self._ring is not None:
            self._ring.give_back(slot[0])
        key = _key(job)
        self._posted[key] -= 1
        if not self._posted[key]:
            del self._posted[key]
        return job

    def _start(self) -> bool:
        if self._child is None and self.enabled:
            shared = Shared.create(ring.SIZE)
            where = [str(shared.fd), str(shared.size)] if shared is not None else []
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-P", "-m", __name__, *where], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env(),
                    pass_fds=(shared.fd,) if shared is not None else ())
            except OSError as e:
                if shared is not None:
                    shared.close()
                self._give_up(e)
            else:
                if shared is not None:
                    self._shared, self._ring = shared, Ring(shared.size)
                widen(self._child)
                sys.setswitchinterval(SWITCH_S)
                self._answers = drain(self._child.stdout)
                self._jobs, self._sender = sending(self._child, shared)
        return self._child is not None

    def _next(self) -> Result:
        """The answer to the oldest job sent; the job stays in `_sent` unless answered."""
        assert self._answers is not None
        got = self._answers.get()
        if isinstance(got, BaseException):
            self._answers.put(got)  # for any later call: the child is gone
            raise got
        try:
            kind, value = _answer(got) if isinstance(got, bytes) else self._in_slot(got)
            self.in_slots += not isinstance(got, bytes)
        except Exception as e:  # garbage on the pipe: stop using the child
            raise _ChildError(f"unreadable answer ({e})") from e
        if kind == "ok" and isinstance(value, Message | str):
            self._answered()
            self.answered += 1
            return value
        if kind != "error":
            raise _ChildError(f"unexpected answer {kind!r}")
        return translate(self._answered())  # it failed there: here it raises as before

    def _in_slot(self, size: int) -> tuple[str, object]:
        """The answer the child put into the oldest job's slot (`size` bytes)."""
        slot = self._slots[0] if self._slots else None
        if slot is None or self._shared is None or size > slot[1]:
            raise _ChildError("an answer in shared memory for a job without room there")
        with memoryview(self._shared.mem) as mem, mem[slot[0] : slot[0] + size] as data:
            return _answer(data)

    def _give_up(self, why: BaseException) -> None:
        log.debug("PST writer: translating in this process (%s)", why)
        self.enabled = False
        self.close()

    def close(self) -> None:
        self._sent.clear()
        self._sent_bytes = 0
        self._slots.clear()
        self._posted.clear()
        self._hints = deque()
        self._answers = None
        child, self._child = self._child, None
        if child is None:
            return
        log.debug("PST writer: %d items translated in a second process; through shared "
                  "memory %d jobs, %d answers", self.answered, self.slotted, self.in_slots)
        # what it still translates is not wanted: it goes now (its pipes are closed only
        # after it has ended and the sending thread has stopped, as the threads may be
        # reading or writing them: killed, it makes any write fail)
        with contextlib.suppress(OSError):
            child.kill()
        child.wait()
        jobs, sender, self._jobs, self._sender = self._jobs, self._sender, None, None
        if jobs is not None and sender is not None:
            jobs.put(None)
            sender.join()
        with contextlib.suppress(OSError, ValueError):
            if child.stdin:
                child.stdin.close()
        if child.stdout:
            with contextlib.suppress(OSError):
                child.stdout.close()
        # the sending thread has ended, and the answering one never touches the memory
        shared, self._shared, self._ring = self._shared, None, None
        if shared is not None:
            shared.close()


DECIDE_AFTER = 0.3  # s of the writer's work before it decides where to translate
SPARE_IDLE = 0.7  # CPUs idle beside this writer's own, at least, for the child


def _choice() -> bool | None:
    choice = os.environ.get("PSTKIT_PST_TRANSLATE", "")
    if choice in ("here", "child"):
        return choice == "child"
    return None  # measured (Converter._decide)


def _quiet_load(cpus: int) -> bool:
    """Where /proc/stat is not: the load average, which lags a minute behind (a job that
    just ended still counts), so it errs towards one process."""
    if not hasattr(os, "getloadavg"):
        return False  # cannot tell: one process
    return cpus >= 2 and os.getloadavg()[0] <= cpus - 1.5


def _usable_cpus() -> frozenset[int] | None:
    """The CPUs this process may run on (its affinity), where the system tells."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return frozenset(os.sched_getaffinity(0))


def _cpu_times(cpus: frozenset[int] | None) -> tuple[int, int, int] | None:
    """(idle, total) clock ticks since boot of `cpus` (all when None) and how many of them
    /proc/stat lists (Linux; iowait is idle: a CPU waiting for a disk is free to
    translate)."""
    try:
        with open("/proc/stat", "rb") as f:
            return cpu_ticks(f.read(), cpus)
    except OSError:
        return None


def cpu_ticks(stat: bytes, cpus: frozenset[int] | None) -> tuple[int, int, int] | None:
    """`_cpu_times` from the text of /proc/stat: the per-CPU lines ("cpuN ...") of those in
    `cpus`, or of every CPU; None where it has none of them or they cannot be read."""
    idle = total = n = 0
    for line in stat.splitlines():
        fields = line.split()
        name = fields[0] if fields else b""
        if not name.startswith(b"cpu") or not name[3:].isdigit():
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        try:
            ticks = [int(x) for x in fields[1:9]]
        except ValueError:
            return None
        if len(ticks) < 5:
            return None
        idle, total, n = idle + ticks[3] + ticks[4], total + sum(ticks), n + 1
    return (idle, total, n) if n else None


class _ChildError(Exception):
    pass


def _child_env() -> dict[str, str]:
    """The child imports this very pstkit: its directory goes first on the path, and
    `-P` keeps the working directory off it (a `pstkit/` there could be another one)."""
    root = str(Path(pstkit.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return {**_MALLOC, **os.environ,
            "PYTHONPATH": os.pathsep.join([root, rest] if rest else [root])}


#: glibc's malloc, told to keep freed memory (allocations up to 16 MiB from the heap, up
#: to 32 MiB free at its top): by default each message's large buffers (raw, decoded
#: attachments, blocks) are fresh mmaps or a freshly grown heap, and every page of them
#: faults on first touch (~650,000 minor faults and 2.2-2.7 s of system time for the
#: 5,000 bench messages in one process; with these ~220,000 and about half the system
#: time). 32/64 MiB halved the faults again for no less system time and ~10 MiB more
#: RSS. Other C libraries ignore the variables; one set in the environment wins.
_MMAP, _TRIM = 16 << 20, 32 << 20
_MALLOC = malloc.child_env(_MMAP, _TRIM)


def keep_freed_memory() -> None:
    """`_MALLOC` for this process (read by glibc only at start, so set through mallopt);
    nothing where that is not glibc or a variable of its own is set."""
    malloc.tune(_MMAP, _TRIM)


if __name__ == "__main__":
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in the child cannot garble the answers
    serve(sys.stdin.buffer, answers, mapped(sys.argv[1:]), lambda job: _pack(translate(job)))
