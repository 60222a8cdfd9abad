"""GraphSink against the Graph test server: both modes, folders, drafts, duplicates."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from pstkit.converters.graph import jsonmail as gj
from pstkit.model import Delivered, Flag, Role
from pstkit.protocols import Failed
from tests.servers.graph import messages as server_messages
from tests.servers.graph.checks import box, check_delivered, key_of, make_batch
from tests.servers.graph.fixtures import (
    corpus_messages,
    graph,
    graph_log,
    graph_tls,
    open_sink,
    stored,
)
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]  # fixtures used by name


def test_import_mime_delivers_exact_bytes_once(graph: GraphServer, corpus: Path) -> None:
    batch = make_batch(corpus, 12)
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Projects", "2024"), None)
        results = sink.put_batch(("Projects", "2024"), batch)
        assert all(isinstance(r, Delivered) and r.target_id for r in results)
        for (_msg, raw), r in zip(batch, results, strict=True):
            assert isinstance(r, Delivered)
            assert sink.read_mime(r.target_id) == raw  # $value read-back
        assert sink.mode == "importMime" and sink.mode_counts["importMime"] == 12
    finally:
        sink.close()
    check_delivered(graph, batch, ("Projects", "2024"), "importMime")


@pytest.mark.parametrize("refusal", [404, 403])
def test_json_fallback_when_import_mime_refused(
    graph: GraphServer, corpus: Path, refusal: int, caplog: pytest.LogCaptureFixture
) -> None:
    graph.state.import_mime = refusal
    batch = make_batch(corpus, 12)
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Sent",), Role.SENT)
        with graph_log(caplog):
            results = sink.put_batch(("Sent",), batch)
        assert all(isinstance(r, Delivered) for r in results), results
        assert sink.mode == "json" and sink.mode_counts == {
            "importMime": 0,
            "json": 12,
            "mimeDraft": 0,
        }
        assert "importMime is not available" in caplog.text
    finally:
        sink.close()
    check_delivered(graph, batch, ("Sent Items",), "json")


def test_well_known_roles_and_folder_tree(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        sink.ensure_folder(("Gesendete Elemente",), Role.SENT)
        sink.ensure_folder(("Inbox", "Lists", "python-dev"), None)
        sink.ensure_folder(("inbox", "lists"), None)  # Exchange compares names case-blind
        found = {f.path: f.role for f in sink.folders()}
    finally:
        sink.close()
    assert found[("Sent Items",)] is Role.SENT
    assert found[("Inbox",)] is Role.INBOX and found[("Deleted Items",)] is Role.TRASH
    assert found[("Junk Email",)] is Role.JUNK and found[("Archive",)] is Role.ARCHIVE
    assert ("Inbox", "Lists", "python-dev") in found
    assert sum(1 for p in found if p[:2] == ("Inbox", "Lists")) == 2  # no second "lists"


def test_resume_finds_what_was_delivered(graph: GraphServer, corpus: Path) -> None:
    batch = make_batch(corpus, 8)
    first = open_sink(graph)
    try:
        first.put_batch(("Inbox",), batch[:5])
    finally:
        first.close()  # "killed" here; a new run starts from scratch
    second = open_sink(graph)
    try:
        todo = [(m, r) for m, r in batch if not second.find_duplicates(m, r, ("Inbox",))]
        assert [m.id for m, _ in todo] == [6, 7, 8]
        second.put_batch(("Inbox",), todo)
        inventory = list(second.inventory(("Inbox",)))
        assert sorted(i.stable_key for i in inventory) == sorted(m.stable_key for m, _ in batch)
        assert all(i.size for i in inventory)
        second.delete(("Inbox",), [inventory[0].target_id, inventory[0].target_id])
        assert len(list(second.inventory(("Inbox",)))) == 7
    finally:
        second.close()


def test_find_duplicates_by_message_id_for_foreign_items(graph: GraphServer, corpus: Path) -> None:
    (raw,) = corpus_messages(corpus, 1)
    graph.state.import_mime = 404
    sink = open_sink(graph)
    try:
        msg = stored(1, raw, message_id="<unique-1@example>")
        sink.put_batch(("Inbox",), [(msg, raw)])
        other_store = stored(99, raw, message_id="<unique-1@example>")  # different stable key
        assert len(sink.find_duplicates(other_store, raw, ("Inbox",))) == 1
    finally:
        sink.close()


def _big_message(size: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@example.org", "big"
    m["Message-ID"], m["Date"] = "<big@example.org>", "Tue, 02 Feb 2021 10:00:00 +0000"
    m.set_content("see attachment")
    m.add_attachment(
        bytes(range(256)) * (size // 256),
        maintype="application",
        subtype="octet-stream",
        filename="big.bin",
    )
    return m.as_bytes()


def test_large_message_uses_upload_session(
    graph: GraphServer, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _big_message(5 * 1024 * 1024)
    sink = open_sink(graph)
    try:
        with graph_log(caplog):
            (r,) = sink.put_batch(("Inbox",), [(stored(1, raw, frozenset({Flag.SEEN})), raw)])
        assert isinstance(r, Delivered)
        assert sink.mode_counts == {"importMime": 0, "json": 1, "mimeDraft": 0}
        assert "over importMime's 4 MB request cap" in caplog.text
    finally:
        sink.close()
    (m,) = box(graph).messages.values()
    assert [len(a.data) for a in m.attachments] == [5 * 1024 * 1024 // 256 * 256]
    assert key_of(m) == "store-7f3a:1" and m.props["isDraft"] is False
    assert any(p.startswith("/upload/") for _t, _m, p, _s in graph.state.log)


def test_bad_message_is_failed_not_fatal(graph: GraphServer) -> None:
    graph.state.limits.max_header_bytes = 5  # the server refuses any X- header now
    graph.state.import_mime = 404
    raw = b"From: a@example.org\r\nX-Spam: yes\r\nSubject: hi\r\n\r\nbody\r\n"
    good = b"From: a@example.org\r\nSubject: ok\r\n\r\nbody\r\n"
    sink = open_sink(graph)
    try:
        r = sink.put_batch(("Inbox",), [(stored(1, raw), raw), (stored(2, good), good)])
    finally:
        sink.close()
    assert isinstance(r[0], Failed) and "InvalidInternetMessageHeaderCollection" in r[0].reason
    assert isinstance(r[1], Delivered)


def test_half_made_copy_is_removed_not_taken_for_a_duplicate(graph: GraphServer) -> None:
    raw = b"From: a@example.org\r\nSubject: x\r\nMessage-ID: <half@example.org>\r\n\r\nhi\r\n"
    msg = stored(1, raw, message_id="<half@example.org>")
    # What a run killed between "create" and "attachments done" leaves behind.
    made = gj.json_message(msg, raw, msg.stable_key + gj.INCOMPLETE).body
    inbox = graph.state.folder(box(graph), "inbox")
    assert inbox is not None
    half = server_messages.create_json(graph.state, inbox.id, made)
    box(graph).messages[half.id] = half
    sink = open_sink(graph)
    try:
        assert sink.find_duplicates(msg, raw, ("Inbox",)) == []
        assert half.id not in box(graph).messages
        assert isinstance(sink.put_batch(("Inbox",), [(msg, raw)])[0], Delivered)
    finally:
        sink.close()
    assert [key_of(m) for m in box(graph).messages.values()] == [msg.stable_key]


@pytest.mark.parametrize("ambiguous", [False, True])
def test_drafts_stay_drafts(graph: GraphServer, ambiguous: bool) -> None:
    if ambiguous:  # the draft is made, then the answer is lost
        graph.state.inject(0, count=1, when="after", method="POST", path_contains="/messages")
    head = b"From: a@example.org\r\nSubject: unfinished\r\nMessage-ID: <d1@example.org>\r\n"
    raw = head + b"\r\nto do\r\n"
    msg = stored(1, raw, frozenset({Flag.DRAFT, Flag.FLAGGED}), message_id="<d1@example.org>")
    sink = open_sink(graph)
    try:
        (r,) = sink.put_batch(("Drafts",), [(msg, raw)])
        assert isinstance(r, Delivered)
        assert sink.mode_counts["mimeDraft"] == 1
    finally:
        sink.close()
    (m,) = box(graph).messages.values()
    assert m.props["isDraft"] is True and m.mime == raw
    assert key_of(m) == msg.stable_key and m.props["flag"]["flagStatus"] == "flagged"
