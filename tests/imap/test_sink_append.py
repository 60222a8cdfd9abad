"""Pure translations of the IMAP sink (pstkit.converters.imap.append): table and property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstkit.converters.imap import append as ia
from pstkit.converters.imap.names import decode_mutf7, folder_path
from pstkit.model import Flag

DOVECOT_PERMANENT = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*")


def test_flags_all_kept_when_server_allows_any_keyword() -> None:
    got = ia.choose_flags({Flag.SEEN, Flag.FORWARDED}, {"$Label1", "Work"}, DOVECOT_PERMANENT)
    assert set(got.send) == {"\\Seen", "$Forwarded", "$Label1", "Work"}
    assert got.dropped == ()


def test_flags_filtered_by_permanentflags_and_rest_reported() -> None:
    got = ia.choose_flags({Flag.SEEN, Flag.DRAFT, Flag.FORWARDED}, {"Work"}, ("\\Seen",))
    assert got.send == ("\\Seen",)
    assert set(got.dropped) == {"\\Draft", "$Forwarded", "Work"}


def test_keyword_listed_without_wildcard_is_kept() -> None:
    got = ia.choose_flags(set(), {"$Junk", "Other"}, ("\\Seen", "$junk"))
    assert got.send == ("$Junk",) and got.dropped == ("Other",)


def test_no_permanentflags_means_everything_allowed() -> None:
    got = ia.choose_flags({Flag.DELETED}, {"x"}, None)
    assert got.send == ("\\Deleted", "x")


@pytest.mark.parametrize("kw", ["a b", "(x)", "q\"", "ü", "\\Custom", "", "a]b", "50%"])
def test_keywords_that_are_not_atoms_are_dropped(kw: str) -> None:
    assert ia.choose_flags(set(), {kw}, None).dropped == (kw,)


@pytest.mark.parametrize(("path", "delim", "prefix", "name"), [
    (("INBOX",), "/", "", "INBOX"),
    (("Inbox",), ".", "INBOX.", "INBOX"),
    (("INBOX", "Sub"), ".", "INBOX.", "INBOX.Sub"),
    (("Sent",), ".", "INBOX.", "INBOX.Sent"),
    (("Projekte", "2024"), "/", "", "Projekte/2024"),
    (("Überweisungen",), "/", "", "&ANw-berweisungen"),
    (("Факторы", "日本語"), "/", "", "&BCQEMAQ6BEIEPgRABEs-/&ZeVnLIqe-"),
    (("Q1/Q2",), "/", "", "Q1&IhU-Q2"),
    (("v1.2",), ".", "INBOX.", "INBOX.v1&ICQ-2"),
    (("a|b",), "|", "", "a_b"),
    (("A&B",), "/", "", "A&-B"),
])  # fmt: skip
def test_mailbox_name(path: tuple[str, ...], delim: str, prefix: str, name: str) -> None:
    assert ia.mailbox_name(path, delim, prefix) == name


segment = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@given(st.lists(segment.filter(lambda s: s.upper() != "INBOX"), min_size=1, max_size=4),
       st.sampled_from(["/", "."]), st.sampled_from(["", "INBOX."]))
def test_mailbox_name_round_trips_through_list_parsing(
    path: list[str], delim: str, prefix: str
) -> None:
    """What we CREATE is what the IMAP source reads back as the same path
    (after the look-alike of the delimiter is mapped back)."""
    if prefix and delim != ".":
        prefix = "INBOX/"
    name = ia.mailbox_name(tuple(path), delim, prefix)
    assert name.isascii()
    back = ia.unsubstitute(folder_path(name, delim, prefix), delim)
    assert back == tuple(path)
    assert len(name.removeprefix(prefix).split(delim)) == len(path)  # one level per segment
    assert all(decode_mutf7(p) for p in name.split(delim))


@pytest.mark.parametrize(("when", "text"), [
    (datetime(2024, 3, 4, 9, 30, tzinfo=UTC), "04-Mar-2024 09:30:00 +0000"),
    (datetime(2001, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),
     "31-Dec-2001 21:59:59 +0000"),
    (datetime(1999, 1, 1, 0, 0), "01-Jan-1999 00:00:00 +0000"),
])  # fmt: skip
def test_internaldate(when: datetime, text: str) -> None:
    assert ia.internaldate(when) == text


def test_append_head() -> None:
    when = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
    assert ia.append_head(("\\Seen", "$X"), when, 1234, True) == (
        b'(\\Seen $X) "04-Mar-2024 09:30:00 +0000" {1234+}')
    assert ia.append_head((), None, 5, False) == b"() {5}"


@pytest.mark.parametrize(("text", "want"), [
    ("[APPENDUID 38505 3955] APPEND completed", ia.AppendUid(38505, (3955,))),
    ("[APPENDUID 7 3:5,9] Append completed (0.1 secs).", ia.AppendUid(7, (3, 4, 5, 9))),
    ("[appenduid 7 5:3] ok", ia.AppendUid(7, (3, 4, 5))),
    ("Append completed.", None),
])  # fmt: skip
def test_parse_appenduid(text: str, want: ia.AppendUid | None) -> None:
    assert ia.parse_appenduid(text) == want


@pytest.mark.parametrize(("text", "quota"), [
    ("[OVERQUOTA] Quota exceeded (mailbox for user is full)", True),
    ("Quota exceeded", True),
    ("[TOOBIG] Message too large", False),
    ("[LIMIT] Quota exceeded (mail too large)", False),
    ("[SERVERBUG] Internal error", False),
])  # fmt: skip
def test_over_quota(text: str, quota: bool) -> None:
    assert ia.is_over_quota(text) is quota


def test_target_id() -> None:
    assert ia.parse_target_id(ia.target_id(12, 34)) == (12, 34)
    assert ia.parse_target_id("x:1") is None and ia.parse_target_id("") is None


def test_quote() -> None:
    assert ia.quote('a"b\\c') == '"a\\"b\\\\c"'


def test_dup_key_and_crlf() -> None:
    assert ia.crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    assert ia.dup_key("<x@y>", b"whatever") == "id:<x@y>"
    assert ia.dup_key("", b"Message-ID: <h@y>\r\n\r\nb") == "id:<h@y>"
    assert ia.dup_key("", b"Subject: s\n\nbody\n") == "size:20"  # CRLF size, as on the server


def test_permanent_flags() -> None:
    assert ia.permanent_flags(None) is None
    assert ia.permanent_flags((b"\\Seen", "\\*")) == ("\\Seen", "\\*")
