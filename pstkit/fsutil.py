"""Durable file writing: temp -> rename, and one sync per batch.

Per-file fsync makes a store ten times slower than `cp -r; sync`; instead a
batch of files is written, then made durable with one syncfs(2) of the
store's file system (a small batch, or where there is no syncfs: fsync of
every file and directory), and only then are their catalog rows committed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from pstkit.errors import StoreWriteError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def write_new(final: str | Path, tmp: str | Path, data: bytes,
              fill: Callable[[int], None] | None = None) -> None:  # fmt: skip
    """Write `data` to `tmp` (or let `fill` write it, given the open descriptor),
    then rename it to `final` (atomic replace).

    Plain os.open/os.write/os.close: Python's buffered file adds an fstat, an
    ioctl and a copy into its buffer per file, a third of a store's syscalls."""
    try:
        fd = os.open(tmp, _WRITE_FLAGS, 0o666)
        try:
            if fill is None:
                write_all(fd, data)
            else:
                fill(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except OSError as e:
        _unlink_quietly(Path(tmp))
        raise write_error(Path(final), e) from e


def write_all(fd: int, data: bytes) -> None:
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.write(fd, view[done:])


def write_error(path: Path, e: OSError) -> StoreWriteError:
    if e.errno == errno.ENOSPC:
        return StoreWriteError(path, "no space left on device")
    if e.errno == errno.EFBIG:
        return StoreWriteError(
            path, "file too large for this file system (FAT32 caps files at 4 GiB)"
        )
    return StoreWriteError(path, e.strerror or str(e))


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@cache
def _libc(function: str) -> object | None:
    """A libc function, or None. The running program's own symbols hold libc's;
    find_library only where they do not (it runs `ldconfig -p`, a fork + exec)."""
    found: object | None = None
    with contextlib.suppress(OSError):
        found = getattr(ctypes.CDLL(None, use_errno=True), function, None)
    if found is not None:
        return found
    from ctypes.util import find_library  # noqa: PLC0415 - rarely reached; imports tempfile

    name = find_library("c")
    if not name:
        return None
    found = getattr(ctypes.CDLL(name, use_errno=True), function, None)
    return found


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range of `fd` to disk now, without
    waiting (Linux sync_file_range(2), SYNC_FILE_RANGE_WRITE). Only a head
    start for the fsync that follows, never instead of it: elsewhere a no-op."""
    function = _libc("sync_file_range")
    if function is not None:
        function(fd, ctypes.c_int64(offset), ctypes.c_int64(length), 2)  # type: ignore[operator]


NO_SYNCFS_ENV = "PSTKIT_NO_SYNCFS"
#: up to this many files a batch is fsynced file by file, above it with one syncfs
FSYNC_MAX_FILES = 16


def sync_tree(root: Path, files: Iterable[str | Path], dirs: Iterable[str | Path]) -> None:
    """Make `files`, and the entries of `dirs` and of every directory between
    them and `root` (inclusive), durable.

    A few files are fsynced one by one, with their directories: syncfs(2)
    flushes the whole file system, every other process's dirty data too, and
    on a shared disk it waited 8-116 ms for a 1-message export whose ~6
    fsyncs take ~1-2 ms. Many files take one syncfs. Where there is no
    syncfs (not Linux), or with PSTKIT_NO_SYNCFS=1, every batch is fsynced."""
    files = list(dict.fromkeys(os.fspath(f) for f in files))  # an mbox: once per message
    few = len(files) <= FSYNC_MAX_FILES
    syncfs = None if few or os.environ.get(NO_SYNCFS_ENV) else _libc("syncfs")
    if syncfs is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:  # type: ignore[operator]
                return
        finally:
            os.close(fd)
    for path in fallback_paths(root, files, dirs):
        fsync_path(path)


def fallback_paths(
    root: Path, files: Iterable[str | Path], dirs: Iterable[str | Path]
) -> list[str]:
    """What is fsynced instead of a syncfs: the files, then every directory holding
    one of them or named in `dirs`, and its parents up to `root`. A new file is
    durable only once its own directory entry is, and a folder made since the
    last sync (mail/, mail/.F, .F/cur) only once its parent's entry is:
    fsyncing the file and `cur` alone left them to the kernel's writeback."""
    top = os.path.abspath(root)
    out = [os.fspath(f) for f in files]
    seen: set[str] = set()
    starts = [os.path.dirname(os.path.abspath(f)) for f in out]
    starts += [os.path.abspath(d) for d in dirs]
    for start in starts:
        here = start
        while here not in seen:
            seen.add(here)
            out.append(here)
            parent = os.path.dirname(here)
            if here in (top, parent) or not here.startswith(top + os.sep):
                break
            here = parent
    return out


def fsync_path(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems (vfat on old kernels) refuse fsync on directories.
        if e.errno not in (errno.EINVAL, errno.EBADF):
            raise write_error(Path(path), e) from e
    finally:
        os.close(fd)


def inner(directory: str | Path, ancestors: frozenset[tuple[int, int]]
          ) -> frozenset[tuple[int, int]] | None:  # fmt: skip
    """`ancestors` (device, inode) plus `directory`'s, for a scan going into it; None when
    it is one of them: a symlink back up the tree (`ln -s .. loop`) was walked until the
    kernel refused the path (ELOOP), an internal error. A link elsewhere is followed."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino)
    if key in ancestors:
        logging.getLogger("pstkit").warning("%s: skipped, a link back to a directory that "
                                            "holds it", directory)
        return None
    return ancestors | {key}


def try_lock(fd: int) -> bool:
    """An exclusive flock on `fd`, not waited for (it ends with the descriptor, also when
    the process is killed): False when another process holds one. Where none can be taken
    (a file system without flock, some network ones), True: the caller goes on unlocked."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True
