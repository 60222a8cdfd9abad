"""Resuming a killed `seal`: the volumes it finished are kept, the rest redone.

A local journal (in the user's cache, never on the bundle's disk) records what
the run is sealing and, as each volume is finished (fsynced and renamed), its
opaque name, ciphertext size and SHA-256 and how many plaintext bytes it holds.
It names no folder, subject or address: the plan is recorded as one SHA-256.

A re-run keeps the finished volumes only if all of this holds, else it clears
the bundle and starts again (as a fresh seal):
- the plan is the same: same store (its marker and catalog file byte for byte,
  every message's path, size and catalog SHA-256, the directories), the same
  recipients and volume size, a Maildir store, public-key recipients (a
  passphrase cannot be compared without keeping something derived from it);
- each kept volume is on disk with the journal's size and SHA-256 (a prefix of
  the journal's volumes: the first that differs and all after it are redone).
The tar stream is deterministic for a plan (the first run's clock is kept in
the journal for the mtimes), so the resumed run skips the kept volumes'
plaintext bytes and encrypts the rest from the next volume on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pstkit.fsutil import write_error
from pstkit.seal.bundle import DataFile, file_sha256, write_atomic

JOURNAL_FORMAT = "pstkit-seal-journal"


@dataclass(frozen=True)
class Journal:
    path: Path
    bundle: str  # the bundle id of the first run
    plan: str  # SHA-256 of what is sealed (see plan_digest)
    clock: int  # the first run's time: the stream's mtimes
    volumes: tuple[tuple[DataFile, int], ...]  # (finished volume, its plaintext bytes)


def default_journal(bundle: Path) -> Path:
    """One journal per bundle directory (by its absolute path, hashed), in
    $XDG_CACHE_HOME/pstkit/seal-journal (~/.cache/…): local disk, not the bundle's."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    key = hashlib.sha256(os.fsencode(os.path.abspath(bundle))).hexdigest()[:32]
    return cache / "pstkit" / "seal-journal" / f"{key}.jsonl"


def plan_digest(files: Iterable[Path], parts: object) -> str:
    """SHA-256 of the plan: `parts` as JSON, then every byte of `files`."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8"))
    for path in files:
        digest.update(file_sha256(path).encode("ascii"))
    return digest.hexdigest()


def load(path: Path) -> Journal | None:
    """The journal at `path`; a torn last line (killed while appending) is left out."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    try:
        head = json.loads(lines[0])
        if head.get("format") != JOURNAL_FORMAT:
            return None
        bundle, plan, clock = str(head["bundle"]), str(head["plan"]), int(head["clock"])
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    volumes = []
    for line in lines[1:]:
        try:
            v = json.loads(line)
            volumes.append((DataFile(str(v["name"]), int(v["size"]), str(v["sha256"])),
                            int(v["plain"])))  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            break
    return Journal(path, bundle, plan, clock, tuple(volumes))


def reusable(
    bundle: Path, journal: Journal | None, plan: str, limit: int
) -> list[tuple[DataFile, int]]:
    """The journal's volumes that can be kept: same plan, each on disk as recorded."""
    if journal is None or journal.plan != plan:
        return []
    kept = []
    for f, plain in journal.volumes:
        path = bundle / f.name
        full = plain == limit
        with contextlib.suppress(OSError):
            if path.stat().st_size == f.size and file_sha256(path) == f.sha256:
                kept.append((f, plain))
                if full:
                    continue
        break  # a volume not as recorded, or the stream's last one: nothing after it
    return kept


def start(path: Path, bundle: str, plan: str, clock: int,
          kept: Sequence[tuple[DataFile, int]]) -> None:  # fmt: skip
    """(Re)write the journal: this run's plan and the volumes it keeps."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    head = {"format": JOURNAL_FORMAT, "version": 1, "bundle": bundle, "plan": plan, "clock": clock}
    lines = [json.dumps(head)] + [_line(f, plain) for f, plain in kept]
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))


def _line(f: DataFile, plain: int) -> str:
    return json.dumps({"name": f.name, "size": f.size, "sha256": f.sha256, "plain": plain})


def recorder(path: Path | None) -> Callable[[DataFile, int], None] | None:
    """What the volume writer calls after each volume is durable: one line, fsynced."""
    if path is None:
        return None

    def record(f: DataFile, plain: int) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            try:
                os.write(fd, (_line(f, plain) + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise write_error(path, e) from e

    return record


def remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class Skipping:
    """A tar stream's sink that drops its first `skip` bytes (the kept volumes'
    plaintext) without reading them from the store where it can: a message wholly
    inside them is not read at all (its size was checked, as in a fresh seal)."""

    def __init__(self, out: object, skip: int) -> None:
        self.out = out
        self.left = skip
        self._splice: Callable[[int, int], int] | None = getattr(out, "splice_from", None)

    def write(self, data: bytes | memoryview) -> None:
        if self.left:
            n = min(self.left, len(data))
            self.left -= n
            data = memoryview(data)[n:]
            if not data:
                return
        self.out.write(data)  # type: ignore[attr-defined]

    def splice_from(self, fd: int, count: int) -> int:
        skipped = min(self.left, count)
        if skipped:
            self.left -= skipped
            count -= skipped
            if not count:
                return skipped
            os.lseek(fd, skipped, os.SEEK_CUR)
        if self._splice is not None:
            return skipped + self._splice(fd, count)
        done = 0
        while done < count and (block := os.read(fd, min(count - done, 128 << 10))):
            self.out.write(block)  # type: ignore[attr-defined]
            done += len(block)
        return skipped + done
