"""The local sinks' duplicate index holds a few folders only and reads a dropped one again."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

from pstkit.dupindex import DuplicateIndex, duplicate_key
from pstkit.model import FolderPath

A: FolderPath = ("A",)
B: FolderPath = ("B",)
M1 = b"Message-ID: <1@x>\r\nSubject: one\r\n\r\nbody\r\n"
M2 = b"Subject: no id\r\n\r\nbody two\r\n"


def test_a_dropped_folder_is_read_again_from_the_target() -> None:
    target: dict[FolderPath, list[tuple[bytes, str]]] = {A: [(M2, "a0")], B: []}
    loads: list[FolderPath] = []

    def load(folder: FolderPath) -> Iterator[tuple[str, str]]:
        loads.append(folder)
        return iter([(duplicate_key(raw), tid) for raw, tid in target[folder]])

    index = DuplicateIndex(load, keep=1)
    assert index.find(A, M1) == [] and index.find(A, M2) == ["a0"]
    target[A].append((M1, "a1"))  # delivered by this run: in the target and in the index
    index.add(A, M1, "a1")
    assert index.find(A, M1) == ["a1"] and loads == [A]
    assert index.find(B, M1) == []  # B pushes A out (keep=1)
    assert index.find(A, M1) == ["a1"]  # A is read again, this run's delivery included
    assert loads == [A, B, A]
    index.add(B, M1, "b1")  # B is no longer held: nothing to update, and nothing is wrong
    target[B].append((M1, "b1"))
    assert index.find(B, M1) == ["b1"] and loads == [A, B, A, B]


def test_folders_in_use_stay_held() -> None:
    loads: list[FolderPath] = []

    def load(folder: FolderPath) -> Iterator[tuple[str, str]]:
        loads.append(folder)
        return iter(())

    index = DuplicateIndex(load, keep=2)
    for folder in (A, B, A, B, A):
        assert index.find(folder, M1) == []
    assert loads == [A, B]


def test_a_large_folder_is_not_held_in_memory() -> None:
    """20,000 items of one folder: the index is a temporary file, so Python's memory does
    not hold them (a dict of keys and ids took ~5 MB here)."""
    index = DuplicateIndex(lambda folder: iter(()), keep=1)
    mails = [b"Message-ID: <%d@scale.example>\r\n\r\nbody\r\n" % i for i in range(20_000)]
    assert index.find(A, mails[0]) == []  # A is held from here on
    tracemalloc.start()
    try:
        for i, raw in enumerate(mails):
            index.add(A, raw, f".A/cur/{i:032x}:2,S")
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown < 1 << 20
    assert index.find(A, mails[12_345]) == [f".A/cur/{12_345:032x}:2,S"]
    assert index.find(A, b"Message-ID: <nope@x>\r\n\r\n") == []
    index.close()
