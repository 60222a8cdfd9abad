"""End to end through the CLI: Maildir -> store -> Graph test server, then verify.

Uses the lead's pipeline and CLI as they are; the Graph-specific checks
(bytes, flags, folders, exactly once) look at the test server's mailbox.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from pstkit.model import Flag
from tests.helpers import REPO, cli, maildir_content
from tests.servers.graph.fixtures import SECRET_ENV, UPN, graph, graph_tls
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]

SAMPLE = REPO / "fixtures" / "sample-maildir"


def _connect(graph: GraphServer) -> list[str]:
    return ["--client-id", "pstkit-app", "--client-secret-env", SECRET_ENV,
            "--ca-file", str(graph.ca_file)]  # fmt: skip


def _server_content(graph: GraphServer) -> Counter[tuple[str, bool, bool]]:
    box = graph.state.mailbox(UPN)
    assert box is not None
    return Counter(
        (hashlib.sha256(m.mime or b"").hexdigest(), bool(m.props["isRead"]),
         m.props["flag"]["flagStatus"] == "flagged")
        for m in box.messages.values()
    )  # fmt: skip


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="fixtures/sample-maildir not present")
def test_maildir_to_graph_and_verify(graph: GraphServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, _, err = cli("export", str(SAMPLE), str(store))
    assert code == 0, err
    target = graph.location(UPN)
    code, _, err = cli("import", str(store), target, *_connect(graph))
    assert code == 0, err
    want = Counter(
        (digest, Flag.SEEN in flags, Flag.FLAGGED in flags)
        for items in maildir_content(SAMPLE).values()
        for digest, flags in items
    )
    assert _server_content(graph) == want  # every message once, bytes and state kept
    box = graph.state.mailbox(UPN)
    assert box is not None
    for m in box.messages.values():  # drafts stay drafts, everything else is delivered mail
        how = ("mimeDraft", True) if m.props["isDraft"] else ("importMime", False)
        assert (m.created_via, m.props["isDraft"]) == how
    assert sum(m.props["isDraft"] for m in box.messages.values()) == sum(
        Flag.DRAFT in flags for items in maildir_content(SAMPLE).values() for _, flags in items
    )
    names = {f.display_name for f in box.folders.values()}
    assert {"v1.2 release", "Überweisungen 2024", "日本語"} <= names

    code, out, err = cli("verify", str(store), target, *_connect(graph))
    assert code == 0, out + err

    before = graph.state.counters.get("imported", 0)
    code, _, err = cli("import", str(store), target, *_connect(graph))
    assert code == 0, err
    assert graph.state.counters.get("imported", 0) == before  # a re-run sends nothing


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="fixtures/sample-maildir not present")
def test_maildir_to_graph_json_fallback_and_verify(graph: GraphServer, tmp_path: Path) -> None:
    graph.state.import_mime = 404
    store = tmp_path / "store"
    assert cli("export", str(SAMPLE), str(store))[0] == 0
    target = graph.location(UPN)
    code, _, err = cli("import", str(store), target, *_connect(graph))
    assert code == 0, err
    box = graph.state.mailbox(UPN)
    assert box is not None
    count = sum(len(items) for items in maildir_content(SAMPLE).values())
    assert len(box.messages) == count
    assert {m.created_via for m in box.messages.values()} == {"json", "mimeDraft"}
    code, out, err = cli("verify", "--all", str(store), target, *_connect(graph))
    assert code == 0, out + err
    assert out.count("=") >= count
