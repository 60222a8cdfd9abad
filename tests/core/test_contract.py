"""One contract suite for every registered converter that needs no server.

For each scheme with both a sink and a source: put messages through the sink,
read them back through the source, and get the same bytes, flags and folders (a PST
keeps MAPI properties, not bytes: there the same messages and flags).
Server-backed converters (imap, ews, graph) run their contract tests against
their test servers in their own modules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path

import pytest

from pstkit.converters import REGISTRY, open_sink, open_source
from pstkit.location import Location
from pstkit.model import Delivered, Flag, StoredMessage
from pstkit.options import ConnectOptions, FetchFilter
from tests.helpers import make_message

LOCAL = [
    s for s, e in REGISTRY.items()
    if e.source and e.sink and not e.requires and not s.startswith(("imap", "pop"))
]  # fmt: skip
FOLDERS = [("INBOX",), ("Sent Items",), ("Projekte", "Überweisungen"), ("a.b/c:d",)]


def _messages() -> list[tuple[StoredMessage, bytes]]:
    out = []
    for i, folder in enumerate(FOLDERS * 2):
        raw = make_message(i)
        flags = frozenset({Flag.SEEN, Flag.FLAGGED} if i % 2 else {Flag.ANSWERED})
        msg = StoredMessage(
            id=i + 1, folder=folder, sha256="", size=len(raw), flags=flags, keywords=frozenset(),
            received=datetime(2024, 3, 4, 10, i, tzinfo=UTC), message_id=f"<m{i}@test.example>",
            subject="", source_id=str(i), source_epoch="", store_id="contract",
        )  # fmt: skip
        out.append((msg, raw))
    return out


VARIANTS = [(s, {}) for s in LOCAL] + [("maildir", {"layout": "fs"}), ("maildir", {"colon": "!"})]


@pytest.mark.parametrize(("scheme", "extra"), VARIANTS)
def test_sink_then_source_gives_the_same_bytes(
    scheme: str, extra: dict[str, str], tmp_path: Path
) -> None:
    loc = Location(scheme, str(tmp_path / "target"))
    sink = open_sink(loc, ConnectOptions(extra=extra))
    messages = _messages()
    for folder in FOLDERS:
        sink.ensure_folder(folder, None)
        batch = [(m, r) for m, r in messages if m.folder == folder]
        results = sink.put_batch(folder, batch)
        assert all(isinstance(r, Delivered) for r in results)
        # The sink can find what it delivered (the duplicate check relies on it).
        assert sink.find_duplicates(batch[0][0], batch[0][1], folder)
        assert len(list(sink.inventory(folder))) == len(batch)
    sink.close()
    source = open_source(loc, ConnectOptions())
    got = {}
    for info in source.folders():
        for item in source.fetch(info, None, FetchFilter(), set()):
            got.setdefault(info.path, []).append(item.raw)  # type: ignore[union-attr]
            if scheme in ("maildir", "pst"):
                expect = next(m for m, r in messages if _mid(r) == _mid(item.raw))  # type: ignore[union-attr]
                assert item.meta.flags == expect.flags
    source.close()
    for folder in FOLDERS:
        want = sorted(r for m, r in messages if m.folder == folder)
        if scheme == "pst":  # a PST keeps MAPI properties, not the bytes: the same messages
            assert sorted(map(_mid, got[folder])) == sorted(map(_mid, want))
            continue  # (field by field: tests/pst/test_write_readers.py, test_write_roundtrip.py)
        assert sorted(got[folder]) == want


def _mid(raw: bytes) -> str:
    return str(message_from_bytes(raw).get("Message-ID", ""))
