"""Stores made from the shared corpus -> `pstkit import STORE pst:OUT.pst` -> the PST read
back by three independent readers (pstkit's node reader, libpff, libpst's readpst): the
same folders with the same counts, and per message the same subject, sender, recipients,
date, plain body and attachments (names and bytes); the structural checker finds nothing.

Differences that are a reader's doing, not the file's, are listed in `_reader_view` with
the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.sink import PstSink
from pstkit.importing import make_plan
from pstkit.location import Location
from pstkit.model import FolderPath
from pstkit.options import ConnectOptions, MappingOptions
from pstkit.store import Store
from tests.helpers import cli

from .write_readers import Seen, from_mime, libpff_read, pstkit_read, readpst_read

SOURCES = {
    "eml": "eml:{c}/eml",
    "maildir": "maildir:{c}/maildir/staktrace_submaildirs",
    "mbox": "mbox:{c}/mbox/tika_testMBOX_complex.mbox",
    "mbox-aspose": "mbox:{c}/mbox/aspose_ExampleMbox.mbox",
}


@pytest.fixture(scope="module", params=sorted(SOURCES))
def written(request: pytest.FixtureRequest, corpus: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, dict[FolderPath, list[bytes]], Path]:
    """(the PST, the raw messages expected per PST folder, a scratch dir)."""
    tmp = tmp_path_factory.mktemp(request.param)
    store, pst = tmp / "store", tmp / "out.pst"
    code, _out, err = cli("--quiet", "export", SOURCES[request.param].format(c=corpus),
                          str(store))
    assert code in (0, 1), err
    code, _out, err = cli("--quiet", "import", str(store), f"pst:{pst}")
    assert code == 0, err
    expected: dict[FolderPath, list[bytes]] = {}
    with Store.open(store) as st:
        sink = PstSink(Location("pst", str(pst)), ConnectOptions())
        for entry in make_plan(st, sink, MappingOptions()):
            expected[entry.target] = [st.read(r) for r in st.rows(entry.source.id)]
    return pst, expected, tmp


def test_structure_is_valid(written: tuple[Path, dict[FolderPath, list[bytes]], Path]) -> None:
    pst, expected, _tmp = written
    with pst.open("rb") as f:
        report = check(f)
    assert report.findings == []
    assert report.nodes > 20 and report.blocks > sum(map(len, expected.values()))


def _reader_view(reader: str, want: Seen, seen: Seen) -> tuple[Seen, Seen]:
    """What the reader can be expected to show of `want` (the original message), and what
    it shows, with generated attachment names left out."""
    if not want.sender:  # readpst writes MAILER-DAEMON, pstkit an "undisclosed" address
        want = replace(want, sender=seen.sender)
    if want.date is None:  # pstkit's MIME gets a Date from the delivery time
        want = replace(want, date=seen.date)
    if "\0" in want.body and reader in ("libpff", "readpst"):  # C strings end at a NUL
        want = replace(want, body=want.body.split("\0")[0].strip())
    if reader == "readpst":  # skips 0-byte attachments and names nameless ones itself
        empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        want = replace(want, attachments=tuple(a for a in want.attachments if a[1] != empty))
    named = {n for n, _h in want.attachments if n}
    seen = replace(seen, attachments=tuple(sorted(  # nameless parts get a generated name
        (n if n in named else "", h) for n, h in seen.attachments)))
    return replace(want, attachments=tuple(sorted(want.attachments))), seen


#: readpst builds its own header (To: display names without addresses) for this message
_READPST_OWN_HEADER = {"Fwd: Signed email causes file attachments"}


def _compare(reader: str, expected: dict[FolderPath, list[bytes]],
             got: dict[FolderPath, list[Seen]]) -> list[str]:
    diffs = []
    for folder, raws in expected.items():
        seen = got.get(folder, [])
        if len(seen) != len(raws):
            diffs.append(f"{reader} {folder}: {len(seen)} items, expected {len(raws)}")
            continue
        for raw, shown in zip(raws, seen, strict=True):  # NID order is delivery order
            want, item = _reader_view(reader, from_mime(raw, names=reader != "readpst"), shown)
            if reader == "readpst" and want.subject in _READPST_OWN_HEADER:
                want = replace(want, recipients=item.recipients)
            for name in want.__dataclass_fields__:
                if getattr(want, name) != getattr(item, name):
                    diffs.append(f"{reader} {folder} {want.subject!r} {name}: "
                                 f"{getattr(want, name)!r} != {getattr(item, name)!r}")
    return diffs


def test_pstkit_reads_what_was_written(
        written: tuple[Path, dict[FolderPath, list[bytes]], Path]) -> None:
    pst, expected, _tmp = written
    got = {f: [from_mime(r) for r in raws] for f, raws in pstkit_read(pst).items()}
    assert _compare("pstkit", expected, got) == []


def test_libpff_reads_what_was_written(
        written: tuple[Path, dict[FolderPath, list[bytes]], Path]) -> None:
    pst, expected, _tmp = written
    assert _compare("libpff", expected, libpff_read(pst)) == []


def test_readpst_reads_what_was_written(
        written: tuple[Path, dict[FolderPath, list[bytes]], Path]) -> None:
    pst, expected, tmp = written
    got = {f: [from_mime(r, names=False) for r in raws]
           for f, raws in readpst_read(pst, tmp / "readpst").items()}
    assert _compare("readpst", expected, got) == []


def test_folder_counts_agree(written: tuple[Path, dict[FolderPath, list[bytes]], Path]) -> None:
    pst, expected, tmp = written
    want = Counter({f: len(r) for f, r in expected.items() if r})
    for got in (pstkit_read(pst), libpff_read(pst), readpst_read(pst, tmp / "counts")):
        assert Counter({f: len(r) for f, r in got.items() if r}) == want
