"""`pstkit import` into Graph killed between importMime's POST and the PATCH, then resumed.

The test server parks requests at the chosen moment (`state.Stall`), so the
child process is killed exactly there, not at a random point:
- "before-patch": every item is created (201) and its id reported to the
  ledger; the PATCH batches are parked, then refused. The resume finds the
  items by the ids the ledger kept and finishes them.
- "after-post": the 6th importMime POST is carried out but its answer never
  comes (nor for the POSTs after it); the ledger has no ids yet. The resume
  finds the unstamped items by Message-ID, finishes them, sends the rest.
Either way: every message exactly once, stamped, with its read state and flag.
Messages without a Message-ID are found by subject and sent time instead.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, write_maildir
from tests.servers.graph.checks import box, key_of
from tests.servers.graph.fixtures import APP, SECRET_ENV, UPN, graph, graph_tls
from tests.servers.graph.server import GraphServer
from tests.servers.graph.state import Stall

__all__ = ["graph", "graph_tls"]

COUNT = 12
MAILDIR_FLAGS = ["", "S", "F", "SF"]  # unread, read, flagged, both


def _message(n: int, with_id: bool = True) -> bytes:
    mid = f"Message-ID: <{n}@kill.example>\r\n" if with_id else ""
    head = f"From: a@example.org\r\nTo: b@example.org\r\nSubject: kill {n}\r\n"
    return f"{head}Date: Mon, 3 Feb 2020 04:05:{n:02d} +0000\r\n{mid}\r\nbody {n}\r\n".encode()


def _connect(graph: GraphServer) -> list[str]:
    return [graph.location(UPN), "--client-id", APP, "--client-secret-env", SECRET_ENV,
            "--ca-file", str(graph.ca_file)]  # fmt: skip


def _ledger(store: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(store / "catalog.sqlite") as db:
        return [(str(h), str(t)) for h, t in db.execute("SELECT how, target_id FROM deliveries")]


STALLS = {
    "before-patch": lambda: Stall([("PATCH", "/messages/"), ("POST", "/$batch")]),
    "after-post": lambda: Stall([("POST", "/importMime")], when="after", skip=5),
}


@pytest.mark.slow
@pytest.mark.parametrize("with_id", [True, False], ids=["message-id", "no-message-id"])
@pytest.mark.parametrize("moment", sorted(STALLS))
def test_kill_between_post_and_patch(
    graph: GraphServer, tmp_path: Path, moment: str, with_id: bool
) -> None:
    want = {f"kill {n}": MAILDIR_FLAGS[n % 4] for n in range(1, COUNT + 1)}
    write_maildir(tmp_path / "md", {"": [(_message(n, with_id), MAILDIR_FLAGS[n % 4])
                                         for n in range(1, COUNT + 1)]})  # fmt: skip
    store = tmp_path / "store"
    code, _, err = cli("export", f"maildir:{tmp_path / 'md'}", str(store))
    assert code == 0, err

    graph.state.stall = stall = STALLS[moment]()
    child = subprocess.Popen([sys.executable, "-m", "pstkit", "import", str(store),
                              *_connect(graph)], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert stall.reached.wait(60), "the import never reached the chosen moment"
    finally:
        child.kill()
        child.wait()
    stall.release.set()  # parked requests are refused (before) or dropped (after)
    graph.state.stall = None

    made = list(box(graph).messages.values())
    assert made and not any(key_of(m) for m in made)  # created, none finished: the gap
    ledger = _ledger(store)
    assert ledger and all(how == "sending" for how, _ in ledger)
    if moment == "before-patch":  # the ids came back and the ledger kept them
        assert len(made) == COUNT and sorted(t for _, t in ledger) == sorted(m.id for m in made)
    else:
        assert len(made) < COUNT and not any(t for _, t in ledger)

    code, out, err = cli("import", str(store), *_connect(graph))
    assert code == 0, out + err

    msgs = list(box(graph).messages.values())
    assert Counter(m.props["subject"] for m in msgs) == Counter(list(want))  # once each
    for m in msgs:
        flags = want[m.props["subject"]]
        assert key_of(m), "left unstamped"
        assert m.props["isRead"] is ("S" in flags)
        assert m.props["flag"]["flagStatus"] == ("flagged" if "F" in flags else "notFlagged")
        assert m.created_via == "importMime" and m.props["isDraft"] is False
        assert m.mime == _message(int(m.props["subject"].split()[1]), with_id)
    assert {how for how, _ in _ledger(store)} <= {"delivered", "duplicate"}
