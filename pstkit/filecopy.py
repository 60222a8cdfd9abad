"""Copying a message file in the kernel, as `cp` does, when its bytes came from one.

A local source (Maildir, eml) reads each file whole, hashes it and hands the bytes
on with the file's identity (`LocalFile`). Writing those bytes back out costs a
copy from the process into the page cache; copy_file_range(2) copies page cache to
page cache inside the kernel instead (what `cp` does; on this kind of disk it took
a third of the store writer's CPU). The store must hold exactly the bytes that
were hashed, so the copy is used only when the file is provably the one read:

- `local_file` offers a file only if it had not changed for `SETTLED_S` before it
  was read. File system times are coarse (a clock tick; FAT: 2 s), so a change
  in the same tick as the last one could leave them as they were; a change after
  a settled file was read always moves its change time (and mtime).
- `FileCopier.write` compares device, inode, size, mtime and ctime of the
  descriptor it copied from, after the copy, with those seen at the read; if
  anything differs (the file was replaced, rewritten, cut, before or during the
  copy), or the kernel cannot copy (another file system: EXDEV; no support), the
  bytes that were hashed are written instead. Either way the file holds the
  hashed bytes.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path

from pstkit.fsutil import write_all, write_new
from pstkit.model import LocalFile

SETTLED_S = 3.0
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
# copy_file_range's "not between these two files": the next file gets a write.
_CANNOT_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}
_MAX_READ = 0x7FFFF000  # Linux returns at most this much from one read(2)


def local_file(path: str, st: os.stat_result, read_started_ns: int) -> LocalFile | None:
    """`path`'s identity as `st` gave it, if it had settled (unchanged for SETTLED_S)
    before the read that began at `read_started_ns` (time.time_ns()); else None."""
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    if read_started_ns - changed < SETTLED_S * 1e9:
        return None
    return LocalFile(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_whole(path: str) -> tuple[bytes, os.stat_result, LocalFile | None]:
    """(bytes, stat, identity if settled) of a file in four syscalls (open, fstat,
    read, close): `Path.read_bytes` plus `stat` take nine. A read of size+1 bytes
    that returns exactly the size has met the end; anything else (a file that grew
    or shrank, or one over Linux's 2 GiB cap on one read) is read to its end, and
    is not offered for copying."""
    started = time.time_ns()
    # O_NONBLOCK: a FIFO among the messages would wait in open() for a writer forever,
    # past Ctrl-C and SIGTERM (they let the message at hand finish); a regular file
    # ignores the flag. Only regular files are read (a device would never end).
    fd = os.open(path, _READ_FLAGS | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)", path)
        data = os.read(fd, st.st_size + 1)
        if len(data) != st.st_size or len(data) >= _MAX_READ:
            chunks = [data]
            while chunk := os.read(fd, 1024 * 1024):
                chunks.append(chunk)
            return b"".join(chunks), st, None
    finally:
        os.close(fd)
    return data, st, local_file(path, st, started)


def same_file(st: os.stat_result, origin: LocalFile) -> bool:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (
        origin.dev, origin.ino, origin.size, origin.mtime_ns, origin.ctime_ns
    )  # fmt: skip


class FileCopier:
    """temp -> rename writes whose bytes come from `origin` by copy_file_range where
    it is still the file that was read, else from `data`. Used from several threads."""

    def __init__(self) -> None:
        # (source device, target directory) pairs the kernel would not copy between
        # (two file systems, say): not tried again. set.add is atomic under the GIL.
        self._refused: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self.copied = self.written = 0  # files copied / written, for tests and the debug log

    def write(self, final: str | Path, tmp: str | Path, data: bytes,
              origin: LocalFile | None) -> None:  # fmt: skip
        """`fsutil.write_new`, with `origin` copied in the kernel when that is safe."""
        if origin is None:
            write_new(final, tmp, data)
            self._count(copied=False)
            return
        write_new(final, tmp, data, lambda fd: self._fill(fd, data, origin, str(tmp)))

    def _fill(self, fd: int, data: bytes, origin: LocalFile, tmp: str) -> None:
        if self._copy(origin, fd, len(data), tmp):
            self._count(copied=True)
            return
        os.ftruncate(fd, 0)  # whatever a copy cut short left there
        os.lseek(fd, 0, os.SEEK_SET)
        write_all(fd, data)
        self._count(copied=False)

    def _count(self, copied: bool) -> None:
        with self._lock:
            if copied:
                self.copied += 1
            else:
                self.written += 1

    def _copy(self, origin: LocalFile, out: int, size: int, tmp: str) -> bool:
        """True if `out` now holds `origin`'s `size` bytes and `origin` was the file
        read, unchanged, before and after the copy."""
        refused = (origin.dev, os.path.dirname(tmp))
        if size != origin.size or refused in self._refused or not hasattr(os, "copy_file_range"):
            return False
        try:
            src = os.open(origin.path, _READ_FLAGS)
        except OSError:  # gone, or renamed (a flag change): the bytes read are written
            return False
        try:  # one check after the copy: on this descriptor it covers before and during
            done = 0
            while done < size and (n := os.copy_file_range(src, out, size - done)):
                done += n
            return done == size and same_file(os.fstat(src), origin)
        except OSError as e:
            if e.errno in _CANNOT_COPY:
                self._refused.add(refused)
            return False  # any other error: writing the bytes tells what it is
        finally:
            os.close(src)
