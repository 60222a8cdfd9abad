"""Dovecot -> store -> Maildir through the CLI: same bytes, flags and folders;
a killed export resumes and stores every message exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pstkit.model import Flag
from tests.helpers import REPO, cli, cli_json, maildir_content, make_message
from tests.servers.dovecot import Account, Dovecot, unique_user
from tests.servers.mail_helpers import password_file, server_bodies, sha

FLAGS = {"\\Seen": Flag.SEEN, "\\Answered": Flag.ANSWERED, "\\Flagged": Flag.FLAGGED,
         "\\Draft": Flag.DRAFT, "$Forwarded": Flag.FORWARDED}
FOLDERS = ("INBOX", "Sent", "Überweisungen", "Факторы/日本語", "Projekte/2024")


def _export_args(server: Dovecot, user: Account, store: Path, tmp: Path) -> list[str]:
    return ["export", f"imaps://{user.name}@127.0.0.1:{server.imaps_port}", str(store),
            "--password-file", str(password_file(tmp, user)), "--ca-file", str(server.ca_file)]


def _server_content(server: Dovecot, user: Account) -> Counter[tuple[str, frozenset[Flag]]]:
    out: Counter[tuple[str, frozenset[Flag]]] = Counter()
    with server.client(user) as c:
        for name in FOLDERS:
            c.select_folder(name, readonly=True)
            flags = c.get_flags(c.search(["ALL"]))
            bodies = server_bodies(server, user, name)
            for uid, raw in bodies.items():
                got = {FLAGS[f.decode()] for f in flags[uid] if f.decode() in FLAGS}
                out[(sha(raw), frozenset(got))] += 1
    return out


def test_round_trip_to_maildir(dovecot: Dovecot, tmp_path: Path, corpus: Path) -> None:
    user = dovecot.add_user(unique_user("rt"), "pw")
    files = sorted(p for p in (corpus / "eml").iterdir() if b"\0" not in p.read_bytes())
    flag_sets = [(), ("\\Seen",), ("\\Answered", "\\Seen"), ("\\Flagged",), ("$Forwarded",)]
    for i, p in enumerate(files):
        dovecot.append(user, FOLDERS[i % len(FOLDERS)], p.read_bytes(),
                       flag_sets[i % len(flag_sets)],
                       datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=i))
    store, out = tmp_path / "store", tmp_path / "out"
    code, _, err = cli(*_export_args(dovecot, user, store, tmp_path))
    assert code == 0, err
    assert cli("check", "--read-data", str(store))[0] == 0
    code, _, err = cli("import", str(store), f"maildir:{out}")
    assert code == 0, err
    got = maildir_content(out)
    assert Counter(item for items in got.values() for item in items) == \
        _server_content(dovecot, user)
    names = {"/".join(p) for p in got}
    assert {"Überweisungen", "Факторы/日本語", "Projekte/2024"} <= names
    # A second run finds nothing new; one new message is all a third run adds.
    code, res = cli_json(*_export_args(dovecot, user, store, tmp_path))
    assert code == 0 and res
    dovecot.append(user, "Überweisungen", make_message(99))
    assert cli(*_export_args(dovecot, user, store, tmp_path))[0] == 0
    _, listing = cli_json("ls", str(store))
    assert sum(f["messages"] for f in listing["folders"]) == len(files) + 1  # type: ignore[index]


@pytest.mark.slow
def test_killed_export_resumes_exactly_once(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("kill"), "pw")
    n = 1000
    for name in ("INBOX", "Archive"):
        dovecot.append_many(user, name, ((make_message(i, size=3000), ("\\Seen",), None)
                                         for i in range(n // 2)))
    store = tmp_path / "store"
    args = _export_args(dovecot, user, store, tmp_path)
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pstkit", *args, "--opt", "imap_fetch_batch=5"], cwd=REPO,
            env={**os.environ, "PSTKIT_BATCH_ITEMS": "20"}, stdout=subprocess.DEVNULL,
            stderr=err_file)
        killed, stored = _kill_when_stored(store, proc, at_least=50)
    assert killed, f"the export ended before the kill: {log.read_text()[-2000:]}"
    assert 50 <= stored < n
    code, _, err = cli(*args)
    assert code == 0, err
    assert cli("check", "--read-data", str(store))[0] == 0
    out = tmp_path / "out"
    assert cli("import", str(store), f"maildir:{out}")[0] == 0
    got = Counter(s for items in maildir_content(out).values() for s, _ in items)
    want = Counter(sha(b) for name in ("INBOX", "Archive")
                   for b in server_bodies(dovecot, user, name).values())
    assert got == want


def _kill_when_stored(store: Path, proc: subprocess.Popen[bytes], at_least: int
                      ) -> tuple[bool, int]:
    """SIGKILL the export as soon as `at_least` message files exist.
    Returns (whether it was still running when killed, files seen)."""
    deadline = time.monotonic() + 300
    count = 0
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            count = sum(1 for p in (store / "mail").rglob("*") if p.parent.name in ("cur", "new"))
            if count >= at_least:
                break
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    return killed, count


def test_cli_errors_are_one_line_with_exit_codes(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("cli"), "pw")
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    base = ["export", f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}",
            str(tmp_path / "store"), "--password-file", str(wrong)]
    code, _, err = cli(*base, "--ca-file", str(dovecot.ca_file))
    assert code == 6, err
    assert "authentication failed" in err and "Traceback" not in err and "nope" not in err
    code, _, err = cli(*base)  # the test CA is not trusted by default
    assert code == 5, err
    assert "certificate not trusted" in err and "--ca-file" in err and "Traceback" not in err


def test_pop3_delete_after_export_through_the_pipeline(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("pop"), "pw")
    raws = [make_message(i) for i in range(5)]
    for raw in raws:
        dovecot.append(user, "INBOX", raw)
    store = tmp_path / "store"
    args = ["export", f"pop3s://{user.name}@127.0.0.1:{dovecot.pop3s_port}", str(store),
            "--password-file", str(password_file(tmp_path, user)),
            "--ca-file", str(dovecot.ca_file)]
    code, _, err = cli(*args)  # without --delete-after-export: nothing deleted
    assert code == 0, err
    assert len(server_bodies(dovecot, user, "INBOX")) == 5
    code, _, err = cli(*args, "--delete-after-export")  # all stored already: now deleted
    assert code == 0, err
    assert server_bodies(dovecot, user, "INBOX") == {}
    out = tmp_path / "out"
    assert cli("import", str(store), f"maildir:{out}")[0] == 0
    got = Counter(s for items in maildir_content(out).values() for s, _ in items)
    assert got == Counter(sha(r) for r in raws)


def test_uidvalidity_change_stores_nothing_twice(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("uv"), "pw")
    raws = [make_message(i) for i in range(4)]
    for raw in raws:
        dovecot.append(user, "Proj", raw)
    store = tmp_path / "store"
    args = _export_args(dovecot, user, store, tmp_path)
    assert cli(*args)[0] == 0
    old = dovecot.uidvalidity(user, "Proj")
    dovecot.delete_folder(user, "Proj")  # renumbers: a new UIDVALIDITY
    for raw in [*raws, make_message(4)]:
        dovecot.append(user, "Proj", raw)
    assert dovecot.uidvalidity(user, "Proj") != old
    code, _, err = cli(*args)
    assert code == 0, err
    out = tmp_path / "out"
    assert cli("import", str(store), f"maildir:{out}")[0] == 0
    got = Counter(s for s, _ in maildir_content(out)[("Proj",)])
    assert got == Counter(sha(r) for r in [*raws, make_message(4)])
