"""The wire between the PST writer and its translating child (convert.py): the frames on
their pipes, the writer's threads that send jobs and read answers, and the child's loop.
I/O.

A job goes as two frames: its flags, time and slot (`pack_meta`), then its bytes, empty
when they are in its slot of the shared memory (ring.py). An answer (marshal's form of
("ok", what `translate` gave) or ("error", why)) comes back into the same slot when it
fits, and the pipe carries only its length with IN_SLOT set; else through the pipe.
Frames are a little-endian 8-byte length and the bytes. The pipes keep the order; a
pipe's write and read are what make the slot's bytes visible to the other process.
"""

from __future__ import annotations

import contextlib
import marshal
import mmap
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from .ring import Shared

Job = tuple[bytes, frozenset[str], datetime | None]  # raw, flags, received
Slot = tuple[int, int] | None  # a job's place in the shared memory (start, size), if any

_LEN = struct.Struct("<Q")
IN_SLOT = 1 << 63  # an answer's length with this bit: it is in its job's slot, not the pipe
PIPE_SIZE = 1 << 20  # Linux's default limit for unprivileged processes
#: the GIL's switch interval in both processes while the child is used (Python's default:
#: 5 ms): the threads that send jobs and read answers wait for the GIL the translating or
#: writing thread holds, and every such wait is one the other process may spend idle
SWITCH_S = 0.0005


def pack_meta(flags: frozenset[str], received: datetime | None,
              where: tuple[int, int, int] | None) -> bytes:
    """A job's flags, time and place, by marshal (a pickle's datetime took a twentieth
    of the child to read, py-spy): the time as its fields when it is naive or in UTC,
    else pickled (another zone is kept as it is)."""
    if received is None or (received.tzinfo in (None, UTC) and not received.fold):
        when = None if received is None else (
            *received.timetuple()[:6], received.microsecond, received.tzinfo is not None)
        return b"M" + marshal.dumps((flags, when, where))
    return b"P" + pickle.dumps((flags, received, where), pickle.HIGHEST_PROTOCOL)


def unpack_meta(data: bytes) -> tuple[frozenset[str], datetime | None,
                                      tuple[int, int, int] | None]:
    if data[:1] == b"P":
        got: tuple[frozenset[str], datetime | None, tuple[int, int, int] | None] = \
            pickle.loads(data[1:])
        return got
    flags, when, where = marshal.loads(data[1:])
    if when is None:
        return flags, None, where
    year, month, day, hour, minute, second, micro, utc = when
    return flags, datetime(year, month, day, hour, minute, second, micro,
                           tzinfo=UTC if utc else None), where


def widen(child: subprocess.Popen[bytes]) -> None:
    """1 MiB pipes instead of 64 KiB: a message then crosses in one read, where each
    64 KiB read of the child's reader thread waits for the GIL its translating thread
    holds (up to the 5 ms switch interval, tens of ms per message)."""
    for stream in (child.stdin, child.stdout):
        with contextlib.suppress(OSError, AttributeError, ValueError):
            if stream and fcntl is not None:  # Linux: elsewhere the pipes keep their size
                fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def sending(child: subprocess.Popen[bytes], shared: Shared | None
            ) -> tuple[queue.SimpleQueue[tuple[Job, Slot] | None], threading.Thread]:
    """A thread that writes the jobs put in the queue to the child, in order, until None.
    The writer only queues them (they are in `_sent` already): its writes into the pipe,
    the bytes copied and the waits until the child's reader took them, were a tenth of
    its time (py-spy, 5,000 bench messages). Flags, time and the job's slot go by
    `pack_meta`; the message's bytes into the slot, else through the pipe as they are (a
    pickle of them would be one more copy on each side). If a write fails the child is killed, so
    its answers end and the writer translates the rest here (`Converter.map`), rather
    than wait for answers to jobs the child never got."""
    jobs: queue.SimpleQueue[tuple[Job, Slot] | None] = queue.SimpleQueue()

    def send() -> None:
        stream = child.stdin
        try:
            assert stream is not None
            while (item := jobs.get()) is not None:
                while item is not None:  # those queued meanwhile go in the same write
                    (raw, flags, received), slot = item
                    where = None
                    if slot is not None and shared is not None:
                        shared.mem[slot[0] : slot[0] + len(raw)] = raw
                        where = (slot[0], len(raw), slot[1])
                    meta = pack_meta(flags, received, where)
                    inline = raw if where is None else b""
                    stream.write(_LEN.pack(len(meta)) + meta + _LEN.pack(len(inline)))
                    stream.write(inline)
                    try:
                        item = jobs.get_nowait()
                    except queue.Empty:
                        break
                stream.flush()
                if item is None:
                    break
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


def drain(stream: IO[bytes] | None) -> queue.Queue[bytes | int | BaseException]:
    """The child's answers, read as they come by a thread of their own: read only when
    the writer asked for one, they filled the pipe, and the child stopped in `write` for
    a sixth of its time (py-spy, 5,000 bench messages). Bounded by convert.AHEAD (the
    child answers only what was sent); the queue ends with the error that ended the
    stream."""
    answers: queue.Queue[bytes | int | BaseException] = queue.Queue()

    def read_answers() -> None:
        try:
            assert stream is not None
            while True:
                answers.put(_answer(stream))
        except (EOFError, OSError, ValueError, AssertionError) as e:
            answers.put(EOFError(f"the translating process ended ({e})"))

    threading.Thread(target=read_answers, name="pstkit-answers", daemon=True).start()
    return answers


def _answer(stream: IO[bytes]) -> bytes | int:
    """The next answer's bytes, or its length when it was left in its job's slot."""
    size = _length(stream)
    return size & ~IN_SLOT if size & IN_SLOT else _body(stream, size)


def _get(stream: IO[bytes]) -> bytes:
    return _body(stream, _length(stream))


def _length(stream: IO[bytes]) -> int:
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("the translating process ended")
    size: int = _LEN.unpack(head)[0]
    return size


def _body(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the translating process ended")
    return data


def serve(inp: IO[bytes], out: IO[bytes], mem: mmap.mmap | None,
          translate: Callable[[Job], Any]) -> None:
    """The child: answer every job in order until the input ends; a job in a slot of the
    shared memory `mem` is answered into the same slot when the answer fits."""
    jobs: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()

    def read_jobs() -> None:  # read ahead: the parent never blocks writing to a full pipe
        try:
            while True:  # flags, received and slot (pack_meta); the bytes unless in the slot
                jobs.put((_get(inp), _get(inp)))
        except (EOFError, OSError):
            jobs.put(None)

    sys.setswitchinterval(SWITCH_S)  # the reader gets the GIL soon after its read returns
    threading.Thread(target=read_jobs, daemon=True).start()
    while (job := jobs.get()) is not None:
        where = None
        try:
            flags, received, where = unpack_meta(job[0])
            raw = job[1] if where is None or mem is None else mem[where[0] : where[0] + where[1]]
            answer: tuple[str, Any] = ("ok", translate((raw, flags, received)))
        except Exception as e:  # the parent translates it again and raises
            answer = ("error", repr(e))
        try:
            data = marshal.dumps(answer)
        except ValueError as e:  # not marshal's kind of value: the parent translates it
            data = marshal.dumps(("error", repr(e)))
        try:
            if where is not None and mem is not None and len(data) <= where[2]:
                mem[where[0] : where[0] + len(data)] = data  # the job's bytes were copied
                out.write(_LEN.pack(IN_SLOT | len(data)))
                out.flush()
            else:
                _put(out, data)
        except (BrokenPipeError, OSError):
            return


def mapped(args: list[str]) -> mmap.mmap | None:
    """The shared memory the parent named (descriptor, size), mapped; None without."""
    if len(args) < 2:
        return None
    fd, size = int(args[0]), int(args[1])
    try:
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)
