"""Round trip: corpus PST -> store -> PST (pstkit's writer) -> store: the same folders and,
per mail item, the same subject, flags, keywords, received date, Message-ID and decoded
content (bodies, attachment bytes); per contact, list, event, task and note the same
stored bytes (vCard/iCalendar, body, Message-ID, attachments)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.model import FolderPath, ItemKind
from pstkit.store import Store
from tests.helpers import cli

from .write_readers import Seen, from_mime

PSTS = ["testPST.pst", "pstsdk_sample1.pst", "msgInMsg.pst", "attachAndInline.pst",
        "testPST_variousBodyTypes.pst", "pstsdk_submessage.pst", "aspose_source.pst",
        "SampleOstFile.ost", "dist-list.pst", "aspose_SampleContacts.pst"]

Row = tuple[str, tuple[str, ...], tuple[str, ...], str, str, Seen]


def _card_parts(raw: bytes) -> tuple[tuple[str, bytes], ...]:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return tuple((p.get_content_type(), p.get_payload(decode=True) or b"") for p in msg.walk()
                 if p.get_content_type() in ("text/vcard", "text/calendar", "text/plain"))


def catalog(store: Path) -> tuple[dict[FolderPath, list[Row]], list[tuple[object, ...]]]:
    """Mail per folder (in store order), and the other items: their fields and bytes."""
    out: dict[FolderPath, list[Row]] = {}
    other: list[tuple[object, ...]] = []
    with Store.open(store) as st:
        for row in st.rows():
            m = row.msg
            if m.kind != ItemKind.MAIL:
                raw = st.read(row)
                other.append((m.folder, m.kind, m.subject, sorted(f.value for f in m.flags),
                              sorted(m.keywords), m.received, m.message_id, raw,
                              _card_parts(raw)))
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
    assert code == 0, err + out
    code, _o, err = cli("--quiet", "export", str(pst), str(second))
    assert code == 0, err
    after, other_after = catalog(second)
    assert sorted(other_after, key=repr) == sorted(other, key=repr)
    assert {f: len(r) for f, r in after.items()} == {f: len(r) for f, r in before.items()}
    assert after == before
