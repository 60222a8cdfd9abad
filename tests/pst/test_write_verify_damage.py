"""`verify STORE pst:OUT.pst` on a PST damaged after it was written: it never says all is
matching, and never stops with an internal error (exit 70); a clear one-line error naming
the file (exit 3, as for a file it cannot open at all) is the answer."""

from __future__ import annotations

from pathlib import Path

from pstkit.converters.pst.btree import UNICODE, scan_leaves
from tests.helpers import cli, make_message, write_maildir


def _written(tmp_path: Path) -> tuple[Path, Path]:
    write_maildir(tmp_path / "md", {"": [(make_message(i), "S") for i in range(1, 6)],
                                    ".Sent": [(make_message(9), "S")]})  # fmt: skip
    store, pst = tmp_path / "store", tmp_path / "out.pst"
    assert cli("--quiet", "export", f"maildir:{tmp_path / 'md'}", str(store))[0] == 0
    code, _out, err = cli("--quiet", "import", str(store), f"pst:{pst}")
    assert code == 0, err
    assert cli("--quiet", "verify", str(store), f"pst:{pst}")[0] == 0
    return store, pst


def _block_holding(data: bytes, needle: bytes) -> tuple[int, int]:
    """(file offset, size) of the data block that holds `needle`."""
    at = data.index(needle)
    blocks = scan_leaves(lambda ib, n: data[ib : ib + n], UNICODE).blocks.values()
    return next((v[0], v[1]) for v in blocks if v[0] <= at < v[0] + v[1])


def test_a_block_whose_checksum_fails_is_a_clear_error(tmp_path: Path) -> None:
    store, pst = _written(tmp_path)
    data = bytearray(pst.read_bytes())
    ib, cb = _block_holding(bytes(data), "Body 3".encode("utf-16-le"))
    data[ib + cb // 2] ^= 0x01  # the block's CRC in its trailer no longer fits
    pst.write_bytes(bytes(data))
    code, out, err = cli("--quiet", "verify", str(store), f"pst:{pst}")
    assert code == 3, out + err
    assert "internal error" not in err and "checksum mismatch" in err and str(pst) in err


def test_a_cut_file_is_not_all_matching(tmp_path: Path) -> None:
    # Cut at 90 %, all items are still readable (blocks come first in the file), but the
    # header's end of file is past the end: Outlook does not open it, `check` finds it.
    store, pst = _written(tmp_path)
    size = pst.stat().st_size
    with pst.open("r+b") as f:
        f.truncate(size * 9 // 10)
    code, out, err = cli("--quiet", "verify", str(store), f"pst:{pst}")
    assert code == 3, out + err
    assert "cut short" in err and f"cannot read target {pst}" in err  # not "write": verify reads
    assert "matching" not in out
