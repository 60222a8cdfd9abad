"""Reasons counted together in the closing stats block: the particulars of one item
(numbers, ids, parenthesised names) go, the names of standards stay."""

from __future__ import annotations

import pytest

from pstkit.runstats import reason_kind


@pytest.mark.parametrize(("a", "b"), [
    ("stored, but attachment 1 is an OLE object (Word)",
     "stored, but attachment 12 is an OLE object (Excel)"),
    ("item 0x21cd04 is 151.2 MB", "item 0x4 is 300 MB"),
    ("line 1,234: bad", "line 7: bad"),
])
def test_one_cause_counts_once(a: str, b: str) -> None:
    assert reason_kind(a) == reason_kind(b)


@pytest.mark.parametrize("reason", [
    "not an RFC 5322 message",
    "charset ISO-8859-1 is not UTF-8",
    "a base64 part that is not base64",
    "bytes in cp1252, not in windows-1250",
])
def test_names_of_standards_are_kept(reason: str) -> None:
    assert reason_kind(reason) == reason


def test_the_eml_summary_names_the_rfc() -> None:
    assert reason_kind("not an RFC 5322 message (does not start with a header line)") == (
        "not an RFC 5322 message")


def test_file_names_of_one_cause_count_once() -> None:
    """Maildir names differ in their digits only: one line in the summary, not 3,000."""
    assert reason_kind("cannot read 170000002997.M2997P1.host: Permission denied") == (
        reason_kind("cannot read 170000000001.M1P1.host: Permission denied"))
