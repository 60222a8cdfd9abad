"""message/* parts of delivery and read reports are written 7bit/8bit, never base64
(issue 14; RFC 2046 5.2): before, `message/delivery-status` and
`message/disposition-notification` parts were base64, and Python's parser then reported
MissingHeaderBodySeparatorDefect and could not read the status fields."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import compat32

import pytest

from pstkit.converters.pst.mime import Attachment, Body, MapiMessage, build_message

STATUS = (b"Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; bob@example.com\n"
          b"Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 unknown user\n")
MDN = (b"Reporting-UA: outlook.example.com\r\nFinal-Recipient: rfc822;alice@example.com\r\n"
       b"Disposition: manual-action/MDN-sent-manually; displayed\r\n")


def _report(ctype: str, data: bytes, filename: str = "") -> Message:
    att = Attachment(filename, ctype, data)
    raw = build_message(MapiMessage(subject="Undeliverable", bodies=(
        Body("text/plain", b"Delivery has failed."),), attachments=(att,)))
    return email.message_from_bytes(raw, policy=compat32)


@pytest.mark.parametrize(("ctype", "data"), [
    ("message/delivery-status", STATUS),
    ("message/disposition-notification", MDN),
])
def test_report_parts_are_lines_not_base64(ctype: str, data: bytes) -> None:
    msg = _report(ctype, data)
    part = next(p for p in msg.walk() if p.get_content_type() == ctype)
    assert part["Content-Transfer-Encoding"] == "7bit"
    defects = [type(d).__name__ for p in msg.walk() for d in p.defects]
    assert defects == []
    if ctype == "message/delivery-status":  # Python reads the status groups as blocks
        groups = part.get_payload()
        assert [g.get("Action") for g in groups] == [None, "failed"]
        assert groups[1]["Status"] == "5.1.1"
    else:
        assert "Disposition" in part.get_payload()[0]


def test_an_attached_message_is_8bit_when_it_holds_8bit() -> None:
    inner = "From: a@example.com\r\nSubject: Grüße\r\n\r\nHallo Welt – ä\r\n".encode()
    msg = _report("message/rfc822", inner, "fwd.eml")
    part = next(p for p in msg.walk() if p.get_content_type() == "message/rfc822")
    assert part["Content-Transfer-Encoding"] == "8bit"
    assert part.get_payload()[0]["From"] == "a@example.com"


def test_content_that_is_not_lines_is_binary_not_base64() -> None:
    msg = _report("message/delivery-status", b"Status: 5.0.0\x00\r\n")
    part = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
    assert part["Content-Transfer-Encoding"] == "binary"
