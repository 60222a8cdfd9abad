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
