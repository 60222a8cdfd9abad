"""Pure pieces behind issue 13: the APPEND wire form of stored bytes, literal8 heads,
HEADER.FIELDS replies in either spelling, the reconnect budget, and the path rewrite
of the Courier test fixture."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstkit.converters.imap.append import append_head, crlf, substitute, wire_form
from pstkit.converters.imap.conn import retry
from pstkit.converters.imap.items import header_fields
from pstkit.converters.imap.names import LOOKALIKE, restore_segment
from pstkit.errors import ConnectError
from pstkit.verify import crlf as verify_crlf
from tests.servers.courier import SOCKET, rewrite_paths


@pytest.mark.parametrize(("raw", "binary", "wire"), [
    (b"A: b\n\nbody\n", False, b"A: b\r\n\r\nbody\r\n"),
    (b"A: b\r\n\r\nbody\r\n", False, b"A: b\r\n\r\nbody\r\n"),
    (b"mixed\r\nends\nhere", False, b"mixed\r\nends\r\nhere"),
    (b"bare\rCR stays", False, b"bare\rCR stays"),
    (b"nul\0byte\n", False, None),
    (b"nul\0byte\n", True, b"nul\0byte\r\n"),
])  # fmt: skip
def test_wire_form(raw: bytes, binary: bool, wire: bytes | None) -> None:
    assert wire_form(raw, binary=binary) == wire


@given(st.binary(max_size=200))
def test_wire_form_has_no_bare_lf_and_keeps_everything_else(raw: bytes) -> None:
    wire = wire_form(raw, binary=True)
    assert wire is not None
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert wire.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert crlf(wire) == wire  # idempotent: what verify compares is stable


def test_append_head_literal8_for_binary() -> None:
    assert append_head(["\\Seen"], None, 12, True, binary=True) == b"(\\Seen) ~{12+}"
    assert append_head([], None, 5, False) == b"() {5}"


@pytest.mark.parametrize("key", [
    b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]",
    b'BODY[HEADER.FIELDS ("MESSAGE-ID" "SUBJECT")]',  # Courier
    b"BODY[HEADER.FIELDS (SUBJECT)]",
])  # fmt: skip
def test_header_fields_in_either_spelling(key: bytes) -> None:
    assert header_fields({b"RFC822.SIZE": 10, key: b"Subject: x\r\n\r\n"}) == b"Subject: x\r\n\r\n"


def test_header_fields_missing() -> None:
    assert header_fields({b"RFC822.SIZE": 10}) == b""


def _failing(calls: list[int]) -> object:
    calls.append(1)
    raise ConnectError("imap://x", "no answer within 1 s")


def test_retry_budget_stops_after_the_first_slow_attempt() -> None:
    calls: list[int] = []
    with pytest.raises(ConnectError):
        retry(lambda: _failing(calls), 6, 0.0, budget=0.0)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(ConnectError):
        retry(lambda: _failing(calls), 6, 0.0)
    assert len(calls) == 6


def test_rewrite_paths_plain_and_overlapped_forms() -> None:
    new = b"/tmp/pcabcdefgh/authdaemon.skt"
    blob = (b"\x7fELF" + SOCKET + b"\0" + SOCKET[:16] + SOCKET[15:] + b"\0"
            + SOCKET[:16] + SOCKET[14:] + b"Error" + b"/etc/courier/authdaemonrc\0")
    out = rewrite_paths(blob, {SOCKET: new, b"/etc/courier/authdaemonrc": b"/tmp/pc/rc"})
    assert len(out) == len(blob)
    assert SOCKET[:16] not in out and b"/etc/courier" not in out
    assert new + b"\0" in out and new[:16] + new[15:] + b"\0" in out
    assert new[:16] + new[14:] + b"Error" in out
    assert b"/tmp/pc/rc\0" in out


def test_rewrite_paths_refuses_what_cannot_fit() -> None:
    with pytest.raises(ValueError, match="longer"):
        rewrite_paths(SOCKET + b"\0", {SOCKET: SOCKET + b"x"})
    with pytest.raises(ValueError, match="not found"):
        rewrite_paths(b"nothing here", {SOCKET: b"/x"})


@pytest.mark.parametrize(("segment", "delimiter", "name"), [
    ("a/b", ".", "a\u2215b"),  # Cyrus, Courier, Dovecot maildir refuse "/" under "."
    ("a.b", ".", "a\u2024b"),
    ("a.b/c", "/", "a.b\u2215c"),
    ("plain", "/", "plain"),
    ("a^b", "^", "a_b"),
])  # fmt: skip
def test_substitute_and_restore(segment: str, delimiter: str, name: str) -> None:
    assert substitute(segment, delimiter) == name
    if delimiter in LOOKALIKE:
        assert restore_segment(name, delimiter) == segment


_LINE_BYTES = st.binary(max_size=40) | st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"])


@given(st.lists(_LINE_BYTES, max_size=30).map(b"".join))
def test_crlf_fast_paths_equal_the_regexes(raw: bytes) -> None:
    """Both CRLF forms skip the rewrite for mail that is CRLF already; whatever the
    bytes, the result is what the regex of each gives."""
    assert crlf(raw) == re.sub(rb"\r?\n", b"\r\n", raw)
    assert verify_crlf(raw) == re.sub(rb"\r\n|\r|\n", b"\r\n", raw)


def test_crlf_returns_crlf_mail_itself() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n" * 1000
    assert crlf(raw) is raw and verify_crlf(raw) is raw
    assert crlf(b"a\nb") == b"a\r\nb" and crlf(b"a\rb") == b"a\rb"
