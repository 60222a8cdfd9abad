"""End to end: every corpus PST/OST exported into a store with pstkit.pipeline.export."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("pypff")

from converters.pst import PstSource
from pstkit.location import Location
from pstkit.model import ItemKind, Role
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store
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
