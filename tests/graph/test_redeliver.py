"""`import --redeliver-missing` into Graph (a two-step sink: create, then stamp),
through the CLI in a child process: messages deleted in the mailbox come back
once, the rest is not sent again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO, run_pstkit
from tests.servers.graph.fixtures import SECRET_ENV, UPN, graph, graph_tls
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]
SAMPLE = REPO / "fixtures" / "sample-maildir"


def _connect(graph: GraphServer) -> list[str]:
    return ["--client-id", "pstkit-app", "--client-secret-env", SECRET_ENV,
            "--ca-file", str(graph.ca_file)]  # fmt: skip


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="fixtures/sample-maildir not present")
def test_deleted_messages_come_back_once(graph: GraphServer, tmp_path: Path) -> None:
    store, target = tmp_path / "store", graph.location(UPN)
    assert run_pstkit("export", f"maildir:{SAMPLE}", store).returncode == 0
    res = run_pstkit("import", store, target, *_connect(graph))
    assert res.returncode == 0, res.stderr
    box = graph.state.mailbox(UPN)
    assert box is not None
    whole = sorted((m.mime or b"") for m in box.messages.values())
    for key in list(box.messages)[:3]:
        del box.messages[key]
    res = run_pstkit("verify", store, target, *_connect(graph))
    assert res.returncode == 1 and ", 3 missing," in res.stdout, res.stdout
    before = graph.state.counters.get("imported", 0)
    res = run_pstkit("import", store, target, *_connect(graph), "--redeliver-missing")
    assert res.returncode == 0, res.stderr
    assert sorted((m.mime or b"") for m in box.messages.values()) == whole
    assert graph.state.counters.get("imported", 0) - before <= 3
    assert run_pstkit("verify", store, target, *_connect(graph)).returncode == 0
