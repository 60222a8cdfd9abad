"""Truncated PSTs: as many items as readpst recovers (issue 14).

A copy cut short loses B-tree pages that lay past the cut; the reader walks the pages that
are left, finds the nodes below the lost ones in the file's leaf pages, stores every item
it can read and says what was lost. On every cut (50-99 % of each corpus file) it stores
at least as many items as `readpst -j 0 -D -M` writes. Before, SampleOstFile.ost cut at
84 % or more and dist-list.pst at 50 % gave exit 2 and nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pstkit.converters.pst.source import PstSource
from pstkit.errors import SourceError
from pstkit.location import Location
from pstkit.model import Fetched
from pstkit.options import ConnectOptions, FetchFilter
from tests.conftest import corpus_root

FILES = sorted(p.name for p in (corpus_root() / "pst").glob("*.[po]st")
               if p.name != "aspose_AddingBulkMessagesWithImprovedPerformance.pst")  # bad header
CUTS = (50, 57, 64, 71, 78, 84, 85, 88, 90.5, 92, 95, 99)  # the cuts among them
SLOW_CUTS = tuple(range(50, 100))


@pytest.fixture(scope="module")
def have_readpst() -> None:
    if shutil.which("readpst") is None:
        pytest.skip("readpst (pst-utils) not installed")


def readpst_count(path: Path, out: Path) -> int:
    out.mkdir()
    subprocess.run(["readpst", "-j", "0", "-D", "-M", "-o", str(out), str(path)],
                   capture_output=True, timeout=300, check=False)
    return sum(1 for p in out.rglob("*") if p.is_file())


def pstkit_count(path: Path) -> tuple[int, list[str]]:
    """Items stored (readpst writes Outlook's own folders too: so do we here), and the
    reasons of what could not be read."""
    try:
        src = PstSource(Location("pst", str(path)),
                        ConnectOptions(extra={"pst_system": "include"}))
    except SourceError as e:
        return 0, [str(e)]
    stored, skipped = 0, []
    for f in src.folders():
        for r in src.fetch(f, None, FetchFilter(), set()):
            if isinstance(r, Fetched):
                stored += 1
            else:
                skipped.append(r.reason)
    src.close()
    return stored, skipped


def _compare(corpus: Path, tmp_path: Path, name: str, cuts: tuple[float, ...]) -> None:
    data = (corpus / "pst" / name).read_bytes()
    worse = []
    for cut in cuts:
        path = tmp_path / f"{cut}.pst"
        path.write_bytes(data[: int(len(data) * cut / 100)])
        theirs = readpst_count(path, tmp_path / f"readpst-{cut}")
        ours, why = pstkit_count(path)
        if ours < theirs:
            worse.append((cut, ours, theirs, why[:2]))
    assert not worse, (name, worse)


@pytest.mark.usefixtures("have_readpst")
@pytest.mark.parametrize("name", FILES)
def test_truncated_copy_gives_at_least_what_readpst_gives(
    corpus: Path, tmp_path: Path, name: str
) -> None:
    _compare(corpus, tmp_path, name, CUTS)


@pytest.mark.slow
@pytest.mark.usefixtures("have_readpst")
@pytest.mark.parametrize("name", FILES)
def test_every_percent_of_a_cut(corpus: Path, tmp_path: Path, name: str) -> None:
    _compare(corpus, tmp_path, name, SLOW_CUTS)


def test_cut_ost_says_what_was_lost(corpus: Path, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    data = (corpus / "pst" / "SampleOstFile.ost").read_bytes()
    path = tmp_path / "cut.ost"
    path.write_bytes(data[: len(data) * 88 // 100])
    stored, skipped = pstkit_count(path)
    assert stored >= 70  # readpst: 70 on this cut
    assert all("file truncated at" in reason for reason in skipped), skipped
    said = [r.getMessage() for r in caplog.records]
    assert any("cut short: 3590963 of 4080640 bytes (87 %)" in m for m in said), said
