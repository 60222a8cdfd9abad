"""Round trip: corpus PST -> store -> PST (pstkit's writer) -> store: the same folders and,
per mail item, the same subject, flags, keywords, received date, Message-ID and decoded
content (bodies, attachment bytes); items the writer cannot write yet (contacts, events)
are reported as problems, never dropped silently."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.model import FolderPath, ItemKind
from pstkit.store import Store
from tests.helpers import cli

from .write_readers import Seen, from_mime

PSTS = ["testPST.pst", "pstsdk_sample1.pst", "msgInMsg.pst", "attachAndInline.pst",
        "testPST_variousBodyTypes.pst", "pstsdk_submessage.pst", "aspose_source.pst",
        "SampleOstFile.ost"]

Row = tuple[str, tuple[str, ...], tuple[str, ...], str, str, Seen]


def catalog(store: Path) -> tuple[dict[FolderPath, list[Row]], int]:
    """Mail per folder (in store order) and how many other items there are."""
    out: dict[FolderPath, list[Row]] = {}
    other = 0
    with Store.open(store) as st:
        for row in st.rows():
            m = row.msg
            if m.kind != ItemKind.MAIL:
                other += 1
                continue
            seen = from_mime(st.read(row))
            seen = replace(seen, attachments=tuple(sorted(("", h) for _n, h in seen.attachments)))
            out.setdefault(m.folder, []).append((
                m.subject, tuple(sorted(f.value for f in m.flags)), tuple(sorted(m.keywords)),
                m.received.isoformat() if m.received else "", m.message_id, seen))
    return out, other


@pytest.mark.parametrize("name", PSTS)
def test_pst_store_pst_store(corpus: Path, tmp_path: Path, name: str) -> None:
    first, second, pst = tmp_path / "s1", tmp_path / "s2", tmp_path / "again.pst"
    code, _o, err = cli("--quiet", "export", str(corpus / "pst" / name), str(first))
    assert code in (0, 1), err
    before, other = catalog(first)
    code, out, err = cli("--quiet", "import", str(first), f"pst:{pst}")
    assert code == (1 if other else 0), err
    assert ("cannot be written to a PST yet" in out) == bool(other)  # reported, not dropped
    code, _o, err = cli("--quiet", "export", str(pst), str(second))
    assert code == 0, err
    after, other_after = catalog(second)
    assert other_after == 0
    assert {f: len(r) for f, r in after.items()} == {f: len(r) for f, r in before.items()}
    assert after == before
