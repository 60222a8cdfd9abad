"""Assertions on the test server's mailbox, shared by the Graph sink tests."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from pstkit.converters.graph import jsonmail as gj
from pstkit.model import Flag, StoredMessage
from tests.servers.graph.fixtures import UPN, corpus_messages, stored
from tests.servers.graph.server import GraphServer
from tests.servers.graph.state import Mailbox, Message

Batch = list[tuple[StoredMessage, bytes]]


def box(server: GraphServer) -> Mailbox:
    found = server.state.mailbox(UPN)
    assert found is not None
    return found


def key_of(m: Message) -> str:
    for pid, value in m.ext.items():
        if pid.lower() == f"string {{{gj.PSTKIT_GUID}}} name pstkitsourcekey":
            return value
    return ""


def folder_path(server: GraphServer, m: Message) -> tuple[str, ...]:
    b, fid = box(server), m.folder_id
    out: list[str] = []
    while b.folders[fid].well_known != "msgfolderroot":
        out.insert(0, b.folders[fid].display_name)
        fid = b.folders[fid].parent_id
    return tuple(out)


CASES = [
    (frozenset({Flag.SEEN}), frozenset({"Blue", "$Forwarded"}), "flagged-no"),
    (frozenset({Flag.FLAGGED}), frozenset(), "unread-flagged"),
    (frozenset({Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED}), frozenset({"Red", "Green"}), "all"),
]


def make_batch(corpus: Path, count: int) -> Batch:
    raws = corpus_messages(corpus, count)
    out = []
    for n, raw in enumerate(raws, 1):
        flags, kws, _ = CASES[n % len(CASES)]
        received = datetime(2020, 1, n % 28 + 1, 8, n % 60, 0, tzinfo=UTC)
        out.append((stored(n, raw, flags, kws, received), raw))
    return out


def check_delivered(server: GraphServer, batch: Batch, path: tuple[str, ...], mode: str) -> None:
    msgs = list(box(server).messages.values())
    keys = Counter(key_of(m) for m in msgs)
    for msg, raw in batch:
        assert keys[msg.stable_key] == 1, msg.stable_key
        (m,) = [x for x in msgs if key_of(x) == msg.stable_key]
        assert folder_path(server, m) == path
        assert m.created_via == mode
        assert m.props["isDraft"] is False
        assert m.props["isRead"] is (Flag.SEEN in msg.flags)
        assert msg.received is not None
        if mode == "json":  # set at creation (PR_MESSAGE_DELIVERY_TIME)
            assert m.props["receivedDateTime"] == msg.received.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:  # importMime: as Graph sets it (the test server: the import time, ASSUMED)
            assert m.props["receivedDateTime"] >= "2026"
        verb = gj.last_verb(msg.flags)
        assert m.ext.get("Integer 0x1081") == (None if verb is None else str(verb))
        want_flag = "flagged" if Flag.FLAGGED in msg.flags else "notFlagged"
        assert m.props["flag"]["flagStatus"] == want_flag
        assert m.props["categories"] == sorted(k for k in msg.keywords if not k.startswith("$"))
        if mode == "importMime":
            assert m.mime == raw
        else:
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            try:
                sent = parsedate_to_datetime(str(parsed["Date"]))
            except (TypeError, ValueError, IndexError):
                continue
            assert m.props["sentDateTime"] == sent.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
