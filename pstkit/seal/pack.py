"""The store as one tar stream, cut into bounded age volumes, and its index.

The tar stream (POSIX pax) holds `pstkit-store.json`, `catalog.sqlite`, the
folder directories and every message file, so that without pstkit

    for f in BUNDLE/data/0*.age; do age -d -i identity.age "$f"; done | tar -x

gives back the store. Volumes are cut at fixed plaintext offsets (a member may
span two), each is a complete age file of at most `volume_size` plaintext
bytes. The index (`data/index.age`) lists the members in stream order with
size and SHA-256 of the plaintext, the folders, and the store's marker.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pstkit.fsutil import start_writeback, write_error
from pstkit.seal.age import Encryptor, Recipient
from pstkit.seal.bundle import DATA, DataFile
from pstkit.seal.child import writev_all
from pstkit.seal.errors import BundleDamaged
from pstkit.seal.hashing import BATCH, BackgroundHash

INDEX_FORMAT = "pstkit-bundle-index"
BLOCK = tarfile.BLOCKSIZE
MIN_VOLUME = 1 << 20
MAX_VOLUME = 3 << 30  # FAT32 caps a file at 4 GiB - 1; age adds 16 bytes per 64 KiB
DEFAULT_VOLUME = 1 << 30
WRITEBACK = 16 << 20  # start writing back to disk every 16 MiB
TOP_LEVEL = ("pstkit-store.json", "catalog.sqlite", "mail")


@dataclass(frozen=True)
class Member:
    path: str  # POSIX path inside the store, e.g. "mail/.Sent/cur/…"
    kind: str  # "file" or "dir"
    size: int
    sha256: str


@dataclass(frozen=True)
class Index:
    bundle: str
    store: dict[str, object]  # the store's marker (pstkit-store.json)
    volumes: tuple[str, ...]
    members: tuple[Member, ...]
    folders: tuple[dict[str, object], ...]

    def to_json(self) -> bytes:
        data = {
            "format": INDEX_FORMAT, "version": 1, "bundle": self.bundle, "store": self.store,
            "volumes": list(self.volumes), "folders": list(self.folders),
            "members": [[m.path, m.kind, m.size, m.sha256] for m in self.members],
        }  # fmt: skip
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Index:
        try:
            data = json.loads(raw)
            if data.get("format") != INDEX_FORMAT:
                raise ValueError("not a bundle index")
            members = tuple(
                Member(check_member_path(str(p)), str(k), int(s), str(h))
                for p, k, s, h in data["members"]
            )
            return cls(
                str(data["bundle"]), dict(data["store"]), tuple(map(str, data["volumes"])),
                members, tuple(dict(f) for f in data["folders"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BundleDamaged(f"the index is malformed ({e})") from e


def check_member_path(path: str) -> str:
    """Refuse a path that could land outside the store (absolute, `..`, odd roots)."""
    parts = path.split("/")
    if (
        parts[0] not in TOP_LEVEL
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in path
        or "\0" in path
    ):
        raise ValueError(f"unsafe member path {path!r}")
    return path


class HashingSink:
    """A file being written, hashed as it goes (the manifest's SHA-256, in a
    thread: see hashing.py).

    Writes are gathered into batches of about `BATCH` bytes, one writev each.
    The kernel is asked to start writing each 16 MiB back at once, so the fsync
    at the end waits for the last few megabytes, not the whole volume.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.size = 0
        self.sha256 = ""
        self._hash = BackgroundHash()
        self._batch: list[bytes] = []
        self._batched = 0
        self._synced = 0

    def write(self, data: bytes) -> None:
        self._batch.append(bytes(data))  # bytes(b) is b itself: no copy
        self._batched += len(data)
        if self._batched >= BATCH:
            self._flush()

    def _flush(self) -> None:
        writev_all(self.fd, self._batch)
        self._hash.feed(self._batch)
        self.size += self._batched
        self._batch, self._batched = [], 0
        if self.size - self._synced >= WRITEBACK:
            start_writeback(self.fd, self._synced, self.size - self._synced)
            self._synced = self.size

    def finish(self) -> None:
        self._flush()
        self.sha256 = self._hash.hexdigest()
        os.fsync(self.fd)
        os.close(self.fd)

    def abort(self) -> None:
        self._hash.hexdigest()
        os.close(self.fd)
        self.path.unlink(missing_ok=True)


def write_age_file(
    directory: Path, name: str, data: bytes, recipients: Sequence[Recipient]
) -> DataFile:
    """One small age file (the index), temp -> fsync -> rename."""
    tmp = directory / (name + ".tmp")
    try:
        sink = HashingSink(tmp)
        enc = Encryptor(sink, recipients)
        enc.write(data)
        enc.close()
        sink.finish()
        os.replace(tmp, directory / name)
    except OSError as e:
        raise write_error(directory / name, e) from e
    return DataFile(f"{DATA}/{name}", sink.size, sink.sha256)


Record = Callable[[DataFile, int], None]  # a finished volume and its plaintext bytes


class VolumeWriter:
    """Cuts a plaintext stream into age files of at most `limit` plaintext bytes,
    numbered after the `kept` volumes of an interrupted run (resume.py); `record`
    is told of each volume once it is durable."""

    def __init__(self, directory: Path, recipients: Sequence[Recipient], limit: int,
                 kept: Sequence[DataFile] = (), record: Record | None = None) -> None:  # fmt: skip
        self.directory = directory
        self.recipients = recipients
        self.limit = limit
        self.files: list[DataFile] = list(kept)
        self._record = record
        self._sink: HashingSink | None = None
        self._enc: Encryptor | None = None
        self._written = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._enc is None:
                self._open()
            assert self._enc is not None
            take = min(len(view), self.limit - self._written)
            self._enc.write(view[:take])
            self._written += take
            view = view[take:]
            if self._written == self.limit:
                self._finish()

    def _open(self) -> None:
        name = f"{len(self.files) + 1:05d}.age"
        try:
            self._sink = HashingSink(self.directory / (name + ".tmp"))
        except OSError as e:
            raise write_error(self.directory / name, e) from e
        self._enc = Encryptor(self._sink, self.recipients)
        self._written = 0

    def _finish(self) -> None:
        assert self._enc is not None and self._sink is not None
        sink = self._sink
        final = sink.path.with_name(sink.path.name.removesuffix(".tmp"))
        try:
            self._enc.close()
            sink.finish()
            os.replace(sink.path, final)
        except OSError as e:
            raise write_error(final, e) from e
        self.files.append(DataFile(f"{DATA}/{final.name}", sink.size, sink.sha256))
        if self._record is not None:
            self._record(self.files[-1], self._written)
        self._enc = self._sink = None

    def close(self) -> list[DataFile]:
        if self._enc is not None:
            self._finish()
        return self.files

    def abort(self) -> None:
        """After a failure: stop the helper thread, leave no temp file open."""
        if self._sink is not None:
            self._sink.abort()
        self._enc = self._sink = None


def encrypt_stream(read: Callable[[], memoryview], directory: Path, recipients: Sequence[Recipient],
                   limit: int, kept: Sequence[DataFile] = (),
                   record: Record | None = None) -> list[DataFile]:  # fmt: skip
    """Encrypt what `read` returns (until it is empty) into volumes; runs in the child of
    `child.Feeder`, or in-process where there is no fork."""
    writer = VolumeWriter(directory, recipients, limit, kept, record)
    try:
        while block := read():
            writer.write(block)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def _ustar(name: bytes, prefix: bytes, typeflag: bytes, size: int, mtime: int, mode: int) -> bytes:
    head = b"".join((
        name.ljust(100, b"\0"), b"%07o\0" % mode, b"0000000\0", b"0000000\0",
        b"%011o\0" % size, b"%011o\0" % mtime, b" " * 8, typeflag, bytes(100),
        b"ustar\x0000", bytes(64), b"0000000\0", b"0000000\0", prefix.ljust(155, b"\0"),
        bytes(12),
    ))  # fmt: skip
    checksum = b"%06o\0 " % sum(head)
    return head[:148] + checksum + head[156:]


def tar_header(path: str, kind: str, size: int, mtime: int) -> bytes:
    """A POSIX tar header (ustar; a pax record first for names ustar cannot hold).

    Written here rather than by tarfile: tarfile's TarInfo.tobuf costs a tenth of
    a millisecond per member, a tenth of a seal's time on a mailbox of small files.
    """
    typeflag, mode = (b"5", 0o755) if kind == "dir" else (b"0", 0o644)
    size = size if kind == "file" else 0
    name = path.encode("utf-8", "surrogateescape") + (b"/" if kind == "dir" else b"")
    if name.isascii() and len(name) <= 100:
        return _ustar(name, b"", typeflag, size, mtime, mode)
    cut = name.rfind(b"/", 0, 156)
    if name.isascii() and cut > 0 and len(name) - cut - 1 <= 100 and cut <= 155:
        return _ustar(name[cut + 1 :], name[:cut], typeflag, size, mtime, mode)
    record = b" path=" + name + b"\n"
    length = len(record) + len(str(len(record)))
    length += len(str(length)) - len(str(len(record)))  # the length counts its own digits
    pax = str(length).encode() + record
    pad = bytes(-len(pax) % BLOCK)
    short = name[-100:].decode("utf-8", "ignore").encode()
    return (_ustar(b"././@PaxHeader", b"", b"x", len(pax), mtime, 0o644) + pax + pad
            + _ustar(short, b"", typeflag, size, mtime, mode))  # fmt: skip


class Sink(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...


class TarWriter:
    """Writes pax tar members into `out` (deterministic headers: no owners)."""

    def __init__(self, out: Sink) -> None:
        self.out = out
        self.size = 0
        splice = getattr(out, "splice_from", None)
        self._splice: Callable[[int, int], int] | None = splice if hasattr(os, "splice") else None

    def _put(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.size += len(data)

    def header(self, path: str, kind: str, size: int, mtime: int) -> None:
        self._put(tar_header(path, kind, size, mtime))

    def data(self, block: bytes | memoryview) -> None:
        self._put(block)

    def splice(self, fd: int, size: int) -> int:
        """`size` bytes of file `fd`, moved by the kernel where the sink can; the
        number of bytes there were."""
        if self._splice is not None:
            done = self._splice(fd, size)
            self.size += done
            return done
        done = 0  # reads below the pinned mmap threshold (no page faults per read)
        while done < size and (block := os.read(fd, min(size - done, 128 << 10))):
            self._put(block)
            done += len(block)
        return done

    def end_member(self, size: int) -> None:
        if size % BLOCK:
            self._put(bytes(BLOCK - size % BLOCK))

    def close(self) -> None:
        self._put(bytes(2 * BLOCK))
        if self.size % tarfile.RECORDSIZE:
            self._put(bytes(tarfile.RECORDSIZE - self.size % tarfile.RECORDSIZE))
