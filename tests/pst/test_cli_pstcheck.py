"""`pstkit check pst:OUT.pst`: the structural check an admin runs before shipping PSTs to
Microsoft's import: a line per clean file, a line per finding, exit 0 / 1 / 2, `--json`;
each part of a split set; files Outlook made pass; damage is a finding, never a traceback.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from pstkit.converters.pst.write.ndb import AMAP_AT
from tests.helpers import cli, cli_json, make_message, run_pstkit, write_maildir


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 40 messages (two folders) written once as one PST and once split."""
    base = tmp_path_factory.mktemp("pstcheck")
    rng = random.Random(3)
    mails = [(make_message(i, size=rng.randrange(20_000, 160_000)), "S") for i in range(40)]
    write_maildir(base / "md", {"": mails[:20], ".Projects": mails[20:]})
    store = base / "store"
    assert run_pstkit("--quiet", "export", f"maildir:{base / 'md'}", str(store)).returncode == 0
    one = run_pstkit("--quiet", "import", str(store), f"pst:{base / 'one.pst'}")
    assert one.returncode == 0, one.stderr
    (base / "split").mkdir()
    split = run_pstkit("--quiet", "import", str(store), f"pst:{base / 'split' / 'out.pst'}",
                       "--max-size", "3MB")
    assert split.returncode == 0, split.stderr
    return base


def test_clean_file_is_one_ok_line(written: Path) -> None:
    code, out, err = cli("check", f"pst:{written / 'one.pst'}")
    assert code == 0, err
    size = (written / "one.pst").stat().st_size
    assert out.splitlines() == [f"{written / 'one.pst'}: OK, 6 folders, 40 items, {size} bytes "
                                f"({size / 1e6:.1f} MB)"]


def test_damaged_copy_exits_4_with_the_finding(written: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pst"
    data = bytearray((written / "one.pst").read_bytes())
    data[AMAP_AT + 3] ^= 0xFF  # an AMap byte: space marked free/used wrongly, CRC wrong
    bad.write_bytes(bytes(data))
    code, out, _err = cli("check", str(bad))  # a .pst name is enough, no pst: needed
    assert code == 4
    lines = out.splitlines()
    assert f"{bad}: AMap page {AMAP_AT:#x}: type, CRC or BID wrong" in lines
    assert f"{bad}: AMap page {AMAP_AT:#x} does not match the allocated space" in lines
    assert not any("OK," in line for line in lines)


def test_split_set_checks_each_part(written: Path) -> None:
    parts = sorted((written / "split").glob("out-*.pst"))
    assert len(parts) >= 2
    code, out, err = cli("check", f"pst:{written / 'split' / 'out.pst'}")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split(": OK")[0] for line in lines] == [str(p) for p in parts]
    assert sum(int(line.split(", ")[2].split()[0]) for line in lines) == 40  # items
    code, again, _ = cli("check", f"pst:{written / 'split'}")  # the directory: the same
    assert (code, again) == (0, out)


def test_one_damaged_part_fails_the_set(written: Path, tmp_path: Path) -> None:
    for p in (written / "split").glob("out-*.pst"):
        shutil.copy(p, tmp_path / p.name)
    last = sorted(tmp_path.glob("out-*.pst"))[-1]
    with last.open("r+b") as f:
        f.seek(4)
        f.write(b"\0\0\0\0")  # the header's partial CRC
    code, out, err = cli("check", f"pst:{tmp_path / 'out.pst'}")
    assert code == 4
    assert f"{last}: header dwCRCPartial wrong" in out.splitlines()
    assert out.count(": OK,") == len(list(tmp_path.glob("out-*.pst"))) - 1
    assert "1 of" in err and "Traceback" not in err


def test_json_shape(written: Path) -> None:
    code, data = cli_json("check", f"pst:{written / 'split'}")
    assert code == 0
    assert isinstance(data, dict) and list(data) == ["files"]
    files = data["files"]
    assert len(files) >= 2
    for entry in files:
        assert set(entry) == {"path", "ok", "folders", "items", "bytes", "seconds", "findings"}
        assert entry["ok"] is True and entry["findings"] == []
        assert entry["bytes"] == Path(entry["path"]).stat().st_size
    assert sum(e["items"] for e in files) == 40


@pytest.mark.parametrize("name", ["testPST.pst", "testPST_variousBodyTypes.pst",
                                  "pstsdk_sample1.pst", "aspose_source.pst", "dist-list.pst",
                                  "SampleOstFile.ost", "msgInMsg.pst"])
def test_files_other_writers_made_pass(corpus: Path, name: str) -> None:
    """[MS-PST]'s rules only: Outlook and Aspose leak space and blocks, and count message
    sizes their own way; none of that is a finding for their files."""
    code, out, err = cli("check", f"pst:{corpus / 'pst' / name}")
    assert code == 0, out + err
    assert out.count(": OK,") == 1


def test_damaged_corpus_file_gives_findings_not_a_traceback(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    data = (corpus / "pst" / "testPST.pst").read_bytes()
    for k in range(6):
        cut = bytearray(data[: len(data) * rng.randrange(50, 99) // 100]) if k % 2 else \
            bytearray(data)
        for _ in range(8):
            i = rng.randrange(AMAP_AT, len(cut))
            cut[i] ^= 1 << rng.randrange(8)
        path = tmp_path / f"d{k}.pst"
        path.write_bytes(bytes(cut))
        done = run_pstkit("check", f"pst:{path}")
        # a cut file always has findings; flips may land in free space, which holds nothing
        assert done.returncode == 4 if k % 2 else done.returncode in (0, 4), done.stderr
        assert "Traceback" not in done.stderr
        assert all(line.startswith(f"{path}: ") for line in done.stdout.splitlines())


@pytest.mark.parametrize(("content", "says"), [
    (b"not a pst at all\n", "not a PST file"),
    (b"!BDN\0\0\0\0SM\x0e\0" + bytes(600), "an ANSI (Outlook 97-2002) PST"),
])
def test_not_a_unicode_pst_is_a_one_line_usage_error(tmp_path: Path, content: bytes,
                                                     says: str) -> None:
    path = tmp_path / "x.pst"
    path.write_bytes(content)
    done = run_pstkit("check", f"pst:{path}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"pstkit: error: {path}: {says}" +
                                                done.stderr.strip().split(says, 1)[1]]
    assert says in done.stderr


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = cli("check", f"pst:{tmp_path / 'none.pst'}")
    assert code == 2 and out == ""
    assert "no such file" in err and len(err.strip().splitlines()) == 1


def test_a_store_is_still_checked_as_a_store(written: Path) -> None:
    code, out, _err = cli("check", str(written / "store"))
    assert code == 0
    assert "40 files" in out
