"""Contacts and events under faults: ambiguous creates, refused changes, kills.

Nothing lost, nothing doubled: every item ends up once in the test server,
with its stamped key; a half-made series is never left looking done.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pstkit.converters.graph import jsonmail as gj
from pstkit.model import Delivered, Fetched, FetchResult, FolderInfo, ItemKind, MessageMeta, Role
from pstkit.options import FetchFilter
from pstkit.pipeline import export
from pstkit.protocols import Failed
from pstkit.store import Store
from tests.helpers import REPO, cli
from tests.servers.graph import pim_instances as inst
from tests.servers.graph.fixtures import (
    SECRET_ENV,
    UPN,
    graph,
    graph_tls,
    open_sink,
    pim_box,
    source_key,
    stored,
)
from tests.servers.graph.pim import PimItem
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]  # fixtures used by name

SERIES = (
    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTART:20240101T090000Z\r\n"
    "DTEND:20240101T093000Z\r\nSUMMARY:Standup\r\nRRULE:FREQ=DAILY;COUNT=10\r\n"
    "EXDATE:20240103T090000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:s\r\n"
    "RECURRENCE-ID:20240105T090000Z\r\nDTSTART:20240105T100000Z\r\nDTEND:20240105T103000Z\r\n"
    "SUMMARY:Standup (late)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


ATTACHED = (
    "Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/calendar\r\n\r\n" + SERIES + "--b\r\n"
    "Content-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; "
    "filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
).encode()


def wrap(part_type: str, text: str, subject: str = "item") -> bytes:
    return (
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b"
        f"\r\n\r\n--b\r\nContent-Type: {part_type}; charset=utf-8\r\n\r\n{text}--b--\r\n"
    ).encode()


def _event(n: int, raw: bytes) -> Any:
    return replace(stored(n, raw), kind=ItemKind.EVENT, folder=("Calendar",))


def _calendar_sink(server: GraphServer) -> Any:
    sink = open_sink(server)
    sink.folders()
    sink.ensure_folder(("Calendar",), Role.CALENDAR, "IPF.Appointment")
    return sink


def test_series_changes_and_attachment_applied(graph: GraphServer) -> None:
    sink = _calendar_sink(graph)
    try:
        (res,) = sink.put_batch(("Calendar",), [(_event(1, ATTACHED), ATTACHED)])
        assert isinstance(res, Delivered) and res.note == ""
    finally:
        sink.close()
    (series,) = pim_box(graph).items.values()
    assert [(a.name, a.data) for a in series.attachments] == [("a.pdf", b"%PDF-")]
    assert source_key(series) == "store-7f3a:1"  # final key, not "#incomplete"
    assert series.cancelled == {"2024-01-03T09:00:00Z"}
    assert series.exceptions["2024-01-05T09:00:00Z"]["subject"] == "Standup (late)"


@pytest.mark.parametrize(("path", "method"), [(".2024", "PATCH"), ("/attachments", "POST")])
def test_refused_change_leaves_no_half_made_series(
    graph: GraphServer, path: str, method: str
) -> None:
    graph.state.inject(400, path_contains=path, method=method, code="ErrorInvalidRequest")
    sink = _calendar_sink(graph)
    try:
        raw = ATTACHED
        (res,) = sink.put_batch(("Calendar",), [(_event(1, raw), raw)])
        assert isinstance(res, Failed) and "refused" in res.reason
    finally:
        sink.close()
    assert not pim_box(graph).items  # the series was removed again


@pytest.mark.parametrize("path", ["/events", ".2024"])
def test_ambiguous_event_create_or_change_is_settled(graph: GraphServer, path: str) -> None:
    # The connection drops after the server did the work: the POST of the series,
    # or the DELETE of an occurrence (then the half-made series is cleaned up).
    method = "POST" if path == "/events" else "DELETE"
    graph.state.inject(0, when="after", path_contains=path, method=method)
    sink = _calendar_sink(graph)
    try:
        raw = wrap("text/calendar", SERIES)
        (res,) = sink.put_batch(("Calendar",), [(_event(1, raw), raw)])
        assert isinstance(res, Delivered)
    finally:
        sink.close()
    items = list(pim_box(graph).items.values())
    assert [source_key(i) for i in items] == ["store-7f3a:1"]
    assert items[0].cancelled == {"2024-01-03T09:00:00Z"}


def test_incomplete_series_from_a_killed_run_is_removed(graph: GraphServer) -> None:
    sink = _calendar_sink(graph)
    try:
        pim = pim_box(graph)
        ext = {"String {6b0c3e1d-7a2f-4c55-9e0b-2f5d8a61c4e7} Name PstkitSourceKey":
               "store-7f3a:1" + gj.INCOMPLETE}  # fmt: skip
        pim.items["half"] = PimItem("half", "event", pim.default_calendar, {"subject": "x"}, ext)
        raw = wrap("text/calendar", SERIES)
        assert sink.find_duplicates(_event(1, raw), raw, ("Calendar",)) == []
        assert "half" not in pim.items
    finally:
        sink.close()


# --- expansion in the test server -------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "rng", "want"),
    [
        ({"type": "daily", "interval": 2}, {"type": "numbered", "numberOfOccurrences": 3},
         ["2024-01-02", "2024-01-04", "2024-01-06"]),
        ({"type": "weekly", "interval": 2, "daysOfWeek": ["tuesday", "friday"],
          "firstDayOfWeek": "sunday"}, {"type": "endDate", "endDate": "2024-01-20"},
         ["2024-01-02", "2024-01-05", "2024-01-16", "2024-01-19"]),
        ({"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"],
          "index": "second"}, {"type": "numbered", "numberOfOccurrences": 3},
         ["2024-01-09", "2024-02-13", "2024-03-12"]),
        ({"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29},
         {"type": "numbered", "numberOfOccurrences": 2}, ["2024-02-29", "2028-02-29"]),
        ({"type": "relativeMonthly", "interval": 1, "index": "last",
          "daysOfWeek": list(inst.WEEKDAYS)}, {"type": "numbered", "numberOfOccurrences": 2},
         ["2024-01-31", "2024-02-29"]),
    ],
)  # fmt: skip
def test_server_expansion(pattern: dict[str, Any], rng: dict[str, Any], want: list[str]) -> None:
    series = {
        "start": {"dateTime": "2024-01-02T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2024-01-02T10:00:00", "timeZone": "UTC"},
        "recurrence": {"pattern": pattern, "range": {"startDate": "2024-01-02", **rng}},
    }
    until = datetime(2030, 1, 1, tzinfo=UTC)
    got = [o.date().isoformat() for o, _ in inst.expand(series, until)]
    assert got == want
    assert date.fromisoformat(got[0]) >= date(2024, 1, 2)


# --- kill and resume through the CLI ------------------------------------------------


def vcard(n: int) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {n}\r\nEMAIL:p{n}@example.org\r\nEND:VCARD\r\n"


@dataclass
class ContactSource:
    count: int
    key: str = "test://contacts"
    max_connections: int = 1

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(("Contacts",), Role.CONTACTS, container_class="IPF.Contact")]

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        for n in range(1, self.count + 1):
            raw = wrap("text/vcard", vcard(n), f"Person {n}")
            meta = MessageMeta(folder.path, str(n), "1", size=len(raw), kind=ItemKind.CONTACT)
            yield Fetched(meta, raw, str(n))

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


def _connect(server: GraphServer) -> list[str]:
    return ["--client-id", "pstkit-app", "--client-secret-env", SECRET_ENV,
            "--ca-file", str(server.ca_file)]  # fmt: skip


@pytest.mark.slow
def test_kill_and_resume_contacts(graph: GraphServer, tmp_path: Path) -> None:
    count = 40
    store = tmp_path / "store"
    with Store.create(store) as st:
        export(ContactSource(count), st)
    graph.state.limits.delay = 0.05  # slow enough to be killed mid-way
    args = ["import", str(store), graph.location(UPN), *_connect(graph)]
    child = subprocess.Popen([sys.executable, "-m", "pstkit", *args], cwd=REPO,
                             env=dict(os.environ), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while graph.state.counters.get("contact_created", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.kill()
    child.wait()
    made = len(pim_box(graph).items)
    assert 5 <= made < count
    graph.state.limits.delay = 0
    code, out, err = cli(*args)
    assert code == 0, out + err
    keys = Counter(source_key(i) for i in pim_box(graph).items.values())
    assert len(keys) == count and set(keys.values()) == {1}
    code, out, err = cli("verify", str(store), graph.location(UPN), *_connect(graph))
    assert code == 0, out + err
