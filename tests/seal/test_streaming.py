"""The pieces a seal and an unseal stream through: the tar header reader
(held to tarfile's reading of the same headers), and the hashes computed in a
thread (held to hashlib, and to the expected digest of each member)."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile

import pytest

from pstkit.seal.errors import BundleDamaged
from pstkit.seal.hashing import BackgroundHash, MemberHashes
from pstkit.seal.pack import tar_header
from pstkit.seal.unpack import _header, _Stream

NAMES = [
    "mail/" + "/".join(char * 60 for _ in range(3))[:length] + "/cur/" + "f" * 32 + "!2,S"
    for length in (1, 40, 98, 99, 100, 101, 150, 160, 250, 251, 300)
    for char in ("a", "é", "日")
]


@pytest.mark.parametrize("name", NAMES)
def test_header_reader_agrees_with_tarfile(name: str) -> None:
    data = b"message\n" * 7
    stream = tar_header(name, "file", len(data), 1_700_000_000) + data
    stream += bytes(-len(stream) % 512) + tar_header(name + "d", "dir", 0, 0) + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
        expected = [(m.name, "dir" if m.isdir() else "file", m.size) for m in tar.getmembers()]
    ours = _Stream(iter([stream[i : i + 100] for i in range(0, len(stream), 100)]))
    first = _header(ours)
    assert ours.take(len(data)) == data
    ours.take(-len(data) % 512)
    assert [first, _header(ours), _header(ours)] == [*expected, None]


def test_a_damaged_header_is_damage_never_another_error() -> None:
    rng = random.Random(20)
    header = tar_header("mail/" + "日" * 80 + "/cur/1", "file", 12345, 1_700_000_000)
    caught = 0
    for _ in range(400):
        mutated = bytearray(header)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            _header(_Stream(iter([bytes(mutated), bytes(4096)])))
        except BundleDamaged:
            caught += 1
    assert caught > 300  # nearly every change breaks the checksum, magic or a number


def test_background_hash_equals_hashlib() -> None:
    rng = random.Random(7)
    pieces = [rng.randbytes(rng.choice([0, 1, 100, 65536, 70000, 1 << 20])) for _ in range(60)]
    ours = BackgroundHash()
    for i, piece in enumerate(pieces):  # single pieces and whole batches, mixed
        if i % 5 == 4:
            ours.feed([piece, memoryview(piece)[:10]])
        else:
            ours.update(piece)
    pieces = [p + (p[:10] if i % 5 == 4 else b"") for i, p in enumerate(pieces)]
    assert ours.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_member_hashes_name_each_member_that_differs() -> None:
    members = [(f"m{i}", bytes([i]) * (i * 50_000)) for i in range(12)]
    hashes = MemberHashes()
    for name, data in members:
        hashes.start()
        view = memoryview(data)
        hashes.feed([view[: len(data) // 3], view[len(data) // 3 :]])
        wrong = name in ("m3", "m7")
        sha = hashlib.sha256(data + (b"x" if wrong else b"")).hexdigest()
        hashes.end(name, len(data) + (1 if name == "m9" else 0), sha)
    assert hashes.failures() == ["m3", "m7", "m9"]
