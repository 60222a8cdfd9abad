"""A request the server refuses because of one item it holds: that item fails, the rest arrive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pstkit.converters.ews.sink import EwsSink
from pstkit.model import Role, StoredMessage
from pstkit.protocols import Delivered, Failed
from tests.servers.ews import EwsServer, Kind
from tests.servers.ews.testkit import USER, location, options
from tests.servers.ews.testkit import stored as make

pytest.importorskip("exchangelib")

INBOX = ("Inbox",)
GROMOX_E3045 = "E-3045: failed to find proper type for node 'DistributionList'"


@pytest.fixture
def sink(server: EwsServer) -> Iterator[EwsSink]:
    s = EwsSink(location(server), options(extra={"ews_max_backoff": "0"}))
    s.ensure_folder(INBOX, Role.INBOX)
    yield s
    s.close()


def mail(n: int, marker: str = "") -> bytes:
    return (
        f"Message-ID: <r{n}@example.com>\r\nSubject: refusal {n}\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody {n} {marker}\r\n"
    ).encode()


def batch(markers: list[str]) -> list[tuple[StoredMessage, bytes]]:
    return [(make(mail(i, m), i), mail(i, m)) for i, m in enumerate(markers)]


def subjects(server: EwsServer) -> list[str]:
    box = server.mailboxes[USER.mailbox]
    inbox = box.distinguished("inbox")
    assert inbox is not None
    return sorted(i.subject for i in box.items_in(inbox.id))


def test_a_soap_fault_caused_by_one_item_fails_that_item_only(
    server: EwsServer, sink: EwsSink
) -> None:
    server.faults.request_faults[b"POISON"] = GROMOX_E3045
    results = sink.put_batch(INBOX, batch(["", "", "POISON", "", ""]))
    assert [type(r).__name__ for r in results] == ["Delivered"] * 2 + ["Failed"] + ["Delivered"] * 2
    failed = results[2]
    assert isinstance(failed, Failed)
    assert GROMOX_E3045 in failed.reason  # the server's words, no network hint
    assert "connect" not in failed.reason and "HTTP" not in failed.reason
    assert subjects(server) == [f"refusal {i}" for i in (0, 1, 3, 4)]


def test_every_item_refused_is_reported_item_by_item(server: EwsServer, sink: EwsSink) -> None:
    server.faults.request_faults[b"POISON"] = "E-3046: missing required child element"
    results = sink.put_batch(INBOX, batch(["POISON", "POISON"]))
    assert all(isinstance(r, Failed) and "E-3046" in r.reason for r in results)
    assert subjects(server) == []


def test_the_next_batch_goes_on(server: EwsServer, sink: EwsSink) -> None:
    server.faults.request_faults[b"POISON"] = GROMOX_E3045
    sink.put_batch(INBOX, batch(["POISON"]))
    later = sink.put_batch(INBOX, [(make(mail(9), 9), mail(9))])
    assert isinstance(later[0], Delivered)


def test_an_unreadable_answer_is_not_a_refusal(server: EwsServer, sink: EwsSink) -> None:
    """An answer that is no response and no fault (gromox once sent an empty <CreateItem/>
    for items it had created) may hide created items: look them up, do not fail them."""
    server.faults.arm(Kind.EMPTY_ANSWER, op="CreateItem")
    results = sink.put_batch(INBOX, batch(["", ""]))
    assert all(isinstance(r, Delivered) for r in results), results
    assert subjects(server) == ["refusal 0", "refusal 1"]  # not lost, not doubled
    assert server.operations.count("CreateItem") == 1  # found by the look-up
