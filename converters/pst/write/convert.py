"""MIME -> MAPI of mail items in a second process, while this one writes the PST.

`to_mapi` (parsing, decoding, header translation) is about half of the writer's CPU and a
pure function of (raw, flags, received), so a child process can do it ahead of the
writer: on two cores the two halves overlap. Mails are sent as the pipeline first shows
them to the sink (`ahead`), so the child also works while this process reads, verifies
and records a batch. Only the translation moves; the file is
written by this process alone, in the order items come, so what is written does not
depend on where an item was translated (tests/pst/test_write_convert.py).

The child is `python -P -m pstkit.converters.pst.write.convert`, talking length-prefixed
pickles over its stdin and stdout (no multiprocessing: a spawned pool re-runs the
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
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import pstkit
from pstkit import malloc

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from .mapi import Message, to_mapi

log = logging.getLogger("pstkit")
Job = tuple[bytes, frozenset[str], datetime | None]  # raw, flags, received
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
_LEN = struct.Struct("<Q")
PIPE_SIZE = 1 << 20  # Linux's default limit for unprivileged processes
#: the GIL's switch interval in both processes while the child is used (Python's default:
#: 5 ms): the threads that send jobs and read answers wait for the GIL the translating or
#: writing thread holds, and every such wait is one the other process may spend idle
SWITCH_S = 0.0005


def translate(job: Job) -> Result:
    raw, flags, received = job
    try:
        return to_mapi(raw, flags, received)
    except (ValueError, OverflowError) as e:  # hostile input: the item fails, not the run
        return str(e)


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
        self._posted: Counter[_Key] = Counter()  # the keys in `_sent`
        #: the pipeline's next batch, read ahead (`hint`): replaced whole by any thread,
        #: taken from by this one
        self._hints: deque[Job] = deque()
        self._answers: queue.Queue[bytes | BaseException] | None = None
        self._jobs: queue.SimpleQueue[Job | None] | None = None  # for the sending thread
        self._sender: threading.Thread | None = None
        self.answered = 0  # jobs the child translated

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
        return len(self._sent) < AHEAD and sum(len(j[0]) for j in self._sent) < AHEAD_BYTES

    def _post(self, job: Job) -> None:
        if self._child is None or self._jobs is None:
            return
        self._sent.append(job)  # first: if the send fails, the job is done here
        self._posted[_key(job)] += 1
        self._jobs.put(job)

    def _answered(self) -> Job:
        """The oldest job sent, out of `_sent`."""
        job = self._sent.popleft()
        key = _key(job)
        self._posted[key] -= 1
        if not self._posted[key]:
            del self._posted[key]
        return job

    def _start(self) -> bool:
        if self._child is None and self.enabled:
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-P", "-m", __name__], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env())
            except OSError as e:
                self._give_up(e)
            else:
                _widen(self._child)
                sys.setswitchinterval(SWITCH_S)
                self._answers = _drain(self._child.stdout)
                self._jobs, self._sender = _sending(self._child)
        return self._child is not None

    def _next(self) -> Result:
        """The answer to the oldest job sent; the job stays in `_sent` unless answered."""
        assert self._answers is not None
        got = self._answers.get()
        if isinstance(got, BaseException):
            self._answers.put(got)  # for any later call: the child is gone
            raise got
        try:
            kind, value = pickle.loads(got)
        except Exception as e:  # garbage on the pipe: stop using the child
            raise _ChildError(f"unreadable answer ({e})") from e
        if kind == "ok" and isinstance(value, Message | str):
            self._answered()
            self.answered += 1
            return value
        if kind != "error":
            raise _ChildError(f"unexpected answer {kind!r}")
        return translate(self._answered())  # it failed there: here it raises as before

    def _give_up(self, why: BaseException) -> None:
        log.debug("PST writer: translating in this process (%s)", why)
        self.enabled = False
        self.close()

    def close(self) -> None:
        self._sent.clear()
        self._posted.clear()
        self._hints = deque()
        self._answers = None
        child, self._child = self._child, None
        if child is None:
            return
        log.debug("PST writer: %d items translated in a second process", self.answered)
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


def _widen(child: subprocess.Popen[bytes]) -> None:
    """1 MiB pipes instead of 64 KiB: a message then crosses in one read, where each
    64 KiB read of the child's reader thread waits for the GIL its translating thread
    holds (up to the 5 ms switch interval, tens of ms per message)."""
    for stream in (child.stdin, child.stdout):
        with contextlib.suppress(OSError, AttributeError, ValueError):
            if stream and fcntl is not None:  # Linux: elsewhere the pipes keep their size
                fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _sending(child: subprocess.Popen[bytes]) -> tuple[queue.SimpleQueue[Job | None],
                                                      threading.Thread]:
    """A thread that writes the jobs put in the queue to the child, in order, until None.
    The writer only queues them (they are in `_sent` already): its writes into the pipe,
    the bytes copied and the waits until the child's reader took them, were a tenth of
    its time (py-spy, 5,000 bench messages). Flags and time go pickled, the message's
    bytes as they are: a pickle of them would be one more copy on each side. If a write
    fails the child is killed, so its answers end and the writer translates the rest
    here (`map`), rather than wait for answers to jobs the child never got."""
    jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()

    def send() -> None:
        stream = child.stdin
        try:
            assert stream is not None
            while (job := jobs.get()) is not None:
                raw, flags, received = job
                meta = pickle.dumps((flags, received), pickle.HIGHEST_PROTOCOL)
                stream.write(_LEN.pack(len(meta)) + meta + _LEN.pack(len(raw)))
                stream.write(raw)
                stream.flush()
        except (OSError, ValueError, AssertionError):
            with contextlib.suppress(OSError):
                child.kill()
            while jobs.get() is not None:  # until close(): nothing more is written
                pass

    sender = threading.Thread(target=send, name="pstkit-jobs", daemon=True)
    sender.start()
    return jobs, sender


def _put(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LEN.pack(len(data)))
    stream.write(data)
    stream.flush()


def _drain(stream: IO[bytes] | None) -> queue.Queue[bytes | BaseException]:
    """The child's answers, read as they come by a thread of their own: read only when
    the writer asked for one, they filled the pipe, and the child stopped in `write` for
    a sixth of its time (py-spy, 5,000 bench messages). Bounded by AHEAD (the child
    answers only what was sent); the queue ends with the error that ended the stream."""
    answers: queue.Queue[bytes | BaseException] = queue.Queue()

    def drain() -> None:
        try:
            assert stream is not None
            while True:
                answers.put(_get(stream))
        except (EOFError, OSError, ValueError, AssertionError) as e:
            answers.put(EOFError(f"the translating process ended ({e})"))

    threading.Thread(target=drain, name="pstkit-answers", daemon=True).start()
    return answers


def _get(stream: IO[bytes]) -> bytes:
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("the translating process ended")
    size = _LEN.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the translating process ended")
    return data


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child: answer every job in order until the input ends."""
    jobs: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()

    def drain() -> None:  # read ahead, so the parent never blocks writing to a full pipe
        try:
            while True:
                jobs.put((_get(inp), _get(inp)))  # pickled (flags, received); the bytes
        except (EOFError, OSError):
            jobs.put(None)

    sys.setswitchinterval(SWITCH_S)  # the reader gets the GIL soon after its read returns
    threading.Thread(target=drain, daemon=True).start()
    while (job := jobs.get()) is not None:
        try:
            answer: tuple[str, object] = ("ok", translate((job[1], *pickle.loads(job[0]))))
        except Exception as e:  # the parent translates it again and raises
            answer = ("error", repr(e))
        try:
            _put(out, pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            return


if __name__ == "__main__":
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in the child cannot garble the answers
    serve(sys.stdin.buffer, answers)
