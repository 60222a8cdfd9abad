"""The encrypting half in a child process, fed through a pipe, as `tar | age`.

Threads do not help here: every ChaCha20 chunk, hash update and write releases
and retakes the GIL, and a thread busy with Python (building the tar stream)
makes each retake wait for the interpreter's switch interval; measured, a
threaded seal was slower than a sequential one. A forked child has its own
interpreter: the parent builds or parses the tar stream while the child
encrypts and writes (seal) or reads and decrypts (unseal), on the second core.

The child gets no secrets over the pipe: it inherits the recipients or
identities in its memory at the fork. It reports its result (or its exception)
pickled on a second pipe and leaves with os._exit, running no cleanup of the
parent's. Where there is no fork (or with PSTKIT_SEAL_ONE_PROCESS=1), the
same work runs in-process.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pstkit import malloc

PIPE_SIZE = 1 << 20
READ = 128 << 10  # below the CLI's pinned mmap threshold: no page faults per read
FILL = 16 * 64 << 10  # the seal child's reads: sixteen age chunks
F_SETPIPE_SZ = 1031  # Linux
PR_SET_PDEATHSIG = 1  # Linux prctl


def keep_freed_heap() -> None:
    """Keep up to 64 MiB of freed heap instead of returning it to the system.

    Sealing and unsealing allocate and free a 64 KiB chunk per age chunk; by
    default glibc gives the top of the heap back above 128 KiB free, and the
    next chunks fault the pages in again: ~60,000 page faults for 550 MB (the
    peer, `tar | age`, has ~900). Peak memory is unchanged (it is what is kept)."""
    malloc.tune(trim_threshold=64 << 20)


def can_fork() -> bool:
    """Two processes, unless there is no fork or PSTKIT_SEAL_ONE_PROCESS is set
    (for a debugger, or a system where forking a large process is unwelcome)."""
    return hasattr(os, "fork") and not os.environ.get("PSTKIT_SEAL_ONE_PROCESS")


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    with contextlib.suppress(OSError):  # a bigger pipe: fewer context switches
        fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
    return r, w


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def writev_all(fd: int, buffers: Sequence[bytes | memoryview]) -> None:
    views = [memoryview(b) for b in buffers]
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views.pop(0))
        if views and done:
            views[0] = views[0][done:]


def _read_all(fd: int) -> bytes:
    parts = []
    while part := os.read(fd, READ):
        parts.append(part)
    return b"".join(parts)


def _reap(pid: int, kill: bool) -> None:
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _result(fd: int, pid: int) -> Any:
    """The child's pickled result; its exception is raised here."""
    raw = _read_all(fd)
    os.close(fd)
    _reap(pid, kill=False)
    if not raw:
        raise RuntimeError("the sealing child process died without a result")
    ok, value = pickle.loads(raw)  # our own child's bytes, never the bundle's
    if not ok:
        raise value
    return value


def _run_child(work: Callable[[], Any], result_fd: int) -> None:
    try:
        payload = pickle.dumps((True, work()))
    except BaseException as e:  # handed to the parent
        try:
            payload = pickle.dumps((False, e))
        except Exception:
            payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
    try:
        write_all(result_fd, payload)
    finally:
        os._exit(0)


def _die_with(parent: int) -> None:  # pragma: no cover - runs in the child
    """Linux: the kernel kills this child when the parent dies (a SIGKILLed seal
    must not leave a writer behind that drops volumes into the next seal's run)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _reader(data_r: int, done_r: int) -> Callable[[], memoryview]:  # pragma: no cover
    """`read()` for the child: the next bytes of the stream, up to FILL at a time,
    in one buffer reused by every call (no allocation, no page faults per read;
    the consumer copies what it keeps).

    The pipe's end alone does not say the stream is complete: a killed parent
    closes it too. Without the parent's word on the second pipe the child leaves
    at once, its volume a .tmp the next seal clears."""
    view = memoryview(bytearray(FILL))

    def read() -> memoryview:
        got = 0
        while got < FILL and (n := os.readv(data_r, [view[got:]])):
            got += n
        if not got and not os.read(done_r, 1):
            os._exit(1)
        return view[:got]

    return read


class Feeder:
    """The write end of a pipe into `consume(read)`, which runs in a child.

    `consume` gets a `read()` returning the next bytes (empty at the end; a view
    into a buffer the next call overwrites) and
    returns a picklable result, which `close` returns.
    """

    def __init__(self, consume: Callable[[Callable[[], memoryview]], Any]) -> None:
        data_r, self._data_w = _pipe()
        self._result_r, result_w = os.pipe()
        done_r, self._done_w = os.pipe()
        parent = os.getpid()
        self._pid = os.fork()
        if self._pid == 0:  # pragma: no cover - the child (its work is measured by the tests)
            _die_with(parent)
            os.close(self._data_w)
            os.close(self._result_r)
            os.close(self._done_w)
            _run_child(lambda: consume(_reader(data_r, done_r)), result_w)
        os.close(data_r)
        os.close(result_w)
        os.close(done_r)
        self._small = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        if 0 < len(data) < 4096:  # tar headers and padding: gathered, not one syscall each
            self._small += data
            if len(self._small) < 65536:
                return
            data, self._small = bytes(self._small), bytearray()
        try:
            if self._small:
                write_all(self._data_w, self._small)
                self._small = bytearray()
            write_all(self._data_w, data)
        except BrokenPipeError:
            self._failed()

    def splice_from(self, fd: int, count: int) -> int:
        """Move `count` bytes of file `fd` into the pipe inside the kernel (no copy
        through this process); returns how many there were (fewer at end of file)."""
        done = 0
        try:
            if self._small:
                write_all(self._data_w, self._small)
                self._small = bytearray()
            while done < count:
                n = os.splice(fd, self._data_w, count - done)
                if n == 0:
                    break
                done += n
        except BrokenPipeError:
            self._failed()
        return done

    def _failed(self) -> None:
        os.close(self._data_w)
        self._data_w = -1
        _result(self._result_r, self._pid)  # raises the child's error
        raise RuntimeError("the sealing child process stopped reading")

    def close(self) -> Any:
        try:
            write_all(self._data_w, self._small)
            write_all(self._done_w, b"\x01")  # the end of the stream is a real one
        except BrokenPipeError:
            self._failed()
        os.close(self._data_w)
        os.close(self._done_w)
        return _result(self._result_r, self._pid)

    def abort(self) -> None:
        _reap(self._pid, kill=True)
        for fd in (self._data_w, self._result_r, self._done_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def fork_worker(work: Callable[[int], Any]) -> tuple[int, int, int]:
    """Fork a child that runs `work(data_fd)` and hands its result (or error) back
    through a second pipe; here: (pid, data read end, result read end)."""
    data_r, data_w = _pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(data_r)
        os.close(result_r)
        _run_child(lambda: work(data_w), result_w)
    os.close(data_w)
    os.close(result_w)
    return pid, data_r, result_r


def produced(produce: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
    """The bytes of `produce()`, which runs in a child forked now; its errors are
    raised here, after the bytes it wrote before them."""

    def work(data_w: int) -> None:
        with contextlib.suppress(BrokenPipeError):  # the parent stopped early
            batch: list[bytes] = []
            for chunk in produce():
                batch.append(chunk)
                if len(batch) == 16:  # one writev per sixteen age chunks
                    writev_all(data_w, batch)
                    batch = []
            writev_all(data_w, batch)
        os.close(data_w)

    pid, data_r, result_r = fork_worker(work)
    return _consume(data_r, result_r, pid)


def _consume(data_r: int, result_r: int, pid: int) -> Iterator[bytes]:
    finished = False
    try:
        while chunk := os.read(data_r, READ):
            yield chunk
        os.close(data_r)
        finished = True
        _result(result_r, pid)
    finally:
        if not finished:
            os.close(data_r)
            _reap(pid, kill=True)
            os.close(result_r)
