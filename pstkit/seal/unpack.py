"""A bundle's stream read back: each volume's ciphertext read, hashed and
decrypted chunk by chunk (in a child process), and the tar members parsed from
the chunks and held to the index (name, type, size, order). The tar parser
reads only what `TarWriter` writes: pax path records, directories, regular files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pstkit.seal.age import AgeError, Decryptor, Identity, NoIdentityMatch
from pstkit.seal.bundle import DataFile, Manifest
from pstkit.seal.child import can_fork, produced
from pstkit.seal.errors import BundleDamaged, DecryptionFailed
from pstkit.seal.hashing import BackgroundHash
from pstkit.seal.pack import BLOCK, Index, Member

ZERO_BLOCK = bytes(BLOCK)

Visit = Callable[[Member, Iterator[memoryview] | None], None]


class CipherReader:
    """One data file's ciphertext, hashed as it is read (in a thread: hashing.py),
    or, for an unseal's volumes (`hashed=False`), only counted: see `walk`."""

    def __init__(self, path: Path, hashed: bool = True) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by finish()/close()
        self.digest = BackgroundHash() if hashed else None
        self.size = 0

    def read(self, n: int) -> bytes:
        data = self.file.read(n)
        self.size += len(data)
        if self.digest is not None:
            self.digest.update(data)
        return data

    def finish(self, f: DataFile) -> None:
        """All was read: the ciphertext must be the one the manifest signs (its
        size at least, where it was not hashed)."""
        rest = self.file.read(1)
        self.file.close()
        if rest or self.size != f.size:
            raise BundleDamaged(f"{f.name}: size differs from the signed manifest")
        if self.digest is not None and self.digest.hexdigest() != f.sha256:
            raise BundleDamaged(f"{f.name}: SHA-256 differs from the signed manifest")

    def close(self) -> None:
        """(After a failure, too: the hashing thread is stopped.)"""
        self.file.close()
        if self.digest is not None:
            self.digest.stop()


def open_age(
    bundle: Path, f: DataFile, identities: Sequence[Identity], hashed: bool = True
) -> tuple[CipherReader, Decryptor]:
    reader = CipherReader(bundle / f.name, hashed)
    try:
        return reader, Decryptor(reader, identities)
    except NoIdentityMatch as e:
        reader.close()
        raise DecryptionFailed(f.name, "no identity or passphrase given matches it") from e
    except AgeError as e:
        reader.close()
        raise BundleDamaged(f"{f.name}: {e}") from e


def plain_chunks(
    bundle: Path, volumes: Sequence[DataFile], identities: Sequence[Identity], hashed: bool = True
) -> Iterator[bytes]:
    """The plaintext of the volumes in order; each volume's hash checked at its end."""
    for f in volumes:
        reader, dec = open_age(bundle, f, identities, hashed)
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


KINDS = {b"0": "file", b"\0": "file", b"5": "dir"}


def _ustar(raw: bytes) -> tuple[bytes, bytes, int]:
    """(name, type flag, size) of one POSIX ustar header block.

    Read here rather than by tarfile: TarInfo.frombuf costs ~70 us a member
    (it decodes every field), a tenth of an unseal's own work."""
    if len(raw) != BLOCK or raw[257:263] != b"ustar\0":
        raise BundleDamaged("a damaged tar header in the stream (not ustar)")
    try:
        size = int(raw[124:136].rstrip(b"\0 "), 8)
        checksum = int(raw[148:156].rstrip(b"\0 "), 8)
    except ValueError as e:
        raise BundleDamaged("a damaged tar header in the stream (bad number)") from e
    if checksum != sum(raw[:148]) + 256 + sum(raw[156:]):  # the field itself counts as spaces
        raise BundleDamaged("a damaged tar header in the stream (bad checksum)")
    name = raw[:100].split(b"\0", 1)[0]
    prefix = raw[345:500].split(b"\0", 1)[0]
    return (prefix + b"/" + name if prefix else name), raw[156:157], size


def _header(stream: _Stream) -> tuple[str, str, int] | None:
    """(name, kind, size) of the next member; None at the end of the archive."""
    raw = stream.take(BLOCK)
    if raw == ZERO_BLOCK or not raw:
        return None
    name, flag, size = _ustar(raw)
    pax: dict[str, str] = {}
    if flag == b"x":
        pax = _parse_pax(stream.take(size))
        stream.take(-size % BLOCK)
        name, flag, size = _ustar(stream.take(BLOCK))
    kind = KINDS.get(flag)
    if kind is None:
        raise BundleDamaged(f"a member of type {flag!r} in the stream")
    path = pax["path"] if "path" in pax else name.decode("utf-8", "surrogateescape")
    if "size" in pax:
        if not pax["size"].isdigit():
            raise BundleDamaged("a damaged pax header in the stream (size)")
        size = int(pax["size"])
    return path.rstrip("/"), kind, size


def walk(bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity],
         visit: Visit, hashed: bool = True, fork: bool = True) -> None:  # fmt: skip
    """Decrypt the stream and hand each member, checked against the index, to
    `visit` (with its data in pieces, which `visit` may leave unread).

    `hashed=False` skips the SHA-256 of the volumes' ciphertext (sizes are still
    held to the manifest) for a caller that holds every member's plaintext to the
    index's SHA-256 itself: the index is hashed and signed, age authenticates
    every chunk, and names, types, sizes and order are checked here, so what such
    a caller writes is exactly what the signed index lists (unseal, opening.py)."""

    # Reading, hashing and decrypting run in a child process (see child.py).
    def chunks() -> Iterator[bytes]:
        return plain_chunks(bundle, manifest.volumes, identities, hashed)

    stream = _Stream(produced(chunks) if fork and can_fork() else chunks())
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
