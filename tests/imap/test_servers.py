"""The IMAP sink against every server of the matrix (Dovecot, Cyrus, Courier): a store
made from a bare-LF Maildir arrives exactly once, is found again by duplicate checks
and verifies; identical copies stay distinct items; a resume never takes a UID of
another folder; a NUL byte travels only as literal8; a stalled server fails in time
(issue 13)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.converters import open_sink, open_source
from pstkit.converters.imap.append import wire_form
from pstkit.converters.imap.sink import ImapSink
from pstkit.errors import ConnectorError
from pstkit.location import parse_location
from pstkit.model import Delivered, Fetched, Flag
from pstkit.options import FetchFilter
from pstkit.protocols import Failed
from tests.helpers import cli, cli_json
from tests.imap.servers_helpers import (
    FOLDERS,
    count,
    lf_message,
    make_store,
    mark_sending,
    message_ids,
    server_digests,
    store_digests,
    target,
)
from tests.imap.test_sink_helpers import stored
from tests.servers.common import ImapServer, unique_user
from tests.servers.cyrus import Cyrus
from tests.servers.mail_helpers import options, password_file

PW = "pw"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", PW)


def test_bare_lf_store_arrives_once_dedups_and_verifies(server: ImapServer, tmp_path: Path
                                                       ) -> None:
    user = server.add_user(unique_user("mx"), PW)
    store = make_store(tmp_path)
    code, out = cli_json("import", str(store), *target(server, user))
    assert code == 0, out
    assert isinstance(out, dict) and out["stats"].get("delivered") == 3 * len(FOLDERS)
    want = store_digests(store)
    assert server_digests(server, user) == want
    code, stdout, err = cli("verify", "--all", str(store), *target(server, user))
    assert code == 0, stdout + err
    same = [line for line in stdout.splitlines() if line.startswith("= ")]
    assert len(same) == 3 * len(FOLDERS)
    assert all("CRLF" in line for line in same), stdout
    assert f"{3 * len(FOLDERS)} matching, 0 missing, 0 extra, 0 differing" in stdout
    # Another store holding the same messages: every one is found as a duplicate
    # (Courier quotes the field names of BODY[HEADER.FIELDS ("MESSAGE-ID" "SUBJECT")]).
    other = make_store(tmp_path, name="other")
    code, out = cli_json("import", str(other), *target(server, user))
    assert code == 0, out
    assert isinstance(out, dict) and not out["stats"].get("delivered"), out
    assert server_digests(server, user) == want


def test_identical_copies_are_distinct_items_after_a_resume(server: ImapServer, tmp_path: Path
                                                           ) -> None:
    user = server.add_user(unique_user("mc"), PW)
    store = make_store(tmp_path, per_folder=1, copies=2)
    code, out = cli_json("import", str(store), *target(server, user))
    assert code == 0, out
    # Killed after the APPEND of the first copy only, before the ledger knew: both
    # "sending", the server holds one. The resume must claim it for one copy only.
    mark_sending(store, message_ids(store, ("INBOX",)))
    with server.client(user) as c:
        c.select_folder("INBOX")
        last = max(c.search(["ALL"]))
        c.delete_messages([last])
        c.expunge()
    assert count(server, user) == 2 * len(FOLDERS) - 1
    code, out = cli_json("import", str(store), *target(server, user))
    assert code == 0, out
    assert server_digests(server, user) == store_digests(store)


def test_resume_never_takes_a_uid_of_another_folder(server: ImapServer, tmp_path: Path) -> None:
    """Cyrus gives folders created in one second one UIDVALIDITY: "UIDVALIDITY:1" of
    Kunden and of INBOX look alike, and the resumed import must not mistake one for
    the other and send Kunden's message again."""
    user = server.add_user(unique_user("mu"), PW)
    store = make_store(tmp_path, per_folder=1)
    code, out = cli_json("import", str(store), *target(server, user))
    assert code == 0, out
    mark_sending(store, message_ids(store, ("Kunden",)))
    code, out = cli_json("import", str(store), *target(server, user))
    assert code == 0, out
    assert server_digests(server, user) == store_digests(store)


def test_a_nul_byte_goes_as_literal8_or_is_reported(server: ImapServer, tmp_path: Path) -> None:
    user = server.add_user(unique_user("mn"), PW)
    raw = b"Subject: nul\r\nMessage-ID: <nul@test>\r\n\r\nbefore\0after\n"
    sink = ImapSink(parse_location(f"imap://{user.name}@127.0.0.1:{server.imap_port}"),
                    options(password_file(tmp_path, user), insecure=True, starttls=False))
    try:
        results = sink.put_batch(("INBOX",), [(stored(1, raw), raw)])
        binary = "BINARY" in {str(c).upper() for c in sink._caps}
    finally:
        sink.close()
    if binary:
        assert isinstance(results[0], Delivered)
        with server.client(user) as c:  # imaplib: imapclient cannot parse a literal8 reply
            c.select_folder("INBOX", readonly=True)
            typ, data = c._imap.fetch("1", "(BINARY.PEEK[])")  # BODY[] may alter a NUL
        assert typ == "OK" and isinstance(data[0], tuple)
        assert data[0][1] == raw.replace(b"after\n", b"after\r\n")
    else:
        assert isinstance(results[0], Failed) and "NUL" in results[0].reason
        assert count(server, user) == 0


def test_a_stalled_server_fails_within_the_timeout(fresh_cyrus: Cyrus, tmp_path: Path) -> None:
    """Issue 13: after SIGTERM Cyrus's master spun without accepting, and pstkit waited
    ~375 s (60 s per reconnect attempt, six attempts). All reconnects together now get
    one --timeout."""
    user = fresh_cyrus.add_user(unique_user("ms"), PW)
    loc = parse_location(f"imap://{user.name}@127.0.0.1:{fresh_cyrus.imap_port}")
    sink = ImapSink(loc, options(password_file(tmp_path, user), insecure=True,
                                 starttls=False, timeout=2.0))
    raw = b"Subject: s\r\nMessage-ID: <s1@test>\r\n\r\nbody\r\n"
    try:
        assert isinstance(sink.put_batch(("INBOX",), [(stored(1, raw), raw)])[0], Delivered)
        fresh_cyrus.stall()
        start = time.monotonic()
        with pytest.raises(ConnectorError, match="no answer within 2 s"):
            sink.put_batch(("INBOX",), [(stored(2, raw), raw)])
        waited = time.monotonic() - start
    finally:
        fresh_cyrus.resume()
        sink.close()
    assert waited < 8, f"waited {waited:.1f} s for a stalled server (budget: one 2 s timeout)"


CONTRACT_FOLDERS = [("INBOX",), ("Sent Items",), ("Projekte", "Überweisungen"), ("a.b/c:d",)]


def test_sink_then_source_gives_the_same_bytes_and_flags(server: ImapServer, tmp_path: Path
                                                         ) -> None:
    """The contract suite of tests/core/test_contract.py, on every IMAP server: put
    through ImapSink, read back through ImapSource, same bytes (as on the wire), flags
    and folders; the sink finds what it delivered."""
    user = server.add_user(unique_user("mk"), PW)
    loc = parse_location(f"imap://{user.name}@127.0.0.1:{server.imap_port}")
    opts = options(password_file(tmp_path, user), insecure=True, starttls=False)
    sink = open_sink(loc, opts)
    want: dict[tuple[str, ...], Counter[tuple[bytes, frozenset[Flag]]]] = {}
    for n, folder in enumerate(CONTRACT_FOLDERS):
        sink.ensure_folder(folder, None)
        raws = [lf_message(10 * n + i) for i in range(3)]
        flags = [frozenset({Flag.SEEN, Flag.FLAGGED}), frozenset({Flag.ANSWERED}), frozenset()]
        batch = [(replace(stored(i, r, folder), flags=f), r)
                 for i, (r, f) in enumerate(zip(raws, flags, strict=True))]
        assert all(isinstance(r, Delivered) for r in sink.put_batch(folder, batch))
        assert sink.find_duplicates(batch[0][0], batch[0][1], folder)
        assert len(list(sink.inventory(folder))) == len(batch)
        want[folder] = Counter((wire_form(r, binary=False) or b"", f)
                               for r, f in zip(raws, flags, strict=True))
    sink.close()
    source = open_source(loc, opts)
    got: dict[tuple[str, ...], Counter[tuple[bytes, frozenset[Flag]]]] = {}
    for info in source.folders():
        for item in source.fetch(info, None, FetchFilter(), set()):
            assert isinstance(item, Fetched)
            got.setdefault(info.path, Counter())[(item.raw, item.meta.flags)] += 1
    source.close()
    assert {f: got.get(f) for f in CONTRACT_FOLDERS} == want


MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


@pytest.mark.skipif(shutil.which("mcopy") is None, reason="mtools not installed")
def test_round_trip_through_a_fat32_store_to_another_account(server: ImapServer,
                                                             tmp_path: Path) -> None:
    """Account A -> store -> FAT32 image -> back -> account B: same messages and
    flags in the same folders (the round trip of test_sink_e2e, on every server)."""
    a, b = server.add_user(unique_user("fa"), PW), server.add_user(unique_user("fb"), PW)
    code, out = cli_json("import", str(make_store(tmp_path)), *target(server, a))
    assert code == 0, out
    store = tmp_path / "exported"
    code, _, err = cli("export", target(server, a)[0], str(store), *target(server, a)[1:])
    assert code == 0, err
    image = tmp_path / "fat32.img"
    with open(image, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    back = tmp_path / "back"
    back.mkdir()
    for cmd in (["mformat", "-i", str(image), "-F", "::"],
                ["mcopy", "-i", str(image), "-s", "-Q", str(store), "::/"],
                ["mcopy", "-i", str(image), "-s", "-Q", "::/exported", str(back)]):
        subprocess.run(cmd, check=True, env=MTOOLS_ENV, capture_output=True)
    code, stdout, err = cli("import", str(back / "exported"), *target(server, b))
    assert code == 0, stdout + err
    assert server_digests(server, b, flags=True) == server_digests(server, a, flags=True)


def test_export_is_incremental_and_exact(server: ImapServer, tmp_path: Path) -> None:
    """The IMAP source on every server: an export, new mail, a second export that
    fetches only the new mail; the store then holds each server message once."""
    user = server.add_user(unique_user("me"), PW)
    code, out = cli_json("import", str(make_store(tmp_path)), *target(server, user))
    assert code == 0, out
    store = tmp_path / "exported"
    code, _, err = cli("export", target(server, user)[0], str(store), *target(server, user)[1:])
    assert code == 0, err
    with server.client(user) as c:
        for i in (100, 101):
            c.append(server.prefix + "Kunden", lf_message(i))
    code, out = cli_json("export", target(server, user)[0], str(store), *target(server, user)[1:])
    assert code == 0, out
    assert isinstance(out, dict) and out["stats"].get("stored") == 2, out
    assert store_digests(store) == server_digests(server, user)


def test_server_restart_mid_import(fresh_server: ImapServer, tmp_path: Path) -> None:
    """Every connection cut by a server restart mid-import: the import reconnects,
    looks for the batch it was sending, and ends with every message once."""
    user = fresh_server.add_user(unique_user("mr"), PW)
    # Long enough that a slow STATUS poll (Courier) still finds the import running: with
    # 200 a folder, a full run alone on the machine once saw it end first (2026-12-05).
    store = make_store(tmp_path, per_folder=500)
    result: list[tuple[int, str, str]] = []
    run = threading.Thread(target=lambda: result.append(cli(
        "import", str(store), *target(fresh_server, user), "--opt", "imap_batch_items=2")))
    run.start()
    while run.is_alive() and count(fresh_server, user) < 20:
        time.sleep(0.01)
    assert run.is_alive(), "the import ended before the restart"
    fresh_server.restart()
    run.join()
    code, out, err = result[0]
    assert code == 0, out + err
    assert server_digests(fresh_server, user) == store_digests(store)
