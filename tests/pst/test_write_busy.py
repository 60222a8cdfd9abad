"""Two imports into one PST at once (two stores into one file, as a batch with two rows
of the same target runs them): the second is refused in one line before it writes
anything, and one that read the file before the other replaced it is refused too, so
neither throws away what the other wrote while its ledger says delivered."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pstkit.converters.pst.write.sink import PstSink
from pstkit.errors import TargetWriteError
from pstkit.location import Location
from pstkit.model import Delivered, Role, StoredMessage
from pstkit.options import ConnectOptions
from tests.helpers import make_message

from .test_write_append import _clean, _message_ids, _sha

INBOX = ("Inbox",)


def _sink(out: Path) -> PstSink:
    return PstSink(Location("pst", str(out)), ConnectOptions())


def _put(sink: PstSink, i: int) -> None:
    sink.ensure_folder(INBOX, Role.INBOX)
    done = sink.put_batch(INBOX, [(StoredMessage(
        i, INBOX, "", 0, frozenset(), frozenset(), datetime(2024, 5, 1, tzinfo=UTC),
        f"<m{i}@test.example>", "", str(i), f"k{i}"), make_message(i))])
    assert len(done) == 1 and isinstance(done[0], Delivered), done


def test_a_second_import_into_the_same_pst_is_refused_while_one_writes(
        tmp_path: Path) -> None:
    out = tmp_path / "out.pst"
    first = _sink(out)
    _put(first, 1)  # writing: its work file is open
    second = _sink(out)
    with pytest.raises(TargetWriteError, match="another pstkit run is writing"):
        _put(second, 2)
    second.close()  # refused: puts nothing in place
    assert not out.exists()
    first.close()
    _clean(out)
    assert _message_ids(out) == Counter({"<m1@test.example>": 1})
    # one that read the file before another run replaced it would write its stale copy
    # over the other's (the other's items gone, its ledger saying delivered)
    stale, other = _sink(out), _sink(out)
    _put(other, 3)
    other.close()
    before = _sha(out)
    with pytest.raises(TargetWriteError, match="changed since this run read it"):
        _put(stale, 4)
    stale.close()
    assert _sha(out) == before and not list(tmp_path.glob("*.pstkit-tmp"))
    assert _message_ids(out) == Counter({"<m1@test.example>": 1, "<m3@test.example>": 1})
    again = _sink(out)  # the lock is free again: a later run appends
    _put(again, 4)
    again.close()
    assert _message_ids(out) == Counter(f"<m{i}@test.example>" for i in (1, 3, 4))
