"""Pure IMAP translations: names, roles, flags, cursors, UID sets, batches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstkit.converters.imap.items import (
    Cursor,
    batches,
    parse_cursor,
    start_after,
    translate_flags,
    uid_set,
)
from pstkit.converters.imap.names import (
    decode_mutf7,
    encode_mutf7,
    folder_path,
    folders_from_list,
    parse_list,
)
from pstkit.errors import SourceError
from pstkit.model import Flag, Role


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("INBOX", "INBOX"),
        ("&ANw-berweisungen", "Überweisungen"),
        ("&BCQEMAQ6BEIEPgRABEs-", "Факторы"),
        ("&ZeVnLIqe-", "日本語"),
        ("Tom &- Jerry", "Tom & Jerry"),
        ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),  # RFC 3501's example
    ],
)
def test_mutf7_table(raw: str, text: str) -> None:
    assert decode_mutf7(raw) == text
    assert encode_mutf7(text) == raw


@given(st.text())
def test_mutf7_round_trip(text: str) -> None:
    # Lone surrogates cannot be UTF-16 encoded; IMAP names never hold them.
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return
    encoded = encode_mutf7(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert decode_mutf7(encoded) == text


@pytest.mark.parametrize("bad", ["&Jjo", "&!!-", "caf\u00e9"])
def test_mutf7_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        decode_mutf7(bad)


def test_malformed_segment_is_kept_as_sent() -> None:
    assert folder_path("A/&Jjo", "/") == ("A", "&Jjo")


def test_split_before_decode() -> None:
    # "&AC8-" is "/": a decoded segment may contain the delimiter character.
    assert folder_path("Foo/a&AC8-b", "/") == ("Foo", "a/b")


@pytest.mark.parametrize(
    ("raw", "delim", "prefix", "path"),
    [
        ("INBOX", ".", "INBOX.", ("INBOX",)),
        ("INBOX.Sent", ".", "INBOX.", ("Sent",)),
        ("INBOX.a.b", ".", "INBOX.", ("a", "b")),
        ("inbox", "/", "", ("INBOX",)),
        ("INBOX/child", "/", "", ("INBOX", "child")),
        ("Flat", None, "", ("Flat",)),
    ],
)
def test_folder_path(raw: str, delim: str | None, prefix: str, path: tuple[str, ...]) -> None:
    assert folder_path(raw, delim, prefix) == path


def test_folders_from_dovecot_like_list() -> None:
    entries = parse_list(
        [
            ((b"\\HasNoChildren",), b"/", b"INBOX"),
            ((b"\\Noselect", b"\\HasChildren"), b"/", b"&ANw-berweisungen"),
            ((b"\\HasNoChildren",), b"/", b"&ANw-berweisungen/&BCQEMAQ6BEIEPgRABEs-"),
            ((b"\\HasNoChildren", b"\\Sent"), b"/", b"Sent"),
            ((b"\\Junk",), b"/", b"Spam"),
            ((b"\\NonExistent",), b"/", b"Gone"),
            ((), b"/", b"a/b/c"),  # parents not listed
            ((), b"/", b"Sent"),  # duplicate line
        ]
    )
    got = {f.path: f for f in folders_from_list(entries)}
    assert next(iter(got)) == ("INBOX",)
    assert got[("INBOX",)].role is Role.INBOX
    assert got[("Sent",)].role is Role.SENT
    assert got[("Spam",)].role is Role.JUNK
    assert got[("Überweisungen",)].selectable is False
    raw = "&ANw-berweisungen/&BCQEMAQ6BEIEPgRABEs-"
    assert got[("Überweisungen", "Факторы")].source_name == raw
    assert ("Gone",) not in got
    assert got[("a",)].selectable is False and got[("a", "b")].selectable is False
    assert got[("a", "b", "c")].selectable is True
    paths = list(got)
    assert all(paths.index(p[:-1]) < paths.index(p) for p in paths if len(p) > 1)


def test_roles_by_name_only_without_special_use() -> None:
    courier = parse_list(
        [
            ((), b".", b"INBOX"),
            ((), b".", b"INBOX.Sent Items"),
            ((), b".", b"INBOX.Trash"),
            ((), b".", b"INBOX.Projects.Trash"),
        ]
    )
    got = {f.path: f.role for f in folders_from_list(courier, "INBOX.")}
    assert got == {
        ("INBOX",): Role.INBOX,
        ("Sent Items",): Role.SENT,
        ("Trash",): Role.TRASH,
        ("Projects",): None,
        ("Projects", "Trash"): None,
    }
    special = parse_list([((b"\\Sent",), b"/", b"Gesendet"), ((), b"/", b"Trash")])
    got = {f.path: f.role for f in folders_from_list(special)}
    assert got == {("Gesendet",): Role.SENT, ("Trash",): None}


def test_translate_flags() -> None:
    flags, keywords = translate_flags(
        [
            b"\\Seen",
            b"\\ANSWERED",
            b"\\Flagged",
            b"\\Draft",
            b"\\Deleted",
            b"\\Recent",
            b"$Forwarded",
            b"$Label1",
            "NonJunk",
        ]
    )
    assert flags == {
        Flag.SEEN,
        Flag.ANSWERED,
        Flag.FLAGGED,
        Flag.DRAFT,
        Flag.DELETED,
        Flag.FORWARDED,
    }
    assert keywords == {"$Label1", "NonJunk"}


def test_cursor() -> None:
    assert parse_cursor(None) is None
    c = parse_cursor("1795312207:42")
    assert c == Cursor(1795312207, 42) and str(c) == "1795312207:42"
    assert start_after(c, 1795312207) == 42
    assert start_after(c, 99) == 0  # UIDVALIDITY changed: read everything again
    with pytest.raises(SourceError):
        parse_cursor("garbage")


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([], ""),
        ([5], "5"),
        ([1, 2, 3, 7], "1:3,7"),
        ([9, 3, 2, 1, 9], "1:3,9"),
    ],
)
def test_uid_set(uids: list[int], text: str) -> None:
    assert uid_set(uids) == text


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)),
        max_size=200,
        unique_by=lambda t: t[0],
    ),
    st.integers(1, 50),
    st.integers(1, 10**6),
)
def test_batches_bounded_and_complete(
    items: list[tuple[int, int]], count: int, max_bytes: int
) -> None:
    sizes = dict(items)
    out = list(batches(items, count, max_bytes))
    assert [u for b in out for u in b] == [u for u, _ in items]
    for b in out:
        assert len(b) <= count
        assert len(b) == 1 or sum(sizes[u] for u in b) <= max_bytes
