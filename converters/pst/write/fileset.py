"""The files of one PST target: `OUT.pst`, or with `--max-size` the parts `OUT-001.pst`,
`OUT-002.pst`…, each a complete store; their work names; which exist; and when the part
being written is full; the lock on writing them. Pure except `existing`, `state` and
`hold`, which look at the folder and take a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from pathlib import Path

from pstkit.errors import TargetWriteError

from .messaging import PstWriter

TMP = ".pstkit-tmp"
#: a part never grows past its limit because of what `finish` adds: the B-tree pages (a
#: 512-byte page per 20 BBT or 15 NBT entries, so ≤ 48 bytes an entry with the levels
#: above), the contents tables (their rows are spooled: at most twice the spool), the
#: hierarchy and maps (1 MiB covers them for thousands of folders)
ENTRY_COST, TAIL = 48, 1 << 20


def part_name(path: Path, index: int) -> Path:
    """`OUT.pst` -> `OUT-003.pst` (index 3)."""
    return path.with_name(f"{path.stem}-{index:03d}{path.suffix or '.pst'}")


def work_name(path: Path) -> Path:
    return path.with_name(path.name + TMP)


def existing(path: Path) -> list[Path]:
    """The files of an earlier write to `path`: the file itself, else its parts in order."""
    if path.exists():
        return [path]
    # the suffix part_name gives: `pst:OUT` writes OUT-001.pst, so look for that
    pattern = re.compile(re.escape(path.stem) + r"-(\d{3,})"
                         + re.escape(path.suffix or ".pst") + "$")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return [p for _i, p in sorted(found)]


class PartMissing(TargetWriteError):
    """cannot write to target {}: {}"""

    hint = "put the part back, or write the set anew to a new name"


def refuse_gap(path: Path, files: list[Path]) -> None:
    """Refuse to write to a split set with a part missing (`OUT-002.pst` of OUT-001,
    OUT-003): parts are numbered by their place in the set, so a new part would be written
    over one that holds items, and the ledger still counts the missing part's items as
    delivered (a run would say "0 new" with them gone)."""
    for k, p in enumerate(files, 1):
        if p != part_name(path, k):
            # the names found tell a part moved away from a file that is no part at all
            # (ann-2023.pst beside pst:ann.pst is named like part 2023)
            found = ", ".join(f.name for f in files[:3]) + (", …" if len(files) > 3 else "")
            raise PartMissing(part_name(path, k), f"this part of the set {path.name} is "
                              f"missing (moved or deleted?), found {found}")


class TargetBusy(TargetWriteError):
    """cannot write to target {}: {}"""

    hint = "run the import again when the other run is done"


#: the lock on writing a target: the descriptor holding it and its lock file
Held = tuple[int, Path]


def hold(path: Path) -> Held:
    """Take the lock on writing `path` (its file or its parts) until `release`. Two runs
    writing one target (two stores into one PST, a batch with two rows of the same
    target) would share the work name and each rename its file over the other's: the
    items of one gone while its ledger says delivered. The lock file is in the temporary
    folder, not beside the target, where it would be uploaded with the PSTs."""
    # the real path: two spellings of one file (a symlinked folder) are one target
    key = hashlib.sha256(os.fsencode(os.path.realpath(path))).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"pstkit-pst-{key}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise TargetWriteError(lock, e.strerror or str(e)) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise TargetBusy(path, "another pstkit run is writing it") from None
        # the run before may have removed the file between this open and flock (release):
        # a lock on a file no other run finds holds nothing, so take the one at the name
        try:
            if os.path.samestat(os.stat(lock), os.fstat(fd)):
                return fd, lock
        except FileNotFoundError:
            pass
        os.close(fd)


def release(held: Held | None) -> None:
    """Remove the lock file (no lock files pile up in the temporary folder), then drop the
    lock: a run that opened the file before sees it gone and makes a new one."""
    if held is not None:
        fd, lock = held
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def state(files: list[Path]) -> list[tuple[Path, int, int, int]]:
    """What identifies the files as read: a run that replaced one meanwhile changes it."""
    out = []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p, st.st_ino, st.st_size, st.st_mtime_ns))
    return out


def leftover(path: Path, parts: int) -> bool:
    """Is a work file of an earlier run left beside the `parts` files of `path` (a run that
    was killed before its rename)?"""
    names = [path] + [part_name(path, k) for k in range(1, parts + 2)]
    return any(work_name(p).exists() for p in names)


def projected(writer: PstWriter, item_bytes: int) -> int:
    """The part's size after `finish` if an item of `item_bytes` (its MIME size) went in
    now. Conservative: an item takes at most twice its MIME size in blocks (bodies can be
    kept as text and HTML; base64 shrinks when decoded), and the tail as above."""
    ndb = writer.ndb
    entries = ndb.blocks.count + ndb.nodes.count + 16
    return (ndb.next_ib + 2 * writer.spool_size + ENTRY_COST * entries + TAIL
            + 2 * item_bytes)
