"""A bundle's stream read back: each volume's ciphertext read, hashed and
decrypted chunk by chunk (in a child process), and the tar members parsed from
the chunks and held to the index (name, type, size, order). The tar parser
reads only what `TarWriter` writes: pax path records, directories, regular files.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pstkit.seal.age import AgeError, Decryptor, Identity, NoIdentityMatch
from pstkit.seal.bundle import DataFile, Manifest
from pstkit.seal.child import can_fork, produced
from pstkit.seal.errors import BundleDamaged, DecryptionFailed
from pstkit.seal.pack import BLOCK, Index, Member

ZERO_BLOCK = bytes(BLOCK)

Visit = Callable[[Member, Iterator[memoryview] | None], None]


class CipherReader:
    """One data file's ciphertext, hashed as it is read."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by finish()/close()
        self.digest = hashlib.sha256()

    def read(self, n: int) -> bytes:
        data = self.file.read(n)
        self.digest.update(data)
        return data

    def finish(self, f: DataFile) -> None:
        """All was read: the ciphertext must be the one the manifest signs."""
        rest = self.file.read(1)
        self.close()
        if rest or self.digest.hexdigest() != f.sha256:
            raise BundleDamaged(f"{f.name}: SHA-256 differs from the signed manifest")

    def close(self) -> None:
        self.file.close()


def open_age(
    bundle: Path, f: DataFile, identities: Sequence[Identity]
) -> tuple[CipherReader, Decryptor]:
    reader = CipherReader(bundle / f.name)
    try:
        return reader, Decryptor(reader, identities)
    except NoIdentityMatch as e:
        reader.close()
        raise DecryptionFailed(f.name, "no identity or passphrase given matches it") from e
    except AgeError as e:
        reader.close()
        raise BundleDamaged(f"{f.name}: {e}") from e


def plain_chunks(
    bundle: Path, volumes: Sequence[DataFile], identities: Sequence[Identity]
) -> Iterator[bytes]:
    """The plaintext of the volumes in order; each volume's hash checked at its end."""
    for f in volumes:
        reader, dec = open_age(bundle, f, identities)
        try:
            yield from dec.chunks()
        except AgeError as e:
            reader.close()
            raise BundleDamaged(f"{f.name}: {e}") from e
        reader.finish(f)


class _Stream:
    """Exact-size reads over a sequence of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf, self._pos = b"", 0

    def take(self, n: int) -> bytes:
        parts = []
        while n > 0:
            if self._pos >= len(self._buf):
                self._buf, self._pos = next(self._chunks, b""), 0
                if not self._buf:
                    break
            end = min(len(self._buf), self._pos + n)
            parts.append(memoryview(self._buf)[self._pos : end])
            n -= end - self._pos
            self._pos = end
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    def pieces(self, size: int) -> Iterator[memoryview]:
        """The next `size` bytes as views into the decrypted chunks (no copies)."""
        while size > 0:
            if self._pos >= len(self._buf):
                self._buf, self._pos = next(self._chunks, b""), 0
                if not self._buf:
                    raise BundleDamaged("the stream ends inside a member")
            end = min(len(self._buf), self._pos + size)
            yield memoryview(self._buf)[self._pos : end]
            size -= end - self._pos
            self._pos = end

    def rest(self) -> Iterator[bytes]:
        if self._pos < len(self._buf):
            yield self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        yield from self._chunks


def _parse_pax(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    try:
        while pos < len(data):
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            record = data[space + 1 : pos + length - 1]
            key, _, value = record.partition(b"=")
            out[key.decode("ascii")] = value.decode("utf-8", "surrogateescape")
            pos += length
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleDamaged(f"a damaged pax header in the stream ({e})") from e
    return out


def _header(stream: _Stream) -> tuple[str, str, int] | None:
    """(name, kind, size) of the next member; None at the end of the archive."""
    raw = stream.take(BLOCK)
    if raw == ZERO_BLOCK or not raw:
        return None
    try:
        info = tarfile.TarInfo.frombuf(raw, "utf-8", "surrogateescape")
        pax: dict[str, str] = {}
        if info.type == tarfile.XHDTYPE:
            pax = _parse_pax(stream.take(info.size))
            stream.take(-info.size % BLOCK)
            info = tarfile.TarInfo.frombuf(stream.take(BLOCK), "utf-8", "surrogateescape")
    except tarfile.HeaderError as e:
        raise BundleDamaged(f"a damaged tar header in the stream ({e})") from e
    kinds = {tarfile.DIRTYPE: "dir", tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file"}
    if info.type not in kinds:
        raise BundleDamaged(f"a member of type {info.type!r} in the stream")
    return pax.get("path", info.name).rstrip("/"), kinds[info.type], int(pax.get("size", info.size))


def walk(bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity],
         visit: Visit) -> None:  # fmt: skip
    """Decrypt the stream and hand each member, checked against the index, to
    `visit` (with its data in pieces, which `visit` may leave unread)."""

    # Reading, hashing and decrypting run in a child process (see child.py).
    def chunks() -> Iterator[bytes]:
        return plain_chunks(bundle, manifest.volumes, identities)

    stream = _Stream(produced(chunks) if can_fork() else chunks())
    for member in index.members:
        header = _header(stream)
        if header is None:
            raise BundleDamaged(f"the stream ends before {member.path}")
        name, kind, size = header
        if name != member.path or kind != member.kind or (kind == "file" and size != member.size):
            raise BundleDamaged(f"the stream holds {name!r} where the index has {member.path!r}")
        if kind == "dir":
            visit(member, None)
            continue
        pieces = stream.pieces(size)
        visit(member, pieces)
        for _ in pieces:  # what the visitor left unread
            pass
        stream.take(-size % BLOCK)
    if _header(stream) is not None:
        raise BundleDamaged("the stream holds more members than the index")
    for chunk in stream.rest():  # zero padding to the end, and every volume's hash
        if chunk.count(0) != len(chunk):
            raise BundleDamaged("data after the end of the tar stream")
