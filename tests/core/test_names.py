"""Pure name and flag translations: reversible, FAT-safe, Maildir-correct."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pstkit.model import Flag
from pstkit.names import (
    decode_mutf7,
    escape_segment,
    fit_name,
    flags_to_info,
    info_to_flags,
    maildirpp_dirname,
    maildirpp_path,
    split_maildir_name,
    unescape_segment,
)

FAT_FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)}
segments = st.text(min_size=1, max_size=40)


@given(segments)
def test_segment_round_trips(segment: str) -> None:
    assert unescape_segment(escape_segment(segment)) == segment


@given(segments)
def test_escaped_segment_is_fat_safe(segment: str) -> None:
    name = escape_segment(segment)
    assert not (set(name) & FAT_FORBIDDEN)
    assert "." not in name  # Maildir++ hierarchy separator
    assert not name.endswith((" ", "."))
    assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1"}


@given(st.lists(segments, min_size=1, max_size=4))
def test_maildirpp_path_round_trips(path: list[str]) -> None:
    assert maildirpp_path(maildirpp_dirname(tuple(path))) == tuple(path)


def test_unicode_is_kept_readable() -> None:
    assert escape_segment("Überweisungen") == "Überweisungen"
    assert escape_segment("日本語") == "日本語"
    assert escape_segment("a.b/c:d") == "a%2Eb%2Fc%3Ad"
    assert escape_segment("CON") == "%43ON"
    assert escape_segment("") == "%" and unescape_segment("%") == ""


def test_maildirpp_name_starting_with_dot() -> None:
    # The corpus has "..Subdir3": a folder whose own name starts with a dot.
    assert maildirpp_path("..Subdir3") == (".Subdir3",)
    assert maildirpp_path(".Subdir1") == ("Subdir1",)


def test_fit_name_folds_case_and_length() -> None:
    assert fit_name("Work", ["work"]) == "Work~2"
    assert fit_name("Work", ["work", "WORK~2"]) == "Work~3"
    long = "x" * 400
    fitted = fit_name(long, [])
    assert len(fitted) <= 255 and fitted != fit_name("x" * 401, [])


@given(st.sets(st.sampled_from(list(Flag))))
def test_flags_info_round_trip(flags: set[Flag]) -> None:
    info = flags_to_info(flags)
    assert info_to_flags(info) == (frozenset(flags), "")
    letters = info[2:]
    assert list(letters) == sorted(letters)  # the Maildir spec wants ASCII order


def test_info_separators_and_keyword_letters() -> None:
    assert split_maildir_name("123.abc:2,FS") == ("123.abc", "2,FS")
    assert split_maildir_name("123.abc!2,S") == ("123.abc", "2,S")
    assert split_maildir_name("123.abc") == ("123.abc", "")
    assert info_to_flags("2,Sab") == (frozenset({Flag.SEEN}), "ab")


def test_modified_utf7_names() -> None:
    assert decode_mutf7("&ANw-berweisungen") == "Überweisungen"
    assert decode_mutf7("&BCQEMAQ6BEIEPgRABEs-") == "Факторы"
    assert decode_mutf7("&ZeVnLIqe-") == "日本語"
    assert decode_mutf7("R&D") is None  # not mUTF-7: a UTF-8 name kept as is
    assert decode_mutf7("A&-B") == "A&B"
