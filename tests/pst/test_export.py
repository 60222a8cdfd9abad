"""End to end: every corpus PST/OST exported into a store with pstkit.pipeline.export."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pypff")

from pstkit.converters.pst.source import PstSource
from pstkit.location import Location
from pstkit.model import ItemKind, Role
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store
from tests.helpers import cli
from tests.pst.test_source import EXPECTED, export_all, fetched


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


def patch_node(src: Path, dst: Path, nid: int, old: bytes, new: bytes) -> None:
    """A copy of `src` with `old` replaced by `new` (same length) in node `nid`'s first data
    block: decoded, patched, re-encoded, its CRC fixed. The corpus lacks some kinds of file
    (password-protected, posts); this makes them from real ones."""
    from pstkit.converters.pst.btree import Ndb  # noqa: PLC0415

    assert len(old) == len(new)
    data = bytearray(src.read_bytes())
    with src.open("rb") as f:
        ndb = Ndb.open(f)
        ib, cb = ndb._lookup(ndb.node(nid)[0], False)
        table, lay = ndb.decode, ndb.lay
    assert table is not None  # the corpus PSTs are permute-encoded
    encode = bytes(table.index(i) for i in range(256))
    block = bytes(data[ib : ib + cb]).translate(table)
    assert block.count(old) == 1
    data[ib : ib + cb] = block.replace(old, new).translate(encode)
    total = (cb + lay.trailer + 63) // 64 * 64
    crc = zlib.crc32(bytes(data[ib : ib + cb]), 0xFFFFFFFF) ^ 0xFFFFFFFF
    at = ib + total - lay.trailer + lay.crc_at
    data[at : at + 4] = crc.to_bytes(4, "little")
    dst.write_bytes(bytes(data))


def with_password(src: Path, dst: Path, password_crc: int) -> None:
    """PidTagPstPassword (0x67FF, PT_LONG, inline in the store's property context) set, as
    Outlook writes it when a password is set."""
    patch_node(src, dst, 0x21, b"\xff\x67\x03\x00\x00\x00\x00\x00",
               b"\xff\x67\x03\x00" + password_crc.to_bytes(4, "little"))


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


def test_a_post_is_stored_as_mail(corpus: Path, tmp_path: Path) -> None:
    """IPM.Post (a post in a public/discussion folder; none in the corpus, so one item of
    testPST.pst is made one): stored as a mail message with its subject, sender and body,
    like the IPM.Note it was."""
    path = tmp_path / "post.pst"
    nid = 0x200024
    patch_node(corpus / "pst" / "testPST.pst", path, nid, "IPM.Note".encode("utf-16-le"),
               "IPM.Post".encode("utf-16-le"))
    before = {r.meta.source_id: r for rs in export_all(corpus / "pst" / "testPST.pst").values()
              for r in fetched(rs)}[str(nid)]
    after = {r.meta.source_id: r for rs in export_all(path).values()
             for r in fetched(rs)}[str(nid)]
    assert after.meta.kind is ItemKind.MAIL and after.meta.subject == before.meta.subject
    assert after.raw == before.raw  # the class is not in the MIME message
    if shutil.which("readpst"):  # one of readpst's misses: it writes no file for a post
        counts = []
        for i, pst in enumerate((corpus / "pst" / "testPST.pst", path)):
            out = tmp_path / f"readpst{i}"
            out.mkdir()
            subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(out), str(pst)],
                           check=True, capture_output=True)
            counts.append(sum(1 for f in out.rglob("*") if f.is_file()))
        assert counts[1] == counts[0] - 1
