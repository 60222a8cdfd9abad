"""mbox framing: exact round trips, and the corpus split like Python's mailbox."""

from __future__ import annotations

import mailbox
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pstkit import mboxfmt

lines = st.lists(
    st.sampled_from([b"From me", b">From x", b">>From y", b"text", b"", b"From: header", b"\r"]),
    max_size=12,
)


@given(lines, st.booleans())
def test_frame_unframe_is_exact(parts: list[bytes], trailing_newline: bool) -> None:
    raw = b"\n".join(parts) + (b"\n" if trailing_newline else b"")
    chunk = mboxfmt.frame(raw, "-", None)
    assert chunk.startswith(b"From - ")
    assert mboxfmt.unframe(chunk, len(raw)) == raw


@given(
    st.lists(
        st.binary(max_size=60).map(lambda b: b"Subject: x\n\n" + b.replace(b"\r", b"")), max_size=5
    )
)
def test_split_reads_back_what_frame_wrote(messages: list[bytes]) -> None:
    data = b"".join(mboxfmt.frame(m, "-", None) for m in messages)
    got = [raw for _, _, raw in mboxfmt.split_mbox(data)]
    assert len(got) == len(messages)
    for raw, original in zip(got, messages, strict=True):
        assert raw.rstrip(b"\n") == original.rstrip(b"\n")


def test_unquoted_from_in_body_does_not_split() -> None:
    data = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nhello\nFrom here on\n\n"
    assert len(list(mboxfmt.split_mbox(data))) == 1


def test_corpus_split_matches_python_mailbox(corpus: Path) -> None:
    for path in sorted((corpus / "mbox").iterdir()):
        ours = [raw for _, _, raw in mboxfmt.split_mbox(path.read_bytes())]
        theirs = [mailbox.mbox(str(path)).get_bytes(k) for k in mailbox.mbox(str(path)).keys()]  # noqa: SIM118
        assert [len(r) for r in ours] == [len(r) for r in theirs], path.name


_NAMES = st.sampled_from([b"Subject", b"From", b"Received", b"X-Note", b"Statuses",
                          b"X-Status-Like"])
_STATE_NAMES = st.sampled_from([b"Status", b"X-Status", b"X-Mozilla-Status", b"status",
                                b"X-Mozilla-Status2", b"X-Mozilla-Keys", b"X-UID",
                                b"X-Keywords", b"X-IMAP", b"X-IMAPbase"])
_VALUE = st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
_FIELD = st.tuples(st.booleans(), _VALUE, st.lists(_VALUE, max_size=2))


@given(st.lists(st.tuples(st.booleans(), _NAMES, _STATE_NAMES, _FIELD), max_size=8),
       st.binary(max_size=60), st.sampled_from([b"\n", b"\r\n"]))
def test_without_state_drops_exactly_the_state_fields(
        fields: list[tuple[bool, bytes, bytes, tuple[bool, bytes, list[bytes]]]],
        body: bytes, eol: bytes) -> None:
    """The message without the state header fields (with their continuation lines) is the
    other fields byte for byte and the body untouched (a `Status:` line in the body stays);
    another value of any state field gives the same; none at all gives `raw` itself."""
    def field(name: bytes, value: bytes, more: list[bytes], spaced: bool) -> bytes:
        return (name + (b" : " if spaced else b": ") + value + eol
                + b"".join(b"\t" + m + eol for m in more))
    raw = other = kept = b""
    for is_state, name, state_name, (spaced, value, more) in fields:
        if is_state:
            raw += field(state_name, value, more, spaced)
            other += field(state_name, value + b"X", [], spaced)
        else:
            line = field(name, value, more, spaced)
            raw, other, kept = raw + line, other + line, kept + line
    tail = eol + b"Status: RO" + eol + body
    raw, other, kept = raw + tail, other + tail, kept + tail
    assert mboxfmt.without_state(raw) == kept
    assert mboxfmt.without_state(other) == kept
    if not any(is_state for is_state, *_ in fields):
        assert mboxfmt.without_state(raw) is raw
