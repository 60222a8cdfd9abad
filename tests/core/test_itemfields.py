"""verify's comparison of contact e-mail addresses: the target's must be the store's, and
only addresses past the three Exchange keeps may be missing (the import reported them)."""

from __future__ import annotations

import pytest

from pstkit.itemfields import differences, emails_text


@pytest.mark.parametrize(("stored", "target", "same"), [
    (["a@x", "b@x"], ["b@x", "A@x"], True),  # order and case do not matter
    (["a@x", "b@x", "c@x", "d@x"], ["a@x", "b@x", "c@x"], True),  # a 4th is not kept
    (["a@x", "b@x", "c@x", "d@x"], ["a@x", "d@x", "c@x"], True),  # any three of them
    (["a@x", "b@x"], ["a@x"], False),  # one lost
    (["a@x"], [], False),  # arrived empty
    (["a@x"], ["z@x"], False),  # changed
    (["a@x", "b@x", "c@x", "d@x"], ["a@x", "b@x"], False),  # two of four
    (["a@x"], ["a@x", "z@x"], False),  # one the store never had
])
def test_emails(stored: list[str], target: list[str], same: bool) -> None:
    found = differences({"emails": emails_text(stored)}, {"emails": emails_text(target)})
    assert (found == []) is same, found


def test_fields_the_target_does_not_report_are_not_compared() -> None:
    assert differences({"emails": "a@x", "name": "Ann"}, {"name": "Ann "}) == []
    assert differences({"name": "Ann  B"}, {"name": "Bob"}) == ["name 'Bob' != 'Ann  B'"]
