"""Store -> EWS test server through pstkit's import pipeline (and the CLI, for kill/resume)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pstkit import importing, pipeline
from pstkit.converters import open_sink, open_source
from pstkit.converters.ews.sink import EwsSink
from pstkit.location import parse_location
from pstkit.model import DuplicatePolicy, Flag
from pstkit.options import ConnectOptions, MappingOptions
from pstkit.store import Store
from pstkit.verify import verify
from tests.helpers import REPO, make_message, write_maildir
from tests.servers.ews import EwsServer
from tests.servers.ews.mailbox import Item
from tests.servers.ews.testkit import USER, location, options

pytest.importorskip("exchangelib")
KEY = ("name", "6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41", "PstkitSourceKey")
FOLDERS = {
    "": [(make_message(i), "S" if i % 2 else "") for i in range(6)],
    ".Sent": [(make_message(100 + i), "S") for i in range(3)],
    ".Trash": [(make_message(200 + i), "ST") for i in range(2)],
    ".Projects": [(make_message(300), "SF")],
    ".Projects.A": [(make_message(400 + i), "RS") for i in range(2)],
    ".&ANw-berweisungen": [(make_message(500), "")],  # "Überweisungen"
}
TOTAL = sum(len(v) for v in FOLDERS.values())


def make_store(tmp: Path, name: str) -> Store:
    src = tmp / f"{name}-maildir"
    write_maildir(src, FOLDERS)
    store = Store.create(tmp / name)
    source = open_source(parse_location(f"maildir:{src}"), ConnectOptions())
    pipeline.export(source, store)
    source.close()
    return store


def by_path(server: EwsServer) -> dict[tuple[str, ...], list[Item]]:
    box = server.mailboxes[USER.mailbox]
    out: dict[tuple[str, ...], list[Item]] = {}
    for item in box.items.values():
        out.setdefault(box.path_of(item.folder_id), []).append(item)
    return out


def test_store_arrives_once_in_the_right_folders(server: EwsServer, tmp_path: Path) -> None:
    store = make_store(tmp_path, "store")
    sink = EwsSink(location(server), options())
    result = importing.import_(store, sink, MappingOptions())
    assert not result.problems
    got = by_path(server)
    assert {k: len(v) for k, v in got.items()} == {
        ("Inbox",): 6, ("Sent Items",): 3, ("Deleted Items",): 2, ("Projects",): 1,
        ("Projects", "A"): 2, ("Überweisungen",): 1,
    }  # fmt: skip
    items = [i for v in got.values() for i in v]
    assert not any(i.is_draft for i in items)
    assert sum(i.is_read for i in got[("Inbox",)]) == 3
    assert got[("Projects",)][0].props[("tag", str(0x1090))].value == "2"  # flagged
    assert all(i.props[("tag", str(0x1081))].value == "102" for i in got[("Projects", "A")])
    assert len({i.props[KEY].value for i in items}) == TOTAL
    lines = list(verify(store, sink))
    assert Counter(line.mark for line in lines) == Counter({"=": TOTAL})
    again = importing.import_(store, sink, MappingOptions())  # the ledger: nothing twice
    assert sum(len(v) for v in by_path(server).values()) == TOTAL
    assert again.stats.get("delivered", 0) == 0


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(DuplicatePolicy.SKIP, TOTAL), (DuplicatePolicy.ALLOW, 2 * TOTAL),
     (DuplicatePolicy.REPLACE, TOTAL)],
)  # fmt: skip
def test_duplicate_policies_with_a_second_store(
    server: EwsServer, tmp_path: Path, policy: DuplicatePolicy, expected: int
) -> None:
    sink = EwsSink(location(server), options())
    importing.import_(make_store(tmp_path, "one"), sink, MappingOptions())
    before = set(server.mailboxes[USER.mailbox].items)
    other = make_store(tmp_path, "two")  # same mail, another store: found by Message-ID
    result = importing.import_(other, sink, MappingOptions(duplicates=policy))
    after = set(server.mailboxes[USER.mailbox].items)
    assert len(after) == expected
    if policy is DuplicatePolicy.REPLACE:
        assert result.stats["replaced"] == TOTAL and not (before & after)


def test_target_root_and_one_selected_folder(server: EwsServer, tmp_path: Path) -> None:
    store = make_store(tmp_path, "store")
    sink = EwsSink(location(server), options())
    only = MappingOptions(target_root=("Imported",), select=("Projects",), include_subfolders=False)
    importing.import_(store, sink, only)
    assert {k: len(v) for k, v in by_path(server).items()} == {("Imported", "Projects"): 1}
    with_subs = MappingOptions(target_root=("Imported",), select=("Projects",))
    importing.import_(store, sink, with_subs)
    assert {k: len(v) for k, v in by_path(server).items()} == {
        ("Imported", "Projects"): 1, ("Imported", "Projects", "A"): 2,
    }  # fmt: skip


def test_registry_opens_the_ews_sink(server: EwsServer) -> None:
    url = f"ews://alice%40example.com@127.0.0.1:{server.port}/EWS/Exchange.asmx?scheme=http"
    sink = open_sink(parse_location(url), options())
    assert isinstance(sink, EwsSink) and USER.password not in sink.key
    sink.close()


@pytest.mark.slow
def test_kill_during_import_and_resume(server: EwsServer, tmp_path: Path) -> None:
    n = 400
    src = tmp_path / "maildir"
    write_maildir(src, {"": [(make_message(i, size=3000), "S") for i in range(n)]})
    store_dir = tmp_path / "store"
    store = Store.create(store_dir)
    pipeline.export(open_source(parse_location(f"maildir:{src}"), ConnectOptions()), store)
    store.close()
    url = f"ews://alice%40example.com@127.0.0.1:{server.port}/EWS/Exchange.asmx?scheme=http"
    env = {**os.environ, "PSTKIT_PASSWORD": USER.password}
    args = [sys.executable, "-m", "pstkit", "import", str(store_dir), url, "--auth", "basic",
            "--opt", "ews_batch_items=10"]  # fmt: skip
    inbox = server.mailboxes[USER.mailbox].distinguished("inbox")
    assert inbox is not None
    for point in (30, 200):
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        while proc.poll() is None and len(server.mailboxes[USER.mailbox].items) < point:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL  # killed mid-run, not finished
        assert len(server.mailboxes[USER.mailbox].items) < n
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    keys = [i.props[KEY].value for i in server.mailboxes[USER.mailbox].items.values()]
    assert len(keys) == n and len(set(keys)) == n  # every item exactly once


def test_pst_straight_to_exchange(server: EwsServer, tmp_path: Path, corpus: Path) -> None:
    pytest.importorskip("pypff")
    pst = corpus / "pst" / "pstsdk_sample1.pst"
    store = Store.create(tmp_path / "store")
    pipeline.export(open_source(parse_location(f"pst:{pst}"), ConnectOptions()), store)
    stored = sum(1 for _ in store.rows())
    assert stored > 0
    sink = EwsSink(location(server), options())
    result = importing.import_(store, sink, MappingOptions())
    assert not result.problems
    assert len(server.mailboxes[USER.mailbox].items) == stored
    assert Counter(line.mark for line in verify(store, sink)) == Counter({"=": stored})
    by_key = {i.props[KEY].value: i for i in server.mailboxes[USER.mailbox].items.values()}
    for row in store.rows():
        item = by_key[row.msg.stable_key]
        assert item.is_draft == (Flag.DRAFT in row.msg.flags)
        assert item.is_read == (Flag.SEEN in row.msg.flags)


def test_cli_imports_a_pst_directly(server: EwsServer, tmp_path: Path, corpus: Path) -> None:
    pytest.importorskip("pypff")
    pst = corpus / "pst" / "pstsdk_sample1.pst"
    url = f"ews://alice%40example.com@127.0.0.1:{server.port}/EWS/Exchange.asmx?scheme=http"
    env = {**os.environ, "PSTKIT_PASSWORD": USER.password}
    args = [sys.executable, "-m", "pstkit", "import", str(pst), url, "--auth", "basic",
            "--work-store", str(tmp_path / "work")]  # fmt: skip
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert USER.password not in done.stdout + done.stderr
    count = len(server.mailboxes[USER.mailbox].items)
    assert count > 0
    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(server.mailboxes[USER.mailbox].items) == count  # nothing twice
