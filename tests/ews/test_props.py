"""Pure translation for the EWS sink: flags, dates, categories, batching, backoff, paths."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstkit.converters.ews import props as p
from pstkit.model import Flag, StoredMessage

RAW = b"Subject: x\r\nDate: Tue, 2 Jan 2024 10:00:00 +0100\r\n\r\nDate: not this one\r\n"
RECEIVED = datetime(2024, 1, 3, 4, 5, 6, tzinfo=UTC)


def msg(
    flags: set[Flag] | None = None,
    keywords: set[str] | None = None,
    received: datetime | None = RECEIVED,
) -> StoredMessage:
    return StoredMessage(
        id=42,
        folder=("Inbox",),
        sha256="0" * 64,
        size=len(RAW),
        flags=frozenset(flags or ()),
        keywords=frozenset(keywords or ()),
        received=received,
        message_id="",
        subject="",
        source_id="1",
        source_epoch="",
        store_id="uuid-1",
    )


@pytest.mark.parametrize(
    ("flags", "message_flags", "is_read"),
    [
        (set(), 0, False),
        ({Flag.SEEN}, p.MSGFLAG_READ, True),
        ({Flag.DRAFT}, p.MSGFLAG_UNSENT, False),
        ({Flag.DRAFT, Flag.SEEN}, p.MSGFLAG_READ | p.MSGFLAG_UNSENT, True),
        ({Flag.SEEN, Flag.DELETED, Flag.ANSWERED}, p.MSGFLAG_READ, True),
    ],
)
def test_message_flags_are_always_set(flags: set[Flag], message_flags: int, is_read: bool) -> None:
    props = p.item_props(msg(flags), RAW)
    assert props.values["pstkit_message_flags"] == message_flags  # never left out: no draft
    assert props.is_read is is_read


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({Flag.FLAGGED}, {"pstkit_flag_status": 2, "pstkit_flag_icon": 6}),
        ({Flag.ANSWERED}, {"pstkit_last_verb": 102, "pstkit_icon_index": 0x105}),
        ({Flag.FORWARDED}, {"pstkit_last_verb": 104, "pstkit_icon_index": 0x106}),
        ({Flag.ANSWERED, Flag.FORWARDED}, {"pstkit_last_verb": 102, "pstkit_icon_index": 0x105}),
        (set(), {}),
    ],
)
def test_follow_up_and_last_verb(flags: set[Flag], expected: dict[str, int]) -> None:
    values = p.item_props(msg(flags), RAW).values
    optional = {"pstkit_flag_status", "pstkit_flag_icon", "pstkit_last_verb", "pstkit_icon_index"}
    assert {k: v for k, v in values.items() if k in optional} == expected


def test_dates_and_source_key() -> None:
    values = p.item_props(msg(), RAW).values
    assert values["pstkit_delivery_time"] == RECEIVED
    assert values["pstkit_submit_time"] == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    assert values["pstkit_source_key"] == "uuid-1:42"
    no_received = p.item_props(msg(received=None), RAW).values
    assert no_received["pstkit_delivery_time"] == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    neither = p.item_props(msg(received=None), b"Subject: x\r\n\r\nbody")
    assert (
        "pstkit_delivery_time" not in neither.values and "pstkit_submit_time" not in neither.values
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Date: Mon, 1 Jan 2024 00:00:00 -0000\n\nx", datetime(2024, 1, 1, tzinfo=UTC)),
        (b"Date: garbage\n\nx", None),
        (b"Subject: none\n\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n", None),  # body is not header
        (b"Date: Mon, 1 Jan 2024 00:00:00\n\nx", datetime(2024, 1, 1, tzinfo=UTC)),  # no zone
    ],
)
def test_header_date(raw: bytes, expected: datetime | None) -> None:
    assert p.header_date(raw) == expected


def test_categories_drop_protocol_keywords_and_name_thunderbird_labels() -> None:
    keywords = {"Work", "$MDNSent", "$Forwarded", "NonJunk", "$label4", "Privat ✓"}
    assert p.categories(keywords) == ("Privat ✓", "To Do", "Work")


def test_request_size_accounts_for_base64() -> None:
    assert p.request_bytes([3000]) == p.ENVELOPE_OVERHEAD + p.ITEM_OVERHEAD + 4000
    assert p.request_bytes([p.max_raw_size(100_000)]) <= 100_000


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=50_000), max_size=60),
    max_items=st.integers(min_value=1, max_value=20),
    limit=st.integers(min_value=10_000, max_value=200_000),
)
def test_split_by_size_keeps_order_and_limits(sizes: list[int], max_items: int, limit: int) -> None:
    groups = p.split_by_size(sizes, max_items, limit)
    assert [i for g in groups for i in g] == list(range(len(sizes)))
    for g in groups:
        assert 1 <= len(g) <= max_items
        assert len(g) == 1 or p.request_bytes(sizes[i] for i in g) <= limit


def test_backoff() -> None:
    assert p.backoff_seconds(1, 2.5, cap=60) == 2.5  # the server's word
    assert p.backoff_seconds(1, 600.0, cap=60) == 60
    assert [p.backoff_seconds(n, None, cap=3) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3]
    assert p.backoff_seconds(2, 0, cap=60) == 1.0  # zero means "not given"


def test_folder_paths() -> None:
    listing = [("c", "b", "C/c"), ("b", "top", "B"), ("x", "elsewhere", "X"), ("d", "top", "D")]
    assert p.folder_paths(listing, "top") == {"b": ("B",), "c": ("B", "C/c"), "d": ("D",)}
    assert p.folder_paths([("a", "b", "A"), ("b", "a", "B")], "top") == {}  # cycle: ignored


def test_raw_budget_fits_one_request() -> None:
    budget = p.raw_budget(1_000_000, 10)
    sizes = [budget // 10] * 10
    assert p.request_bytes(sizes) <= 1_000_000
    assert p.split_by_size(sizes, 10, 1_000_000) == [list(range(10))]
