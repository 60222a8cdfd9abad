"""Appending to a split set: the last part is filled up to the size before a new part is
begun, and the size the set was made with is kept in its parts (pstkit's PartMaxSize named
property on the store), so an append without --max-size makes parts of the same size."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pstkit.converters.pst.write.existing import Existing
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Role, StoredMessage
from pstkit.options import ConnectOptions
from tests.helpers import as_killed, make_message, run_pstkit, write_maildir

from .test_write_append import _clean, _export, _import, _key, _message_ids, _sha

SIZE = 5_000_000  # --max-size 5MB: some 20 messages of 150 KB a part


def _mails(md: Path, n: int) -> None:
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(n)]})


def _check_set(tmp_path: Path, n: int) -> list[Path]:
    parts = sorted(tmp_path.glob("out-*.pst"))
    total: Counter[str] = Counter()
    for p in parts:
        _clean(p)
        total += _message_ids(p)
        assert p.stat().st_size <= SIZE
        e = Existing.open(p)
        try:
            assert e.max_size == SIZE
        finally:
            e.close()
    assert total == Counter(f"<m{i}@test.example>" for i in range(n))
    assert not list(tmp_path.glob("*.pstkit-tmp"))
    return parts


def _written_set(tmp_path: Path, n: int, name: str = "out.pst"
                 ) -> tuple[Path, Path, Path, list[Path]]:  # fmt: skip
    """`n` mails exported into a store and written as a set of SIZE parts named after
    `name`, checked: (store, target, maildir, parts)."""
    store, out, md = tmp_path / "store", tmp_path / name, tmp_path / "md"
    _mails(md, n)
    _export(md, store)
    _import(store, out, "--max-size", "5MB")
    return store, out, md, _check_set(tmp_path, n)


def test_the_last_part_is_filled_and_the_size_remembered(tmp_path: Path) -> None:
    store, out, md, parts = _written_set(tmp_path, 30)
    sums = [_sha(p) for p in parts]
    before = _message_ids(parts[-1])
    assert parts[-1].stat().st_size < SIZE - 2_500_000  # room for a few more
    # a few new items, no --max-size: they go into the last part, no part is added
    _mails(md, 33)
    _export(md, store)
    assert _import(store, out)["done"] == 3
    now = _check_set(tmp_path, 33)
    assert now == parts and [_sha(p) for p in now[:-1]] == sums[:-1]
    assert _message_ids(now[-1]) - before == Counter(f"<m{i}@test.example>" for i in (30, 31, 32))
    # many new items, still no flag: new parts of the remembered size, not one big file
    _mails(md, 80)
    _export(md, store)
    assert _import(store, out)["done"] == 47
    later = _check_set(tmp_path, 80)
    assert len(later) >= len(parts) + 2
    assert [_sha(p) for p in later[: len(parts) - 1]] == sums[:-1]
    again = _import(store, out)  # nothing new: nothing changes
    assert (again["done"], again["already"]) == (0, 80)
    assert sorted(tmp_path.glob("out-*.pst")) == later


def test_a_killed_fill_of_the_only_part_is_recovered(tmp_path: Path) -> None:
    """A run killed while filling part 1 leaves its work file and ledger rows for items
    that never got in place: the next import (without --max-size) fills part 1 again with
    a new record key, and every item is there once."""
    store, out, md = tmp_path / "store", tmp_path / "out.pst", tmp_path / "md"
    _mails(md, 8)
    _export(md, store)
    _import(store, out, "--max-size", "5MB")
    assert [p.name for p in tmp_path.glob("out-*.pst")] == ["out-001.pst"]
    first_key = _key(out)
    sums = _sha(tmp_path / "out-001.pst")
    dead = PstSink(Location("pst", str(out)), ConnectOptions())
    assert dead.max_size == SIZE  # remembered from the part
    dead.ensure_folder(("Inbox",), Role.INBOX)
    dead.put_batch(("Inbox",), [(StoredMessage(
        99, ("Inbox",), "", 0, frozenset(), frozenset(), datetime(2024, 5, 1, tzinfo=UTC),
        "<x@y>", "", "99", "e"), make_message(99))])  # no close: killed
    as_killed(dead)
    assert (tmp_path / "out-001.pst.pstkit-tmp").exists()
    assert _sha(tmp_path / "out-001.pst") == sums  # the part itself untouched
    _mails(md, 10)
    _export(md, store)
    _import(store, out)
    assert _check_set(tmp_path, 10) == [tmp_path / "out-001.pst"]
    second_key = _key(out)
    assert second_key != first_key
    again = _import(store, out)
    assert (again["done"], again["already"]) == (0, 10) and _key(out) == second_key


def test_a_set_with_a_part_missing_is_refused_and_no_part_is_overwritten(
        tmp_path: Path) -> None:
    """A user moved out-002.pst away: the parts were numbered by their place in the
    listing, so the next append wrote its new part over the last one (its items lost, the
    run said nothing) and a run with nothing new said "0 new" with a part gone. Refused in
    one line, every part left as it was; with the part back, the append goes on."""
    store, out, md, parts = _written_set(tmp_path, 50)
    assert len(parts) >= 3
    away = tmp_path / "away.pst"
    parts[1].rename(away)
    sums = {p: _sha(p) for p in parts if p.exists()}
    for n in (50, 53):  # nothing new, then something new
        _mails(md, n)
        _export(md, store)
        done = run_pstkit("--quiet", "import", str(store), f"pst:{out}")
        assert done.returncode == 3, done.stdout + done.stderr
        assert "out-002.pst" in done.stderr and "missing" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 2
        assert {p: _sha(p) for p in sorted(tmp_path.glob("out-*.pst"))} == sums
        assert not list(tmp_path.glob("*.pstkit-tmp"))
    away.rename(parts[1])
    assert _import(store, out)["done"] == 3
    _check_set(tmp_path, 53)


def test_a_set_named_without_pst_suffix_is_found_again(tmp_path: Path) -> None:
    """`pst:out --max-size` writes out-001.pst…: a re-run did not find those parts (it
    looked for `out-001`), wrote the whole set again over them and verify found nothing."""
    store, out, _md, parts = _written_set(tmp_path, 30, "out")
    sums = [_sha(p) for p in parts]
    again = _import(store, out, "--max-size", "5MB")
    assert (again["done"], again["already"]) == (0, 30)
    assert sorted(tmp_path.glob("out-*.pst")) == parts and [_sha(p) for p in parts] == sums
    ver = run_pstkit("--quiet", "verify", str(store), f"pst:{out}")
    assert ver.returncode == 0, ver.stdout + ver.stderr


def test_a_file_named_like_a_part_is_not_taken_for_one(corpus: Path, tmp_path: Path) -> None:
    """ann-2023.pst beside pst:ann.pst is named like part 2023 of a set: a pstkit-written
    one was filled up as part 1 of ann.pst (the new mail landed in ann-001.pst, beside a
    copy of the other file's); refused in one line naming it, as is an Outlook one."""
    store, md = tmp_path / "store", tmp_path / "md"
    _mails(md, 3)
    _export(md, store)
    _import(store, tmp_path / "bob-2023.pst")
    shutil.copy(corpus / "pst" / "pstsdk_sample1.pst", tmp_path / "ann-2023.pst")
    for name in ("bob", "ann"):
        before = _sha(tmp_path / f"{name}-2023.pst")
        done = run_pstkit("--quiet", "import", str(store), f"pst:{tmp_path / name}.pst")
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"{name}-2023.pst" in done.stderr.splitlines()[-2], done.stderr
        assert _sha(tmp_path / f"{name}-2023.pst") == before
    assert sorted(p.name for p in tmp_path.glob("*.pst*")) == ["ann-2023.pst", "bob-2023.pst"]
