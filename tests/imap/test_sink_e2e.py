"""Store -> Dovecot through the CLI (`pstkit import STORE imaps://…`): every
message once with its bytes, flags, INTERNALDATE and folder; re-runs, a
half-filled target, a killed import, a server restart, a full quota, and a
full round trip Dovecot A -> store -> FAT32 image -> Dovecot B."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pstkit.model import Flag, FolderPath
from pstkit.names import maildirpp_dirname
from pstkit.store import Store
from tests.helpers import REPO, cli, cli_json, kill_when, make_message
from tests.imap.test_sink_helpers import IMAP_FLAGS
from tests.servers.dovecot import Account, Dovecot, unique_user

Content = dict[FolderPath, Counter[tuple[bytes, frozenset[Flag], datetime]]]
T0 = datetime(2022, 2, 3, 4, 5, 6, tzinfo=UTC)
# store folder -> Maildir flags of its messages (cycled)
FOLDERS: dict[FolderPath, str] = {
    ("INBOX",): "S", ("Sent Messages",): "RS", ("Projekte", "2024"): "F",
    ("Факторы", "日本語"): "", ("Überweisungen",): "DS",
}  # fmt: skip
# store name -> Dovecot's \\Sent folder
SPECIAL: dict[FolderPath, FolderPath] = {("Sent Messages",): ("Sent",)}




def make_store(tmp: Path, per_folder: int = 4, size: int = 0) -> Path:
    src = tmp / "src"
    n = 0
    for path, flags in FOLDERS.items():
        base = src if path == ("INBOX",) else src / maildirpp_dirname(path)
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for _ in range(per_folder):
            f = base / "cur" / f"{1700000000 + n}.m{n}.test:2,{flags if n % 2 else ''}"
            f.write_bytes(make_message(n, size=size))
            stamp = (T0 + timedelta(hours=n)).timestamp()
            os.utime(f, (stamp, stamp))
            n += 1
    store = tmp / "store"
    code, _, err = cli("export", f"maildir:{src}", str(store))
    assert code == 0, err
    return store


def store_content(store: Path) -> Content:
    """Where each stored message should land, with its bytes, flags and date."""
    out: Content = {}
    with Store.open(store) as st:
        for row in st.rows():
            m = row.msg
            assert m.received is not None
            folder = SPECIAL.get(m.folder, m.folder)
            out.setdefault(folder, Counter())[(st.read(row), m.flags, m.received)] += 1
    return out


def server_content(server: Dovecot, user: Account) -> Content:
    """Every message of every folder, read with plain imapclient."""
    out: Content = {}
    with server.client(user) as c:
        c.normalise_times = False
        for attrs, delim, name in c.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(attrs):
                continue
            path = tuple(name.split(delim.decode())) if name != "INBOX" else ("INBOX",)
            c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            if not uids:
                continue
            for d in c.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]).values():
                flags = frozenset(IMAP_FLAGS[f.decode()] for f in d[b"FLAGS"]
                                  if f.decode() in IMAP_FLAGS)
                key = (d[b"BODY[]"], flags, d[b"INTERNALDATE"].astimezone(UTC))
                out.setdefault(path, Counter())[key] += 1
    return out


def target(server: Dovecot, user: Account) -> list[str]:
    return [f"imaps://{user.name}@127.0.0.1:{server.imaps_port}", "--ca-file",
            str(server.ca_file)]


@pytest.fixture()
def password(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PSTKIT_PASSWORD", "pw")
    yield "pw"


def test_store_to_dovecot_every_message_once_and_rerun_sends_nothing(
    dovecot: Dovecot, tmp_path: Path, password: str
) -> None:
    user = dovecot.add_user(unique_user("e2e"), password)
    store = make_store(tmp_path)
    code, out = cli_json("import", str(store), *target(dovecot, user))
    assert code == 0, out
    want = store_content(store)
    assert server_content(dovecot, user) == want
    assert ("Sent Messages",) not in server_content(dovecot, user)  # went to \Sent
    code, out = cli_json("import", str(store), *target(dovecot, user))
    assert code == 0, out
    assert isinstance(out, dict) and not out["stats"].get("delivered")
    assert server_content(dovecot, user) == want
    code, stdout, err = cli("verify", str(store), *target(dovecot, user))
    assert code == 0, stdout + err


def test_parallel_connections(dovecot: Dovecot, tmp_path: Path, password: str) -> None:
    user = dovecot.add_user(unique_user("ec"), password)
    store = make_store(tmp_path, per_folder=10)
    code, out, err = cli("import", str(store), *target(dovecot, user), "--connections", "3",
                         "--opt", "imap_batch_items=3")
    assert code == 0, out + err
    assert server_content(dovecot, user) == store_content(store)


def test_verify_reports_a_message_missing_in_the_target(
    dovecot: Dovecot, tmp_path: Path, password: str
) -> None:
    user = dovecot.add_user(unique_user("ev"), password)
    store = make_store(tmp_path, per_folder=2)
    assert cli("import", str(store), *target(dovecot, user))[0] == 0
    with dovecot.client(user) as c:
        c.select_folder("Projekte/2024")
        c.delete_messages(c.search(["ALL"])[:1])
        c.expunge()
    code, out, err = cli("verify", str(store), *target(dovecot, user))
    assert code != 0, out + err
    assert "Projekte/2024" in out


def test_target_already_holding_half_ends_with_each_once(
    dovecot: Dovecot, tmp_path: Path, password: str
) -> None:
    user = dovecot.add_user(unique_user("e2e"), password)
    store = make_store(tmp_path)
    want = store_content(store)
    for path, items in want.items():
        for n, ((raw, _, when), _) in enumerate(items.items()):
            if n % 2 == 0:
                dovecot.append(user, "/".join(path), raw, (), when)
    code, out = cli_json("import", str(store), *target(dovecot, user))
    assert code == 0, out
    assert isinstance(out, dict) and out["stats"]["duplicate"] == 10
    got = server_content(dovecot, user)
    assert {p: sorted(r for r, _, _ in c.elements()) for p, c in got.items()} == {
        p: sorted(r for r, _, _ in c.elements()) for p, c in want.items()}


def test_quota_full_gives_clear_stop(dovecot: Dovecot, tmp_path: Path, password: str) -> None:
    user = dovecot.add_user(unique_user("eq"), password, quota_bytes=30_000)
    store = make_store(tmp_path, size=3000)
    code, out, err = cli("import", str(store), *target(dovecot, user))
    assert code == 5, out + err
    assert "over quota" in err and "Traceback" not in err


SUBPROCESS = "from pstkit.cli import main; main()"


def _count(server: Dovecot, user: Account) -> int:
    """Messages in the account, by STATUS (cheap enough to poll)."""
    total = 0
    with server.client(user) as c:
        for attrs, _, name in c.list_folders():
            if not {b"\\Noselect", b"\\NonExistent"} & set(attrs):
                total += int(c.folder_status(name, ["MESSAGES"])[b"MESSAGES"])
    return total


@pytest.mark.slow
def test_killed_import_resumes_without_duplicates(
    dovecot: Dovecot, tmp_path: Path, password: str
) -> None:
    user = dovecot.add_user(unique_user("ek"), password)
    store = make_store(tmp_path, per_folder=60)
    args = [sys.executable, "-c", SUBPROCESS, "import", str(store), *target(dovecot, user),
            "--opt", "imap_batch_items=2"]
    proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, "PSTKIT_PASSWORD": password},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert kill_when(proc, lambda: _count(dovecot, user) >= 60), "it ended before the kill"
    assert 60 <= _count(dovecot, user) < 300, "the import was not killed midway"
    done = subprocess.run(args, cwd=REPO, env={**os.environ, "PSTKIT_PASSWORD": password},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert server_content(dovecot, user) == store_content(store)


@pytest.mark.slow
def test_server_restart_mid_import(fresh_dovecot: Dovecot, tmp_path: Path, password: str) -> None:
    user = fresh_dovecot.add_user(unique_user("er"), password)
    # 100 a folder (500): the messages left after the 40th must outlast a STATUS poll (a
    # TLS login each) on a loaded machine, as test_servers' twin learned on Courier
    store = make_store(tmp_path, per_folder=100)
    result: list[tuple[int, str, str]] = []
    run = threading.Thread(target=lambda: result.append(cli(
        "import", str(store), *target(fresh_dovecot, user), "--opt", "imap_batch_items=2")))
    run.start()
    while run.is_alive() and _count(fresh_dovecot, user) < 40:
        time.sleep(0.01)
    assert run.is_alive(), "the import ended before the restart"
    fresh_dovecot.restart()
    run.join()
    code, out, err = result[0]
    assert code == 0, out + err
    assert server_content(fresh_dovecot, user) == store_content(store)


MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


@pytest.mark.skipif(shutil.which("mcopy") is None, reason="mtools not installed")
def test_round_trip_dovecot_to_fat32_store_to_other_account(
    dovecot: Dovecot, tmp_path: Path, password: str
) -> None:
    a = dovecot.add_user(unique_user("ra"), password)
    b = dovecot.add_user(unique_user("rb"), password)
    flag_sets = [(), ("\\Seen",), ("\\Answered", "\\Seen"), ("\\Flagged", "Work"),
                 ("$Forwarded", "\\Draft")]
    names = ["INBOX", "Sent", "Überweisungen", "Факторы/日本語", "Projekte/2024"]
    for i in range(20):
        dovecot.append(a, names[i % len(names)], make_message(i), flag_sets[i % 5],
                       T0 + timedelta(minutes=i))
    store = tmp_path / "store"
    code, _, err = cli("export", *target(dovecot, a)[:1], str(store),
                       *target(dovecot, a)[1:])
    assert code == 0, err
    image = tmp_path / "fat32.img"
    with open(image, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    for cmd in (["mformat", "-i", str(image), "-F", "::"],
                ["mcopy", "-i", str(image), "-s", "-Q", str(store), "::/"]):
        subprocess.run(cmd, check=True, env=MTOOLS_ENV, capture_output=True)
    back = tmp_path / "back"
    back.mkdir()
    subprocess.run(["mcopy", "-i", str(image), "-s", "-Q", "::/store", str(back)], check=True,
                   env=MTOOLS_ENV, capture_output=True)
    code, out, err = cli("import", str(back / "store"), *target(dovecot, b))
    assert code == 0, out + err
    in_a, in_b = _with_keywords(dovecot, a), _with_keywords(dovecot, b)
    # The store records that A's parents "Projekte" and "Факторы" were not
    # selectable, so B does not get them as real (empty) folders either.
    assert in_b == in_a
    assert server_content(dovecot, b) == server_content(dovecot, a)


def _with_keywords(server: Dovecot, user: Account) -> dict[str, list[tuple[bytes, ...]]]:
    """Folder name -> sorted (body, flags incl. keywords) as the server lists them."""
    out: dict[str, list[tuple[bytes, ...]]] = {}
    with server.client(user) as c:
        for attrs, _, name in c.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(attrs):
                continue
            c.select_folder(name, readonly=True)
            got = c.fetch(c.search(["ALL"]) or [], ["BODY.PEEK[]", "FLAGS"])
            out[name] = sorted((d[b"BODY[]"], *sorted(f for f in d[b"FLAGS"]
                                                     if f != b"\\Recent")) for d in got.values())
    return out


def test_verify_accepts_line_ends_the_server_made_crlf(
    dovecot: Dovecot, tmp_path: Path, password: str, corpus: Path
) -> None:
    """The corpus mbox files use bare LF; an IMAP server stores CRLF. verify says
    "=" (with the reason), not "content differs"."""
    user = dovecot.add_user(unique_user("lf"), password)
    store = tmp_path / "store"
    assert cli("export", f"mbox:{corpus / 'mbox' / 'tika_complex.mbox'}", str(store))[0] == 0
    assert cli("import", str(store), *target(dovecot, user))[0] == 0
    code, out, err = cli("verify", str(store), *target(dovecot, user))
    assert code == 0, out + err
    assert "3 of the matching: line ends made CRLF by the target" in out


def test_a_flag_the_server_cannot_keep_is_reported(
    dovecot: Dovecot, tmp_path: Path, password: str
) -> None:
    """A keyword that is not an IMAP atom cannot be stored: the message arrives,
    and the loss is a recorded warning (exit 0, counted), not a silent change."""
    user = dovecot.add_user(unique_user("kw"), password)
    source = tmp_path / "src"
    for sub in ("cur", "new", "tmp"):
        (source / sub).mkdir(parents=True)
    (source / "dovecot-keywords").write_text("0 two words\n1 Work\n")
    (source / "cur" / "1700000000.kw.test:2,Sab").write_bytes(make_message(7))
    store = tmp_path / "store"
    assert cli("export", f"maildir:{source}", str(store))[0] == 0
    code, res = cli_json("import", str(store), *target(dovecot, user))
    assert code == 0
    assert res["summary"]["warnings"] == 1  # type: ignore[index]
    assert res["stats"]["delivered"] == 1  # type: ignore[index]
    reasons = [p["reason"] for p in res["problems"]]  # type: ignore[index]
    assert reasons == ["delivered, but the target cannot keep two words"]
