"""The local sinks' duplicate index holds a few folders only and reads a dropped one again."""

from __future__ import annotations

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
