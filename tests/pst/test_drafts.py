"""Every mail item gets a Date and a Message-ID (issue 14): drafts and messages saved by
other programs may carry transport headers without them; before, they were stored without
both, though the README promises "a stable generated one"."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import compat32
from pathlib import Path

import pytest

from pstkit.converters.pst.mime import Body, MapiMessage, build_message
from tests.pst.test_source import EXPECTED, export_all, fetched

DRAFT_HEADERS = "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: draft\r\n"
CREATED = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)


def _draft(**kw: object) -> MapiMessage:
    base: dict[str, object] = {"subject": "draft", "date": CREATED,
                               "transport_headers": DRAFT_HEADERS,
                               "bodies": (Body("text/plain", b"not sent yet"),)}
    return MapiMessage(**{**base, **kw})  # type: ignore[arg-type]


def test_headers_without_date_and_id_get_the_items_time_and_a_stable_id() -> None:
    raw = build_message(_draft())
    msg = email.message_from_bytes(raw, policy=compat32)
    assert msg["Date"] == "Mon, 04 Mar 2024 09:30:00 +0000"
    assert msg["Message-ID"].endswith("@pstkit.invalid>")
    assert build_message(_draft()) == raw  # the same item: the same bytes on every run
    other = email.message_from_bytes(build_message(_draft(subject="another")), policy=compat32)
    assert other["Message-ID"] != msg["Message-ID"]


def test_the_items_own_id_and_the_headers_own_fields_win() -> None:
    own = build_message(_draft(message_id="<x@example.com>"))
    assert email.message_from_bytes(own, policy=compat32)["Message-ID"] == "<x@example.com>"
    dated = DRAFT_HEADERS + "Date: Tue, 05 Mar 2024 10:00:00 +0100\r\nMessage-ID: <y@e.com>\r\n"
    msg = email.message_from_bytes(build_message(_draft(transport_headers=dated)),
                                   policy=compat32)
    assert msg.get_all("Date") == ["Tue, 05 Mar 2024 10:00:00 +0100"]
    assert msg.get_all("Message-ID") == ["<y@e.com>"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_corpus_mail_has_date_and_message_id(corpus: Path, name: str) -> None:
    for results in export_all(corpus / "pst" / name).values():
        for r in fetched(results):
            msg = email.message_from_bytes(r.raw, policy=compat32)
            assert msg["Message-ID"], (name, r.meta.subject)
            assert msg["Date"] or r.meta.received is None, (name, r.meta.subject)
