"""Issue 15 (and issue 13's verify points) through the CLI, in child processes:
verify's matching and summary, check's totals, the stats block, exit codes for
notes, the run logs and `pstkit report` rendered by a real headless Chromium."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from pstkit.cli.conventions import hoist_globals
from pstkit.runlog import redact
from pstkit.spool import Spool
from tests.helpers import cli, make_message, run_pstkit, write_maildir
from tests.servers.listener import close_listener


def _source(root: Path) -> Path:
    """INBOX (3), Trash (2) and Deleted Items (2): two folders of role trash."""
    write_maildir(root, {
        "": [(make_message(i), "S") for i in range(3)],
        ".Trash": [(make_message(10 + i), "S") for i in range(2)],
        ".Deleted Items": [(make_message(20 + i), "S") for i in range(2)],
    })  # fmt: skip
    return root


def _exported(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    res = run_pstkit("export", f"maildir:{_source(tmp_path / 'src')}", store)
    assert res.returncode == 0, res.stderr
    return store


def _imported(tmp_path: Path) -> tuple[Path, str]:
    store = _exported(tmp_path)
    out = tmp_path / "out"
    res = run_pstkit("import", store, f"maildir:{out}")
    assert res.returncode == 0, res.stderr
    return store, f"maildir:{out}"


# --- verify (issue 13) --------------------------------------------------------------


def test_two_store_folders_in_one_target_folder_are_each_matched_once(tmp_path: Path) -> None:
    """Trash and Deleted Items (both role trash) land in the target's one trash
    folder: verify checks them against it together, never `=` and then `+`."""
    store = _exported(tmp_path)
    out = tmp_path / "out"
    for sub in ("cur", "new", "tmp"):  # the target already has its trash folder
        (out / ".Deleted Items" / sub).mkdir(parents=True)
        (out / sub).mkdir(parents=True, exist_ok=True)
    assert run_pstkit("import", store, f"maildir:{out}").returncode == 0
    assert len(list((out / ".Deleted Items" / "cur").iterdir())) == 4
    res = run_pstkit("verify", "--all", store, f"maildir:{out}")
    assert res.returncode == 0, res.stdout + res.stderr
    marks = [line.split()[0] for line in res.stdout.splitlines() if line[:1] in "=-+*!"]
    assert marks == ["="] * 7
    assert "7 matching, 0 missing, 0 extra, 0 differing" in res.stdout


def test_byte_identical_message_is_equal_whatever_the_recorded_subject(tmp_path: Path) -> None:
    """A PST source records the subject as Outlook keeps it (double spaces, a
    trailing space); the target's is read from the header. Same bytes: `=`."""
    store, target = _imported(tmp_path)
    with sqlite3.connect(store / "catalog.sqlite") as db:
        db.execute("UPDATE messages SET subject='Message 0  –  Grüße '"
                   " WHERE subject LIKE 'Message 0 %'")  # fmt: skip
    res = run_pstkit("verify", store, target)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "*" not in res.stdout and "7 matching, 0 missing, 0 extra, 0 differing" in res.stdout


def test_identical_copies_each_need_their_own_target_item(tmp_path: Path) -> None:
    """Two identical messages in the store, one in the target: one is missing."""
    src = tmp_path / "src"
    write_maildir(src, {"": [(make_message(1), "S"), (make_message(1), "S")]})
    store, out = tmp_path / "store", tmp_path / "out"
    assert run_pstkit("export", f"maildir:{src}", store).returncode == 0
    assert run_pstkit("import", store, f"maildir:{out}").returncode == 0
    next((out / "cur").iterdir()).unlink()
    res = run_pstkit("verify", store, f"maildir:{out}")
    assert res.returncode == 1
    assert "1 matching, 1 missing, 0 extra, 0 differing" in res.stdout


# --- verify's output (issue 15.1) ------------------------------------------------------


def test_verify_prints_differences_then_a_closing_block(tmp_path: Path) -> None:
    store, target = _imported(tmp_path)
    clean = run_pstkit("verify", store, target)
    assert clean.returncode == 0
    assert clean.stdout.splitlines() == ["7 matching, 0 missing, 0 extra, 0 differing"]
    assert "verify finished in" in clean.stderr
    victim = next((Path(target.removeprefix("maildir:")) / "cur").iterdir())
    victim.unlink()
    res = run_pstkit("verify", store, target)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert len(lines) == 3, res.stdout
    assert lines[0].startswith("-  INBOX  ") and "'Message " in lines[0]  # folder, date, subject
    assert lines[1] == "6 matching, 1 missing, 0 extra, 0 differing"
    assert lines[2] == "  INBOX: 2 matching, 1 missing, 0 extra, 0 differing"
    every = run_pstkit("verify", "--all", store, target).stdout.splitlines()
    assert sum(x.startswith("=  ") for x in every) == 6


def test_verify_json_and_csv(tmp_path: Path) -> None:
    store, target = _imported(tmp_path)
    res = run_pstkit("--json", "verify", "--csv", tmp_path / "v.csv", store, target)
    data = json.loads(res.stdout)
    assert data["totals"] == {"matching": 7, "missing": 0, "extra": 0, "differing": 0, "errors": 0}
    assert data["folders"]["Deleted Items"]["matching"] == 2 and data["lines"] == []
    with open(tmp_path / "v.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and {r["mark"] for r in rows} == {"="}
    first = rows[0]
    assert first["target folder"] == "Deleted Items" and first["message-id"].startswith("<m")
    assert int(first["size"]) > 0 and first["subject"].startswith("Message ")
    assert first["date"][:4].isdigit()


def test_verify_spills_its_lines_and_problems_and_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every item missing (a verify against the wrong target): the lines and the run's
    problems go through spools that spill every 2 items, and the output, the CSV, the
    JSON and the run log hold each of the 7 once, in order, as when nothing spills."""
    store, _ = _imported(tmp_path)
    for sub in ("cur", "new", "tmp"):  # an empty Maildir (verify refuses one not there)
        (tmp_path / "empty" / sub).mkdir(parents=True)
    empty = f"maildir:{tmp_path / 'empty'}"
    held = [cli("verify", store, empty), cli("--json", "verify", "--all", store, empty)]
    monkeypatch.setattr(Spool, "HELD", 2)
    csv_file = tmp_path / "v.csv"
    spilled = [cli("verify", store, empty), cli("--json", "verify", "--all", store, empty),
               cli("verify", "--csv", str(csv_file), store, empty)]  # fmt: skip
    assert [r[0] for r in spilled] == [1, 1, 1]
    assert spilled[0][1] == held[0][1] and spilled[0][1].count("\n-  ") == 6
    assert _no_seconds(json.loads(spilled[1][1])) == _no_seconds(json.loads(held[1][1]))
    assert [v["mark"] for v in json.loads(spilled[1][1])["lines"]] == ["-"] * 7
    with open(csv_file, encoding="utf-8") as f:
        assert [r["item"] for r in csv.DictReader(f)] == [
            line.split("[")[1].split("]")[0] for line in spilled[0][1].splitlines()[:7]]
    log = max((store / "logs").iterdir(), key=lambda p: p.stat().st_mtime).read_text()
    assert log.count("problem (verify): ") == 7


def _no_seconds(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k != "seconds"}


def test_check_counts_files_and_bytes(tmp_path: Path) -> None:
    store = _exported(tmp_path)
    res = run_pstkit("check", "--read-data", store)
    assert res.returncode == 0
    assert res.stdout.splitlines()[-1].startswith("7 files, ")
    assert "read and hashed: 0 damaged, 0 warnings" in res.stdout
    data = json.loads(run_pstkit("--json", "check", store).stdout)
    assert data["files"] == 7 and data["bytes"] > 1000 and data["damaged"] == 0


def test_check_spills_its_findings_and_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five files gone: the findings pass through a spool that spills every 2, and the
    text and JSON say the same as when nothing spills."""
    store = _exported(tmp_path)
    gone = sorted(p for p in (store / "mail").rglob("*") if p.is_file())[:5]
    for p in gone:
        p.unlink()
    held = [cli("check", store), cli("--json", "check", store)]
    monkeypatch.setattr(Spool, "HELD", 2)
    spilled = [cli("check", store), cli("--json", "check", store)]
    assert spilled[0][:2] == held[0][:2] and spilled[0][0] != 0
    assert spilled[0][1].count("DAMAGE") == 5 and ": 5 damaged, 0 warnings" in spilled[0][1]
    assert _no_seconds(json.loads(spilled[1][1])) == _no_seconds(json.loads(held[1][1]))
    assert len(json.loads(spilled[1][1])["findings"]) == 5


# --- the stats block, exit codes, run logs (issue 15.3, 15.4, 15.8) ---------------------


def test_rerun_says_already_stored_and_ends_with_a_stats_block(tmp_path: Path) -> None:
    store = _exported(tmp_path)
    res = run_pstkit("-v", "export", f"maildir:{tmp_path / 'src'}", store)
    assert res.returncode == 0
    assert "0 new, 7 already stored" in res.stdout
    assert "export finished in" in res.stderr and "0 new, 7 already stored" in res.stderr
    assert "msg/s" in res.stderr and "MB/s" in res.stderr
    data = json.loads(run_pstkit("--json", "import", store, f"maildir:{tmp_path / 'o'}").stdout)
    summary = data["summary"]
    assert summary["done"] == 7 and summary["already"] == 0 and summary["bytes"] > 0
    assert set(summary["folders"]) == {"INBOX", "Trash", "Deleted Items"}
    again = run_pstkit("-v", "import", store, f"maildir:{tmp_path / 'o'}")
    assert "0 new, 7 already delivered" in again.stdout
    assert "folder" in again.stderr and "delivered" in again.stderr  # -v: the folder table


def test_stored_with_a_note_is_a_warning_not_a_failure(corpus: Path, tmp_path: Path) -> None:
    """SampleOstFile.ost: 12 OLE attachments kept as raw bytes on 2 messages.
    Everything is stored, so exit 0, with the warnings counted and named."""
    res = run_pstkit("export", corpus / "pst" / "SampleOstFile.ost", tmp_path / "store")
    assert res.returncode == 0, res.stderr
    assert "warnings   12  (12 stored, but attachment N is an OLE object" in res.stderr
    assert "warning: Inbox 2011-09-20 10:29 'RTF newsletter copy' [2182916]" in res.stdout


def test_each_run_leaves_its_log_in_the_store(tmp_path: Path) -> None:
    store = _exported(tmp_path)
    extra = tmp_path / "copy.log"
    res = run_pstkit("--log-file", extra, "-v", "export", f"maildir:{tmp_path / 'src'}", store,
                     "--password-env", "NOT_USED")  # fmt: skip
    assert res.returncode == 0
    logs = sorted(p.name for p in (store / "logs").iterdir())
    assert logs == ["run-1.log", "run-2.log"]
    text = (store / "logs" / "run-2.log").read_text()
    assert "command: pstkit --log-file" in text and "versions: pstkit " in text
    assert "status ok" in text and "0 new, 7 already stored" in text
    assert extra.read_text() == text
    assert run_pstkit("check", store).returncode == 0  # logs/ is part of the store


def test_command_lines_in_logs_never_hold_secrets() -> None:
    argv = ["import", "s", "imaps://bob:hunter2@host", "--client-secret", "xyz",
            "--token=abc", "--password-file", "pw.txt"]  # fmt: skip
    text = " ".join(redact(argv))
    assert "hunter2" not in text and "xyz" not in text and "abc" not in text
    assert "pw.txt" in text  # a file name is not the secret


# --- pstkit report (issue 15.5) ---------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium: `apt-get install chromium` (scripts/setup.sh --dev does)")


def test_report_renders_in_a_headless_browser(corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert run_pstkit("export", corpus / "pst" / "SampleOstFile.ost", store).returncode == 0
    target = f"maildir:{tmp_path / 'out'}"
    assert run_pstkit("import", store, target).returncode == 0
    assert run_pstkit("verify", store, target).returncode == 0
    page, table = tmp_path / "report.html", tmp_path / "report.csv"
    res = run_pstkit("report", store, "--html", page, "--csv", table)
    assert res.returncode == 0, res.stderr
    dom = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "<svg" in dom and "<rect" in dom  # the charts
    text = " ".join(_visible_text(dom).split())
    assert "Migration report" in text and "pst:" in text and target in text
    assert "Inbox/sub2 29 29" in text  # folder: source -> store -> target
    assert "everything matches — 83 matching, 0 missing, 0 extra, 0 differing" in text
    assert "Inbox 2011-09-20 10:29 RTF newsletter copy stored, but attachment 1" in text
    with open(table, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["record"] for r in rows} == {"folder", "warning", "run"}


def test_a_pst_target_is_named_by_its_file_in_the_report(tmp_path: Path) -> None:
    """The ledger key of a PST target ends in the file's record key: the customer's page
    names the file, the CSV keeps the key (scripts join it with the ledger)."""
    md, store, pst = tmp_path / "md", tmp_path / "store", tmp_path / "out.pst"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]})
    assert run_pstkit("export", f"maildir:{md}", store).returncode == 0
    assert run_pstkit("import", store, f"pst:{pst}").returncode == 0
    assert run_pstkit("verify", store, f"pst:{pst}").returncode == 0
    page, table = tmp_path / "report.html", tmp_path / "report.csv"
    assert run_pstkit("report", store, "--html", page, "--csv", table).returncode == 0
    text = " ".join(_visible_text(page.read_text(encoding="utf-8")).split())
    assert f"Target pst:{pst} " in text and "everything matches" in text
    assert not re.search(r"#[0-9a-f]{32}", text)
    with open(table, encoding="utf-8") as f:
        peers = {r["peer"] for r in csv.DictReader(f) if r["record"] == "run"}
    assert any(re.fullmatch(rf"pst:{re.escape(str(pst))}#[0-9a-f]{{32}}", p) for p in peers)


def _visible_text(dom: str) -> str:
    body = re.sub(r"<(style|title)>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body).replace("&amp;", "&").replace("&gt;", ">")


# --- CLI conventions and listings (issue 15.10, 15.12) ----------------------------------


def test_global_options_after_the_command_and_help_without_python_types(tmp_path: Path) -> None:
    store, target = _imported(tmp_path)
    after = run_pstkit("verify", store, target, "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["totals"]["matching"] == 7
    assert json.loads(run_pstkit("ls", store, "-q", "--json").stdout)["layout"] == "maildir"
    for words in (["help", "verify"], ["verify", "-h"], ["import", "--help"], ["help"],
                  ["report", "-h"], ["export", "-h"], ["check", "-h"]):  # fmt: skip
        res = run_pstkit(*words)
        assert res.returncode == 0, res.stderr
        assert "Usage: pstkit" in res.stdout
        assert not re.search(r"<(str|int|path|list\[str\])|\{[a-z]+\}|\{[A-Z]+\}", res.stdout)
    assert "Usage: pstkit verify [OPTIONS] STORE TARGET" in run_pstkit("help", "verify").stdout
    assert "--duplicates skip|allow|replace" in run_pstkit("import", "-h").stdout
    assert "imaps://user@host" in run_pstkit("-h").stdout  # the location forms
    unknown = run_pstkit("help", "nope")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1


def test_ls_is_a_tree_with_readable_sizes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_maildir(src, {"": [(make_message(1), "S")], ".Projects": [(make_message(2), "")],
                        ".Projects.A": [(make_message(3, size=40_000), "")]})  # fmt: skip
    store = tmp_path / "store"
    assert run_pstkit("export", f"maildir:{src}", store).returncode == 0
    lines = run_pstkit("ls", store).stdout.splitlines()
    assert lines[1].split() == ["messages", "size", "folder"]
    assert re.fullmatch(r"\s+1\s+\d+ B  INBOX \[inbox\]", lines[2]), lines
    assert lines[3].endswith("  Projects") and lines[4].endswith("    A")  # a child, indented
    assert re.search(r"\s4\d\.\d KB\s", lines[4]), lines[4]
    assert "0.0 MB" not in "\n".join(lines)
    plan = run_pstkit("plan", store, f"maildir:{tmp_path / 'out'}").stdout.splitlines()
    assert re.search(r"Projects/A -> Projects/A \(create; 1 of 1 to import, 4\d\.\d KB\)", plan[2])
    assert plan[-1].startswith("3 messages to import into 3 folders (the folders hold 3 ")


def test_hoisting_moves_only_global_options() -> None:
    assert hoist_globals(["verify", "S", "T", "--json", "-v", "--log-file", "L"]) == [
        "--json", "-v", "--log-file", "L", "verify", "S", "T"]
    assert hoist_globals(["--log-file", "L", "ls", "S", "-q"]) == [
        "--log-file", "L", "-q", "ls", "S"]
    assert hoist_globals(["export", "--folder", "X", "--", "--json"]) == [
        "export", "--folder", "X", "--", "--json"]


# --- errors that point at the fix (issue 15.11) -----------------------------------------


def _plain_imap_port() -> tuple[socket.socket, threading.Thread, int]:
    """A port that greets in plain text, as an IMAP server's 143 does."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = srv.accept()
                with conn:
                    conn.sendall(b"* OK IMAP4rev1 ready\r\n")
                    conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv, thread, srv.getsockname()[1]


def test_errors_name_the_fix(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (("ls", afile), "is a file, not a store"),
        (("export", "imaps:/mx.example.com", tmp_path / "s"), "did you mean imaps://mx.example.com"),
        (("export", "imaps://mx.example.com", tmp_path / "s"), "no user name: write imaps://USER@"),
        (("export", tmp_path / "missing.pst", tmp_path / "s"), "missing.pst': no such file\n"),
    ]
    srv, thread, port = _plain_imap_port()
    cases.append((("export", f"imaps://bob@127.0.0.1:{port}", tmp_path / "s"),
                  "this port does not speak TLS: try imap:// (STARTTLS) or port 993"))  # fmt: skip
    try:
        for args, words in cases:
            res = run_pstkit(*args, env={"PSTKIT_PASSWORD": "x"})
            assert res.returncode in (2, 3, 5), res.stderr
            assert words in res.stderr and "Traceback" not in res.stderr, res.stderr
    finally:
        close_listener(srv, thread)  # never srv.close() under a thread in accept()


def test_a_damaged_store_copy_is_reported_not_a_crash(tmp_path: Path) -> None:
    store, target = _imported(tmp_path)
    out = Path(target.removeprefix("maildir:"))
    victim = next((out / "cur").iterdir())
    victim.write_bytes(victim.read_bytes() + b"changed in the target\n")
    for stored in (store / "mail" / "cur").iterdir():  # every INBOX copy, so its own too
        stored.write_bytes(b"damaged")
    res = run_pstkit("verify", store, target)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "store file damaged" in res.stdout and res.stdout.startswith("!  INBOX  ")
    assert "6 matching, 0 missing, 0 extra, 0 differing, 1 errors" in res.stdout


def test_report_of_one_target_as_json_and_csv(tmp_path: Path) -> None:
    store, target = _imported(tmp_path)
    other = f"maildir:{tmp_path / 'other'}"
    assert run_pstkit("import", store, other).returncode == 0
    assert run_pstkit("verify", store, target).returncode == 0
    data = json.loads(run_pstkit("--json", "report", store, "--target", target).stdout)
    assert data["targets"] == [target] and data["sources"][0].startswith("maildir:")
    assert [r["kind"] for r in data["runs"]] == ["export", "import", "verify"]
    assert sum(f["delivered"] for f in data["folders"]) == 7
    assert data["verify"][target]["stats"]["matching"] == 7
    res = run_pstkit("report", store)
    assert res.returncode == 2 and "--html FILE and/or --csv FILE" in res.stderr
