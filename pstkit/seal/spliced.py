"""Unseal in two processes where the parent only writes files.

The forked child reads and decrypts the volumes, walks the tar stream (holding
names, types, sizes and order to the index: unpack.walk), hashes every file
against the index's SHA-256 and sends only the files' bytes, in the index's
order, down a pipe. The parent knows from the index where each file ends, so
for each it opens, splices its bytes from the pipe into it (Linux: the kernel
moves them; no copy through Python, no tar parsing, no per-chunk objects here)
and closes. Whatever the child found wrong
is raised in the parent at the end of the stream (or where the stream stops
short), before the tree is synced and renamed into place: a damaged bundle
leaves no store (opening.unseal).
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from pstkit.runs import Progress
from pstkit.seal.age import Identity
from pstkit.seal.bundle import Manifest
from pstkit.seal.child import _reap, _result, fork_worker, writev_all
from pstkit.seal.errors import BundleDamaged
from pstkit.seal.hashing import BATCH
from pstkit.seal.pack import Index, Member
from pstkit.seal.unpack import walk

COPY = 128 << 10  # where splice is refused (a file system without it): reads of this size
HOLD = 8 << 20  # a file up to this size is checked before any byte of it is sent


class _Out:
    """Writes to the pipe gathered into one writev per ~megabyte."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.batch: list[memoryview] = []
        self.size = 0

    def add(self, pieces: list[memoryview], size: int) -> None:
        self.batch += pieces
        self.size += size
        if self.size >= BATCH:
            self.flush()

    def flush(self) -> None:
        writev_all(self.fd, self.batch)
        self.batch, self.size = [], 0


def forward_files(bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity],
                  out_fd: int) -> None:  # fmt: skip  # pragma: no cover - runs in the child
    """The child's work: every file's bytes, checked, to `out_fd`; raises what is wrong.

    A file of up to HOLD bytes is hashed before any of it is sent, so the parent
    never writes a byte of a file that fails; a larger one is sent as it comes
    and fails at its end (either way no store appears). Hashed here, not in a
    thread: ChaCha20 keeps the GIL, and a hashing thread waiting for it made the
    child slower (measured), the second core serves the parent's writes."""
    out = _Out(out_fd)

    def visit(member: Member, pieces: Iterator[memoryview] | None) -> None:
        if pieces is None:
            return
        digest, held, size = hashlib.sha256(), [], 0
        for piece in pieces:  # views into immutable decrypted chunks: safe to keep
            digest.update(piece)
            held.append(piece)
            size += len(piece)
            if size > HOLD:
                out.add(held, sum(map(len, held)))
                held = []
        if size != member.size or digest.hexdigest() != member.sha256:
            out.flush()  # the files before it, whole: the stream stops right at it
            raise BundleDamaged(f"{member.path}: content differs from the index")
        out.add(held, sum(map(len, held)) if size > HOLD else size)

    walk(bundle, manifest, index, identities, visit, hashed=False, fork=False)
    out.flush()


def extract(bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity],
            work: str, progress: Progress) -> tuple[list[str], list[str]]:  # fmt: skip
    """Write the bundle's files under `work` (which exists); (files, directories)."""
    pid, data_r, result_r = fork_worker(
        lambda data_w: forward_files(bundle, manifest, index, identities, data_w))
    files: list[str] = []
    dirs: list[str] = [work]
    try:
        short = _write_files(data_r, index, work, files, dirs, progress)
        short = short or bool(os.read(data_r, 1))
    except BaseException:
        os.close(data_r)
        _reap(pid, kill=True)
        os.close(result_r)
        raise
    os.close(data_r)
    _result(result_r, pid)  # the child's finding, if any, is raised here
    if short:
        raise BundleDamaged("the stream does not hold the index's files")
    return files, dirs


def _write_files(pipe: int, index: Index, work: str, files: list[str], dirs: list[str],
                 progress: Progress) -> bool:  # fmt: skip
    """True if the stream stopped short (the child says why)."""
    progress.start("unsealing", len(index.members))  # after the fork: a bar may start a thread
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for member in index.members:
        path = f"{work}/{member.path}"  # checked by the index: no "..", not absolute
        if member.kind == "dir":
            os.makedirs(path, exist_ok=True)
            dirs.append(path)
        else:
            fd = os.open(path, flags, 0o644)
            files.append(path)
            try:
                if _fill(pipe, fd, member.size) != member.size:
                    return True
            finally:
                os.close(fd)
        progress.advance(1, member.size)
    progress.done()
    return False


def _fill(pipe: int, fd: int, size: int) -> int:
    """Move `size` bytes from `pipe` into file `fd`; fewer at the end of the stream."""
    done = 0
    while done < size:
        try:
            n = os.splice(pipe, fd, size - done)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            return done + _copy(pipe, fd, size - done)
        if n == 0:
            break
        done += n
    return done


def _copy(pipe: int, fd: int, size: int) -> int:
    done = 0
    while done < size and (block := os.read(pipe, min(size - done, COPY))):
        writev_all(fd, [block])
        done += len(block)
    return done
