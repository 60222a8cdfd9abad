"""Exports damaged copies of one PST into stores and judges them (run by test_damage.py in a
subprocess, so that a hang is a timeout and a crash is an exit code, not the test's end).

`python -m tests.pst.damage_worker FILE WORKDIR [--reader=libpff] SEED...` prints one JSON
line per variant: its seed, how it was damaged, the pstkit error (if the file was refused),
the counts, and the silent changes: stored items whose bytes differ from the clean file's
export and that carry no problem naming damage. `check` runs on every store.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
from pathlib import Path

from pstkit.catalog import path_to_text
from pstkit.check import check
from pstkit.converters.pst.source import PstSource
from pstkit.errors import PstkitError
from pstkit.location import Location
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store

#: words that name damage in a problem's reason ("stored, but attachment 2 comes from a
#: damaged block (…)", "unreadable item: …", "… found again by scanning …")
DAMAGE_WORDS = ("damaged", "unreadable", "lost", "checksum", "scanning", "libpff")
KINDS = ("flip1", "flip8", "window", "page", "truncate")


def damage(data: bytes, seed: int) -> tuple[str, bytes]:
    """One seeded damage: bit flips, a flipped 4 KiB window, a zeroed 512-byte page (a
    B-tree page or a block), or a cut at 50-99 % of the length."""
    rng = random.Random(seed)
    how = KINDS[seed % len(KINDS)]
    buf = bytearray(data)
    if how == "truncate":
        return how, bytes(buf[: len(buf) * rng.randrange(50, 100) // 100])
    if how == "window":
        at = rng.randrange(512, len(buf) - 4096)
        buf[at : at + 4096] = bytes(b ^ 0xFF for b in buf[at : at + 4096])
    elif how == "page":  # a page that holds something (most of a small file is free space)
        at = next((a for a in (rng.randrange(1, len(buf) // 512) * 512 for _ in range(64))
                   if any(buf[a : a + 512])), 512)
        buf[at : at + 512] = bytes(512)
    else:
        for _ in range(1 if how == "flip1" else 8):
            buf[rng.randrange(512, len(buf))] ^= 1 << rng.randrange(8)
    return how, bytes(buf)


def stored(path: Path, root: Path, reader: str = "nodes"
           ) -> tuple[dict[tuple[str, str], str], dict[str, object]]:
    """Export into a new store: {(folder, source id): sha256}, and what else was seen."""
    if root.exists():
        shutil.rmtree(root)
    src = PstSource(Location("pst", str(path)), ConnectOptions(extra={"pst_reader": reader}))
    try:
        with Store.create(root) as store:
            result = export(src, store)
    finally:
        src.close()
    with Store.open(root) as store:
        rows = {(path_to_text(r.msg.folder), r.msg.source_id): r.msg.sha256
                for r in store.rows()}
        problems: dict[str, list[str]] = {}
        for _run, _stage, folder, item, reason, _at in store.catalog.problems():
            problems.setdefault(f"{folder}\0{item}", []).append(str(reason))
        findings = [f"{f.code} {f.where}" for f in check(store, read_data=True) if f.damage]
    return rows, {"problems": problems, "findings": findings, "exit": result.exit_code}


def judge(clean: dict[tuple[str, str], str], path: Path, root: Path, reader: str
          ) -> dict[str, object]:
    try:
        rows, seen = stored(path, root, reader)
    except PstkitError as e:
        return {"error": str(e)}
    problems: dict[str, list[str]] = seen["problems"]  # type: ignore[assignment]
    silent = []
    for (folder, item), digest in rows.items():
        if clean.get((folder, item)) == digest:
            continue
        reasons = problems.get(f"{folder}\0{item}", [])
        if not any(w in r for r in reasons for w in DAMAGE_WORDS):
            silent.append(f"{folder}/{item}")
    return {"stored": len(rows), "silent": silent, "findings": seen["findings"]}


def main(argv: list[str]) -> None:
    path, work, rest = Path(argv[0]), Path(argv[1]), argv[2:]
    reader = rest.pop(0).partition("=")[2] if rest and rest[0].startswith("--reader=") else "nodes"
    data = path.read_bytes()
    variant = work / path.name
    clean = stored(path, work / "clean")[0] if _readable(path) else {}
    for seed in map(int, rest):
        how, bad = damage(data, seed)
        variant.write_bytes(bad)
        got = judge(clean, variant, work / "store", reader)
        print(json.dumps({"seed": seed, "how": how, "sha": hashlib.sha256(bad).hexdigest()[:12],
                          **got}), flush=True)


def _readable(path: Path) -> bool:
    try:
        PstSource(Location("pst", str(path)), ConnectOptions()).close()
    except PstkitError:
        return False
    return True


if __name__ == "__main__":
    main(sys.argv[1:])
