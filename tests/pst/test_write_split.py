"""`--max-size` splits a PST target into complete parts, each under the size; the parts
together hold every item once (verify matches them all); `--purview-csv` writes Microsoft's
mapping file and the run prints a `New-MailboxImportRequest` line per part; items the PST
import service would skip are named before anything is written."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from pstkit.cli.env import Env
from pstkit.cli.pstfiles import warn_large
from pstkit.converters.pst.source import PstSource
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.purview import (
    HEADER,
    MAX_ROWS,
    merge_rows,
    parse,
    parse_size,
    render,
    row,
)
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Flag, Role, StoredMessage
from pstkit.options import ConnectOptions, FetchFilter
from pstkit.store import Store
from tests.helpers import as_killed, make_message, run_pstkit, write_maildir

LIMIT = 3_000_000


def _store(tmp_path: Path, n: int = 60, seed: int = 7) -> tuple[Path, Counter[str]]:
    rng = random.Random(seed)
    inbox = [(make_message(i, size=rng.randrange(20_000, 160_000)), "S") for i in range(n)]
    folders = {"": inbox[: n // 2], ".Projects": inbox[n // 2:], ".Projects.Old": []}
    write_maildir(tmp_path / "md", folders)
    store = tmp_path / "store"
    done = run_pstkit("--quiet", "export", f"maildir:{tmp_path / 'md'}", str(store))
    assert done.returncode == 0, done.stderr
    return store, Counter(f"<m{i}@test.example>" for i in range(n))


def _message_ids(pst: Path) -> Counter[str]:
    src = PstSource(Location("pst", str(pst)), ConnectOptions())
    try:
        got: Counter[str] = Counter()
        for folder in src.folders():
            for r in src.fetch(folder, None, FetchFilter(), set()):
                head = BytesParser(policy=default).parsebytes(r.raw, headersonly=True)
                got[str(head["Message-ID"])] += 1
        return got
    finally:
        src.close()


def test_parts_stay_under_the_size_and_hold_every_item_once(tmp_path: Path) -> None:
    store, want = _store(tmp_path)
    out = tmp_path / "out.pst"
    done = run_pstkit("import", str(store), f"pst:{out}", "--max-size", "3MB",
                      "--mailbox", "ann@contoso.com", "--purview-csv", str(tmp_path / "map.csv"))
    assert done.returncode == 0, done.stderr
    parts = sorted(tmp_path.glob("out-*.pst"))
    assert len(parts) >= 3 and not out.exists()
    assert [p.name for p in parts] == [f"out-{i:03d}.pst" for i in range(1, len(parts) + 1)]
    got: Counter[str] = Counter()
    for p in parts:
        assert p.stat().st_size <= LIMIT, p
        with p.open("rb") as f:
            assert check(f).findings == [], p
        got += _message_ids(p)
    assert got == want
    assert not list(tmp_path.glob("*.pstkit-tmp"))
    # the mapping file, exactly Microsoft's header, one row per part into the same folders
    lines = (tmp_path / "map.csv").read_text().splitlines()
    assert lines[0] == HEADER
    assert lines[1:] == [f"Exchange,,{p.name},ann@contoso.com,FALSE,/,,,," for p in parts]
    requests = [x for x in done.stdout.splitlines() if "New-MailboxImportRequest" in x]
    assert len(requests) == len(parts)
    assert "-Mailbox 'ann@contoso.com' -FilePath '\\\\SERVER\\SHARE\\out-001.pst'" in requests[0]
    # verify reads the parts as one target
    ver = run_pstkit("--json", "verify", str(store), f"pst:{out}")
    assert ver.returncode == 0, ver.stdout + ver.stderr
    totals = json.loads(ver.stdout)["totals"]
    assert (totals["matching"], totals["missing"], totals["extra"]) == (sum(want.values()), 0, 0)
    # the parts exist: a second write appends nothing, no part changes or is added
    sizes = [p.stat().st_size for p in parts]
    again = run_pstkit("import", str(store), f"pst:{out}", "--max-size", "3MB")
    assert again.returncode == 0, again.stderr
    assert sorted(tmp_path.glob("out-*.pst")) == parts
    assert [p.stat().st_size for p in parts] == sizes


def test_without_max_size_one_file_and_plain_ids(tmp_path: Path) -> None:
    store, want = _store(tmp_path, n=12)
    out = tmp_path / "one.pst"
    done = run_pstkit("import", str(store), f"pst:{out}")
    assert done.returncode == 0, done.stderr
    assert _message_ids(out) == want and not list(tmp_path.glob("one-*.pst"))
    assert "New-MailboxImportRequest" not in done.stdout  # no mailbox given
    assert f"wrote {out}" in done.stdout


def test_purview_csv_needs_a_mailbox_and_a_real_mapping_file(tmp_path: Path) -> None:
    store, _want = _store(tmp_path, n=4)
    out = tmp_path / "o.pst"
    done = run_pstkit("import", str(store), f"pst:{out}", "--purview-csv", str(tmp_path / "m.csv"))
    assert done.returncode == 2 and "--purview-csv needs --mailbox" in done.stderr
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("Name,Mailbox\nx.pst,a@b\n")
    done = run_pstkit("import", str(store), f"pst:{out}", "--mailbox", "a@b.example",
                      "--purview-csv", str(foreign))
    assert done.returncode == 2 and "not a PST import mapping file" in done.stderr
    assert not out.exists() and not list(tmp_path.glob("o*.pstkit-tmp"))
    assert foreign.read_text() == "Name,Mailbox\nx.pst,a@b\n"


def test_one_mapping_file_collects_several_mailboxes(tmp_path: Path) -> None:
    store, _want = _store(tmp_path, n=4)
    csv_file = tmp_path / "map.csv"
    for user in ("ann", "bob"):
        done = run_pstkit("import", str(store), f"pst:{tmp_path / user}.pst",
                          "--mailbox", f"{user}@contoso.com", "--purview-csv", str(csv_file))
        assert done.returncode == 0, done.stderr
    assert csv_file.read_text().splitlines()[1:] == [
        "Exchange,,ann.pst,ann@contoso.com,FALSE,/,,,,",
        "Exchange,,bob.pst,bob@contoso.com,FALSE,/,,,,"]
    # nothing beside the mapping file but what the admin uploads (no lock or work file)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "ann.pst", "bob.pst", "map.csv"]


def test_large_items_are_named_before_writing(tmp_path: Path) -> None:
    """The PST sink's limit is Microsoft's 150 MB; a store of such items is too big for a
    unit test, so the same sink is given a small limit (its value, not its code path)."""
    store_dir, _want = _store(tmp_path, n=6, seed=3)
    sink = PstSink(Location("pst", str(tmp_path / "x.pst")), ConnectOptions())
    threshold = 100_000
    sink.item_limit = (threshold, "too big for the service")
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdout=out, stderr=err)
    with Store.open(store_dir) as st:
        big = [r.msg for r in st.catalog.messages() if r.msg.size > threshold]
        warn_large(env, st, sink)
    sink.close()
    lines = err.getvalue().splitlines()
    assert big and len(lines) == len(big) and out.getvalue() == ""
    for m, line in zip(big, lines, strict=True):
        assert repr(m.subject) in line and "too big for the service" in line


@pytest.mark.parametrize(("text", "want"), [
    ("20GB", 20_000_000_000), ("500MB", 500_000_000), ("1.5G", 1_500_000_000),
    ("2GiB", 2 << 30), ("1048576", 1_048_576), (" 10 kb ", 10_000), ("3mib", 3 << 20)])
def test_sizes(text: str, want: int) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "GB", "-1GB", "20 GB B", "1e9", "20XB"])
def test_not_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_mapping_rows_merge_and_split_at_500() -> None:
    old = [row("a.pst", "a@x"), row("b.pst", "b@x")]
    merged = merge_rows(old, [row("b.pst", "b2@x"), row("c.pst", "c@x")])
    assert [r[2:4] for r in merged] == [["a.pst", "a@x"], ["b.pst", "b2@x"], ["c.pst", "c@x"]]
    many = [row(f"p{i}.pst", "m@x") for i in range(MAX_ROWS * 2 + 1)]
    files = render(many)
    assert len(files) == 3
    assert [len(parse(f)) for f in files] == [MAX_ROWS, MAX_ROWS, 1]
    assert all(f.startswith(HEADER + "\r\n") for f in files)
    assert [r for f in files for r in parse(f)] == many


def test_a_killed_split_write_leaves_no_part_and_the_rerun_cleans_up(tmp_path: Path) -> None:
    """Parts grow under work names until the run ends: a run that dies after three parts
    leaves no `out-NNN.pst`; the next run (here with fewer items: fewer parts) renames its
    own and removes the dead run's extra work files."""
    def msg(i: int) -> StoredMessage:
        return StoredMessage(i, ("Inbox",), "", 0, frozenset({Flag.SEEN}), frozenset(),
                             datetime(2024, 5, 1, tzinfo=UTC), f"<m{i}@x>", "", str(i), "e")

    out = tmp_path / "out.pst"
    opts = ConnectOptions(extra={"max-size": "2MB"})
    dead = PstSink(Location("pst", str(out)), opts)
    dead.ensure_folder(("Inbox",), Role.INBOX)
    for i in range(12):
        dead.put_batch(("Inbox",), [(msg(i), make_message(i, size=150_000))])
    dead_parts = len(list(tmp_path.glob("out-*.pst.pstkit-tmp")))  # no close(): killed
    as_killed(dead)
    assert dead_parts >= 3
    assert not list(tmp_path.glob("out-*.pst"))
    rerun = PstSink(Location("pst", str(out)), opts)
    rerun.ensure_folder(("Inbox",), Role.INBOX)
    for i in range(5):
        rerun.put_batch(("Inbox",), [(msg(i), make_message(i, size=150_000))])
    rerun.close()
    parts = sorted(tmp_path.glob("out-*.pst"))
    assert 2 <= len(parts) < dead_parts and not list(tmp_path.glob("*.pstkit-tmp"))
    assert sum(_message_ids(p).total() for p in parts) == 5


def test_max_size_past_the_writers_limit_is_capped_and_said(tmp_path: Path) -> None:
    store, want = _store(tmp_path, n=4)
    done = run_pstkit("import", str(store), f"pst:{tmp_path / 'big.pst'}", "--max-size", "60GB")
    assert done.returncode == 0, done.stderr
    assert "PST parts are kept at 53.7 GB, Outlook's default limit" in done.stderr
    assert _message_ids(tmp_path / "big-001.pst") == want


def test_a_batch_writes_a_pst_set_per_mailbox_and_one_mapping_file(tmp_path: Path) -> None:
    stores = {}
    for user, seed in (("ann", 1), ("bob", 2)):
        (tmp_path / user).mkdir()
        stores[user] = _store(tmp_path / user, n=10, seed=seed)
    out = tmp_path / "out"
    rows = ["EmailAddress,Source,Target"] + [
        f"{u}@contoso.com,{store},pst:{out / u}.pst" for u, (store, _w) in stores.items()]
    (tmp_path / "out").mkdir()
    (tmp_path / "batch.csv").write_text("\n".join(rows) + "\n")
    done = run_pstkit("import", "--batch", str(tmp_path / "batch.csv"), "--max-size", "1MB",
                      "--purview-csv", str(tmp_path / "out" / "mapping.csv"), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (tmp_path / "out" / "mapping.csv").read_text().splitlines()
    assert lines[0] == HEADER
    for user, (_store_dir, want) in stores.items():
        parts = sorted((tmp_path / "out").glob(f"{user}-*.pst"))
        assert len(parts) >= 2
        assert sum((_message_ids(p) for p in parts), Counter()) == want
        assert sorted(x for x in lines[1:] if f",{user}@contoso.com," in x) == sorted(
            f"Exchange,,{p.name},{user}@contoso.com,FALSE,/,,,," for p in parts)
    assert len(lines) == 1 + len(list((tmp_path / "out").glob("*.pst")))
    assert {p.suffix for p in (tmp_path / "out").iterdir()} == {".pst", ".csv"}
