"""An mbox source whose mail program keeps its state inside the file: Thunderbird rewrites
X-Mozilla-Status in place when a message is read, so an id that digests the whole message
changed, and each export after reading mail stored the read messages again. Ids leave the
state fields out; a store made with ids of the earlier kind re-matches its messages by
their SHA-256 instead of storing them twice."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from tests.helpers import run_pstkit


def _mbox(path: Path, statuses: list[bytes], ids: list[int] | None = None) -> list[bytes]:
    """Thunderbird's layout, message `ids[k]` with state `statuses[k]`; the messages'
    bytes as a reader gets them."""
    raws = [(b"X-Mozilla-Status: " + s + b"\nX-Mozilla-Status2: 00000000\n"
             b"X-Mozilla-Keys:" + b" " * 40 + b"\n"
             b"Message-ID: <tb%d@test.example>\nSubject: tb %d\nFrom: a@test.example\n\n"
             b"body %d\nStatus: RO (a body line, not a header)\n" % (i, i, i))
            for i, s in zip(ids or range(len(statuses)), statuses, strict=True)]  # fmt: skip
    path.write_bytes(b"".join(b"From - Mon Jan  1 10:00:00 2024\n" + r + b"\n" for r in raws))
    return raws


def _export(src: Path, store: Path) -> dict[str, int]:
    done = run_pstkit("--json", "--quiet", "export", f"mbox:{src}", str(store))
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, int] = json.loads(done.stdout)["summary"]
    return summary


def _stored(store: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(store / "catalog.sqlite") as db:
        return sorted(db.execute("SELECT sha256, source_epoch FROM messages").fetchall())


def test_mail_read_in_thunderbird_is_not_stored_again(tmp_path: Path) -> None:
    src, store = tmp_path / "Inbox", tmp_path / "store"
    first = _mbox(src, [b"0000", b"0000", b"0000", b"0000"])
    assert _export(src, store)["done"] == 4
    # read, answered and flagged in place, the Keys padding used: same length, new bytes
    before = src.read_bytes()
    _mbox(src, [b"0001", b"0003", b"0000", b"0005"])
    src.write_bytes(src.read_bytes().replace(b"X-Mozilla-Keys:" + b" " * 40,
                                             b"X-Mozilla-Keys: $label1" + b" " * 32, 1))
    assert src.read_bytes() != before and len(src.read_bytes()) == len(before)
    summary = _export(src, store)
    assert (summary["done"], summary["already"]) == (0, 4), summary
    # the store keeps the bytes it stored first: nothing was changed silently
    assert [h for h, _ in _stored(store)] == sorted(hashlib.sha256(r).hexdigest() for r in first)
    # two copies that differ in their state only are two messages of the source
    _mbox(src, [b"0000", b"0000", b"0000", b"0000", b"0001"], [0, 1, 2, 3, 0])
    assert _export(src, store)["done"] == 1


def test_a_store_with_ids_of_the_earlier_kind_matches_by_digest(tmp_path: Path) -> None:
    src, store = tmp_path / "Inbox", tmp_path / "store"
    raws = _mbox(src, [b"0000", b"0001", b"0000"])
    assert _export(src, store)["done"] == 3
    # what an earlier pstkit recorded: epoch "", the digest of the whole message
    with sqlite3.connect(store / "catalog.sqlite") as db:
        db.execute("UPDATE messages SET source_epoch='', "
                   "source_id=substr(sha256, 1, 32) || '.1'")  # fmt: skip
    summary = _export(src, store)
    assert (summary["done"], summary["already"]) == (0, 3), summary
    assert _stored(store) == sorted((hashlib.sha256(r).hexdigest(), "2") for r in raws)
    assert _export(src, store)["done"] == 0
