"""`pstkit report` and `ls` state what happened: the numbers of a history of runs,
compared with what the store, the ledger and the targets hold."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, cli_json, kill_when, make_message, write_maildir


def _store_with_two_targets(tmp_path: Path) -> Path:
    """A store of 3 messages imported into maildir:out and maildir:out2 (a name that
    begins with the other's)."""
    md, store = tmp_path / "md", tmp_path / "store"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]})
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    assert cli("import", str(store), f"maildir:{tmp_path / 'out'}")[0] == 0
    assert cli("import", str(store), f"maildir:{tmp_path / 'out2'}")[0] == 0
    return store


@pytest.mark.parametrize("spelling", ["maildir:out", "maildir:./out/", "{tmp}/out/", "out"])
def test_target_is_found_however_it_is_spelled_and_no_other_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    """`--target` is "as written to import": a relative path or a trailing slash names
    the same target, and `maildir:out` is not `maildir:out2` (a substring match mixed
    the other target's runs in, a relative name matched nothing: "not imported yet")."""
    store = _store_with_two_targets(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, data = cli_json("report", str(store), "--target", spelling.format(tmp=tmp_path))
    assert code == 0 and isinstance(data, dict)
    assert data["targets"] == [f"maildir:{tmp_path / 'out'}"]
    assert [r["kind"] for r in data["runs"]] == ["export", "import"]
    assert sum(f["delivered"] for f in data["folders"]) == 3


def _files(root: Path) -> int:
    return sum(len(os.listdir(cur)) for cur in root.rglob("cur")) if root.exists() else 0


def _ledger_rows(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True,
                             timeout=0.05) as db:  # fmt: skip
            return int(db.execute("SELECT COUNT(*) FROM deliveries WHERE how<>'sending'")
                       .fetchone()[0])  # fmt: skip
    except sqlite3.Error:  # the run holds a write lock for a moment
        return 0


def test_a_killed_import_is_interrupted_not_running_after_the_rerun(tmp_path: Path) -> None:
    """kill -9 leaves the run row "running"; the next import holds the store's lock, so
    that run is dead: `ls` and the report showed it as still running for good."""
    md, store, out = tmp_path / "md", tmp_path / "store", tmp_path / "out"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(1200)]})  # 3 batches of 500
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "pstkit", "import", str(store), f"maildir:{out}"], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert kill_when(proc, lambda: _ledger_rows(store) >= 500)
    assert cli("import", str(store), f"maildir:{out}")[0] == 0
    _, listing = cli_json("ls", str(store))
    assert isinstance(listing, dict)
    assert [r["status"] for r in listing["runs"]] == ["ok", "interrupted", "ok"]
    _, data = cli_json("report", str(store))
    assert isinstance(data, dict)
    assert [r["status"] for r in data["runs"]] == ["ok", "interrupted", "ok"]
    assert sum(f["delivered"] for f in data["folders"]) == _files(out) == 1200
    # each import's items as the ledger has them: the killed run's too, none twice
    imports = [r["stats"] for r in data["runs"] if r["kind"] == "import"]
    assert imports[0].get("delivered", 0) >= 500
    assert sum(s.get("delivered", 0) + s.get("duplicate", 0) for s in imports) == 1200


def _folder_counts(store: Path) -> dict[str, tuple[int, int, int]]:
    code, data = cli_json("report", str(store))
    assert code == 0 and isinstance(data, dict)
    return {f["path"]: (f["source"], f["stored"], f["skipped"]) for f in data["folders"]}


def test_source_counts_each_skipped_item_once_and_not_once_stored(tmp_path: Path) -> None:
    """source = stored + skipped, per item: an export re-run skips (and records) the same
    item again, and a later run may store it. Counting problem rows, the report said
    the 5-message folder had offered 7, then 9 with 4 skipped, when all 5 were stored."""
    md, store = tmp_path / "md", tmp_path / "store"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]
                          + [(make_message(10 + i, size=5000), "S") for i in range(2)]})
    for _ in range(2):
        assert cli("export", "--max-size", "3KB", f"maildir:{md}", str(store))[0] == 1
    assert _folder_counts(store) == {"INBOX": (5, 3, 2)}
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    assert _folder_counts(store) == {"INBOX": (5, 5, 0)}


def test_failed_counts_each_item_once_and_only_for_the_target_asked(tmp_path: Path) -> None:
    """A message whose store file is gone fails in every import: twice into A (the
    re-run), once into B. `--target B` said 3 failed in its folder (A's rows too),
    while its problem list held the one of B; without `--target` it said 3 for 1 item."""
    md, store = tmp_path / "md", tmp_path / "store"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]})
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    next((store / "mail" / "cur").iterdir()).unlink()
    for target in ("a", "a", "b"):
        assert cli("import", str(store), f"maildir:{tmp_path / target}")[0] == 1
    for args in ((), ("--target", f"maildir:{tmp_path / 'b'}")):
        code, data = cli_json("report", str(store), *args)
        assert code == 0 and isinstance(data, dict)
        assert [(f["delivered"], f["failed"]) for f in data["folders"]] == [(2, 1)]


def test_two_sources_in_one_folder_skipped_items_are_told_apart(tmp_path: Path) -> None:
    """Two mailboxes into one store (`--add-source`): their INBOXes are one store folder,
    and their items may have the same source ids (Maildir names, IMAP UIDs). An item
    of A skipped for its size is not stored because B's item of that id is; a folder
    with nothing stored but 2 skipped, and an empty one, are shown as such."""
    a, b, store = tmp_path / "a", tmp_path / "b", tmp_path / "store"
    write_maildir(a, {"": [(make_message(i, size=5000), "S") for i in range(2)],
                      ".Größe": [(make_message(10 + i, size=5000), "S") for i in range(2)],
                      ".Leer": []})  # fmt: skip
    write_maildir(b, {"": [(make_message(20 + i), "S") for i in range(3)]})
    assert cli("export", "--max-size", "3KB", f"maildir:{a}", str(store))[0] == 1
    assert cli("export", "--add-source", f"maildir:{b}", str(store))[0] == 0
    assert _folder_counts(store) == {"INBOX": (5, 3, 2), "Größe": (2, 0, 2), "Leer": (0, 0, 0)}


def test_a_run_killed_yesterday_took_what_its_log_shows_not_a_day(tmp_path: Path) -> None:
    """A dead run is found by the next run, maybe days later; its end was taken as that
    moment, so the report said the killed export took a day. Its log is written as it
    goes: the log's last write is when it stopped (here 3 s after its start)."""
    md, store = tmp_path / "md", tmp_path / "store"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]})
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    yesterday = time.time() - 86400
    with sqlite3.connect(store / "catalog.sqlite") as db:  # what kill -9 leaves: "running"
        db.execute("INSERT INTO runs(kind, peer, started) VALUES('export', ?, ?)",
                   (f"maildir:{md}", datetime.fromtimestamp(yesterday, UTC).isoformat()))
    log = store / "logs" / "run-2.log"
    log.write_text("started\n", encoding="utf-8")
    os.utime(log, (yesterday + 3, yesterday + 3))
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    assert cli("report", str(store), "--csv", str(tmp_path / "r.csv"))[0] == 0
    with open(tmp_path / "r.csv", encoding="utf-8") as f:
        (dead,) = [r for r in csv.DictReader(f) if r["status"] == "interrupted"]
    assert float(dead["seconds"]) == pytest.approx(3, abs=1)


def test_the_newest_verify_is_the_newest_that_finished(tmp_path: Path) -> None:
    """A verify killed (or stopped, or failed) before its counts were recorded is no
    verify result: the report said "everything matches — 0 matching" for the target,
    hiding the newest finished verify, which had found a missing message."""
    store, target = _store_with_two_targets(tmp_path), f"maildir:{tmp_path / 'out'}"
    next((tmp_path / "out" / "cur").iterdir()).unlink()
    assert cli("verify", str(store), target)[0] == 1
    with sqlite3.connect(store / "catalog.sqlite") as db:  # what kill -9 leaves: "running"
        db.execute("INSERT INTO runs(kind, peer, started) VALUES('verify', ?, ?)",
                   (target, datetime.now(UTC).isoformat(timespec="seconds")))
    assert cli("import", str(store), f"maildir:{tmp_path / 'out2'}")[0] == 0  # ends it
    _, data = cli_json("report", str(store), "--target", target)
    assert isinstance(data, dict)
    assert data["verify"][target]["stats"]["missing"] == 1


def test_the_overview_counts_items_still_skipped_as_the_folder_table_does(tmp_path: Path) -> None:
    """The page's "Problems: N skipped or failed" counted problem rows: 4 after two
    exports skipped the same 2 messages, and still 4 once a third run stored them."""
    md, store, page = tmp_path / "md", tmp_path / "store", tmp_path / "r.html"
    write_maildir(md, {"": [(make_message(i, size=5000), "S") for i in range(2)]})
    for args, skipped in ((("--max-size", "3KB"), 2), (("--max-size", "3KB"), 2), ((), 0)):
        cli("export", *args, f"maildir:{md}", str(store))
        assert cli("report", str(store), "--html", str(page))[0] == 0
        assert f"<dd>{skipped} skipped or failed," in page.read_text(encoding="utf-8")


def test_a_stored_message_export_could_not_repair_is_a_failure_until_repaired(
    tmp_path: Path,
) -> None:
    """A store file gone while the source changed the message: the export said it could
    not repair it (exit 1) but did not record it, so `ls` and the report showed no
    problem and 0 failed. The item is stored (not skipped: source = stored + skipped),
    and it is a failure of its folder until an export repairs it."""
    md, store, page = tmp_path / "md", tmp_path / "store", tmp_path / "r.html"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]})
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    next((store / "mail" / "cur").iterdir()).unlink()
    sources = sorted((md / "cur").iterdir())
    originals = {p: p.read_bytes() for p in sources}
    for p in sources:
        p.write_bytes(originals[p] + b"changed\n")
    for fixed, failed in ((False, 1), (True, 0)):
        if fixed:
            for p in sources:
                p.write_bytes(originals[p])
        assert cli("export", f"maildir:{md}", str(store))[0] == (0 if fixed else 1)
        _, data = cli_json("report", str(store))
        assert isinstance(data, dict)
        assert [(f["source"], f["stored"], f["skipped"], f["failed"]) for f in data["folders"]
                ] == [(3, 3, 0, failed)]  # fmt: skip
        assert sum("not repaired" in p["reason"] for p in data["problems"]) == 1
        assert cli("report", str(store), "--html", str(page))[0] == 0
        assert f"<dd>{failed} skipped or failed," in page.read_text(encoding="utf-8")
