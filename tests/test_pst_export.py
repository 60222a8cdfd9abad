"""End to end: every corpus PST/OST exported into a store with pstkit.pipeline.export."""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pypff")

from converters.pst import PstSource
from pstkit.location import Location
from pstkit.model import ItemKind, Role
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store
from tests.helpers import cli
from tests.test_pst_source import EXPECTED, export_all, fetched


def source(corpus: Path, name: str) -> PstSource:
    return PstSource(Location("pst", str(corpus / "pst" / name)), ConnectOptions())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_export_stores_or_reports_every_item(corpus: Path, tmp_path: Path, name: str) -> None:
    store = Store.create(tmp_path / "store")
    src = source(corpus, name)
    result = export(src, store)
    src.close()
    stored = Counter(r.msg.folder for r in store.rows())
    skipped = [p for p in result.problems if not p.reason.startswith("stored, but ")]
    reported = Counter(p.folder for p in skipped)
    assert dict(stored + reported) == EXPECTED[name]
    # Every "stored, but …" note belongs to a stored item and is in its header too.
    noted = {p.item for p in result.problems} - {p.item for p in skipped}
    assert noted <= {r.msg.source_id for r in store.rows()}
    # The store holds exactly the bytes the source built, and the kinds it gave.
    results = export_all(corpus / "pst" / name).values()
    built = {hashlib.sha256(r.raw).hexdigest(): r.meta for rs in results for r in fetched(rs)}
    for row in store.rows():
        assert hashlib.sha256(store.read(row)).hexdigest() == row.msg.sha256
        assert row.msg.sha256 in built
        assert row.msg.kind is built[row.msg.sha256].kind
    problems = store.catalog.problems(result.run_id)
    assert len(problems) == len(result.problems)
    store.close()


def test_export_again_adds_nothing(corpus: Path, tmp_path: Path) -> None:
    store = Store.create(tmp_path / "store")
    src = source(corpus, "aspose_source.pst")
    export(src, store)
    first = sorted(r.msg.sha256 for r in store.rows())
    again = export(src, store)
    src.close()
    assert sorted(r.msg.sha256 for r in store.rows()) == first
    assert again.stats["stored"] == 0
    kinds = Counter(r.msg.kind for r in store.rows())
    assert kinds == {ItemKind.MAIL: 14, ItemKind.EVENT: 1, ItemKind.CONTACT: 1}
    roles = {f.info.path: f.info.role for f in store.folders()}
    assert roles[("Inbox",)] is Role.INBOX and roles[("Sent Items",)] is Role.SENT
    store.close()


def with_password(src: Path, dst: Path, password_crc: int) -> None:
    """A copy of `src` whose message store says PidTagPstPassword = `password_crc`, as
    Outlook writes it when a password is set (the corpus has no such file): the inline value
    of the 0x67FF record in the store's property context, re-encoded, block CRC fixed."""
    from converters.pst_btree import Ndb  # noqa: PLC0415

    data = bytearray(src.read_bytes())
    with src.open("rb") as f:
        ndb = Ndb.open(f)
        ib, cb = ndb._lookup(ndb.node(0x21)[0], False)
        table, lay = ndb.decode, ndb.lay
    assert table is not None  # the corpus PSTs are permute-encoded
    encode = bytes(table.index(i) for i in range(256))
    block = bytearray(bytes(data[ib : ib + cb]).translate(table))
    record = b"\xff\x67\x03\x00\x00\x00\x00\x00"  # 0x67FF, PT_LONG, value 0
    at = block.find(record)
    assert at >= 0 and block.find(record, at + 1) < 0
    block[at + 4 : at + 8] = password_crc.to_bytes(4, "little")
    data[ib : ib + cb] = bytes(block).translate(encode)
    total = (cb + lay.trailer + 63) // 64 * 64
    crc = zlib.crc32(bytes(data[ib : ib + cb]), 0xFFFFFFFF) ^ 0xFFFFFFFF
    data[ib + total - lay.trailer + lay.crc_at : ib + total - lay.trailer + lay.crc_at + 4] = (
        crc.to_bytes(4, "little"))
    dst.write_bytes(bytes(data))


def test_password_protected_pst_is_read_with_a_notice(corpus: Path, tmp_path: Path) -> None:
    """A password only makes Outlook ask for it: the data is not encrypted by it. The export
    says so on stderr (one line, no password needed, none asked for) and reads every item."""
    path = tmp_path / "protected.pst"
    with_password(corpus / "pst" / "testPST.pst", path, zlib.crc32(b"secret"))
    src = PstSource(Location("pst", str(path)), ConnectOptions())
    assert src.password_protected
    src.close()
    code, _out, err = cli("export", str(path), str(tmp_path / "store"))
    assert code == 0, err
    assert [line for line in err.splitlines() if "password-protected" in line] == [
        f"pstkit: {path} is password-protected; libpff reads it without the password"]
    store = Store.open(tmp_path / "store")
    assert Counter(r.msg.folder for r in store.rows()) == Counter(
        r.msg.folder for r in _stored(corpus, tmp_path))
    store.close()


def _stored(corpus: Path, tmp_path: Path) -> list[Any]:
    store = Store.create(tmp_path / "plain")
    src = source(corpus, "testPST.pst")
    export(src, store)
    src.close()
    rows = list(store.rows())
    store.close()
    assert len(rows) > 5
    return rows
