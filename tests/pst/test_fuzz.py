"""Damaged PSTs: truncated and bit-flipped copies of corpus files (seeded).

Each copy is read completely in a subprocess with a time cap. It must end
with a clean pstkit error or with results (skips allowed): never a crash,
a hang or a traceback.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pypff")

from pstkit.converters.pst.source import PstSource
from pstkit.errors import PstkitError
from pstkit.location import Location
from pstkit.model import Fetched, Skipped
from pstkit.options import ConnectOptions, FetchFilter

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pstsdk_sample1.pst", "msgInMsg.pst", "dist-list.pst")
TIME_CAP = 60  # seconds per file; a whole-file read takes well under one

READER = """
import sys
from pstkit.converters.pst.source import PstSource
from pstkit.errors import PstkitError
from pstkit.location import Location
from pstkit.model import Fetched
from pstkit.options import ConnectOptions, FetchFilter
try:
    src = PstSource(Location("pst", sys.argv[1]), ConnectOptions())
except PstkitError as e:
    print("ERROR", e)
    sys.exit(3)
done = skipped = 0
for folder in src.folders():
    for r in src.fetch(folder, None, FetchFilter(), set()):
        if isinstance(r, Fetched):
            done += 1
        else:
            skipped += 1
src.close()
print("OK", done, skipped)
"""


#: variants that once broke the reader (pypff raised MemoryError; returned None for the name map)
REGRESSIONS = [("dist-list.pst", "flip", 5050), ("msgInMsg.pst", "flip", 7041)]


def variants() -> list[tuple[str, str, int]]:
    """(source file, "truncate"|"flip", seed) — 30 variants, fixed seeds, + regressions."""
    out = list(REGRESSIONS)
    for i in range(30):
        out.append((SOURCES[i % len(SOURCES)], "truncate" if i % 3 == 0 else "flip", 1000 + i))
    return out


def damage(data: bytes, how: str, seed: int) -> bytes:
    rng = random.Random(seed)
    if how == "truncate":
        return data[: rng.randrange(512, len(data))]
    buf = bytearray(data)
    for _ in range(rng.choice((1, 8, 64, 512))):
        pos = rng.randrange(len(buf))
        buf[pos] ^= 1 << rng.randrange(8)
    return bytes(buf)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "how", "seed"), variants())
def test_damaged_pst_ends_cleanly(
    corpus: Path, tmp_path: Path, name: str, how: str, seed: int
) -> None:
    path = tmp_path / f"{how}-{seed}-{name}"
    path.write_bytes(damage((corpus / "pst" / name).read_bytes(), how, seed))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", READER, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIME_CAP,
        env=env,
        cwd=REPO,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 3), (proc.returncode, proc.stderr[-2000:])
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].split()[0] in ("OK", "ERROR"), proc.stdout


@pytest.mark.parametrize(("name", "seed", "total", "reason"), [
    ("testPST.pst", 20102, 7, "unreadable item (block 0x440 checksum mismatch); libpff: "
                              "unreadable item: pypff_folder_get_sub_message_by_index"),
])
def test_one_damaged_item_is_a_skip_and_the_rest_is_read(
    corpus: Path, tmp_path: Path, name: str, seed: int, total: int, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(damage((corpus / "pst" / name).read_bytes(), "flip", seed))
    src = PstSource(Location("pst", str(path)), ConnectOptions())
    results = [r for f in src.folders() for r in src.fetch(f, None, FetchFilter(), set())]
    src.close()
    assert len(results) == total  # every item: stored or reported
    damaged = [r for r in results if isinstance(r, Skipped) and "Freebusy" not in str(r.meta)]
    assert damaged and all(r.reason.startswith(reason) for r in damaged)
    assert all("\n" not in r.reason for r in damaged)
    assert len(damaged) < total - 1  # the others were read


def test_damaged_recipient_table_keeps_the_item_with_a_note(corpus: Path, tmp_path: Path) -> None:
    """Two Inbox items whose recipient tables neither reader can read (found by this seed)
    are stored with their headers, bodies and attachments, and a note says what is missing;
    before, each was a skip and everything in it was lost."""
    path = tmp_path / "aspose_source.pst"
    path.write_bytes(damage((corpus / "pst" / "aspose_source.pst").read_bytes(), "flip", 20001))
    src = PstSource(Location("pst", str(path)), ConnectOptions())
    results = [r for f in src.folders() for r in src.fetch(f, None, FetchFilter(), set())]
    src.close()
    assert len(results) == 16  # Freebusy Data: a system folder, not exported
    salvaged = [r for r in results if isinstance(r, Fetched)
                and any(n.startswith("recipient table unreadable") for n in r.notes)]
    assert len(salvaged) == 2 and all(r.meta.folder == ("Inbox",) for r in salvaged)
    for r in salvaged:
        head = r.raw.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nTo: " in head and b"X-Pstkit-Note: recipient table unreadable" in head
    assert not [r for r in results if isinstance(r, Skipped) and "Freebusy" not in str(r.meta)]


def test_offset_beyond_any_file_is_damage_not_a_crash(corpus: Path, tmp_path: Path) -> None:
    """Random byte changes (seed found by a fuzz run under AddressSanitizer) that give a
    block an 8-byte file offset of 2**63 or more: os.pread raised OverflowError, which
    escaped as a traceback. Now it is damage like any other: libpff decides."""
    rng = random.Random(100)
    data = bytearray((corpus / "pst" / "dist-list.pst").read_bytes())
    for _ in range(rng.choice([1, 5, 40, 200])):
        at = rng.randrange(0x400, len(data))
        if rng.random() < 0.5:
            data[at] ^= 1 << rng.randrange(8)
        else:
            data[at] = rng.randrange(256)
    path = tmp_path / "dist-list.pst"
    path.write_bytes(bytes(data))
    try:
        src = PstSource(Location("pst", str(path)), ConnectOptions())
    except PstkitError as e:
        assert "\n" not in str(e)
        return
    results = [r for f in src.folders() for r in src.fetch(f, None, FetchFilter(), set())]
    src.close()
    assert all(isinstance(r, Fetched | Skipped) for r in results)
