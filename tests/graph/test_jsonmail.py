"""Pure translations of converters/graph/jsonmail.py: tables, properties, the corpus."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstkit.converters.graph import jsonmail as gj
from pstkit.converters.graph.index import FolderIndex
from pstkit.model import Flag
from tests.servers.graph import messages as server_messages
from tests.servers.graph.fixtures import corpus_messages, stored
from tests.servers.graph.odata import parse_filter
from tests.servers.graph.state import State


@pytest.mark.parametrize(
    ("flags", "value"),
    [
        (set(), 0x2),
        ({Flag.SEEN}, 0x3),
        ({Flag.DRAFT}, 0xA),
        ({Flag.SEEN, Flag.DRAFT, Flag.FLAGGED}, 0xB),
        ({Flag.ANSWERED, Flag.FORWARDED, Flag.DELETED}, 0x2),
    ],
)
def test_message_flags(flags: set[Flag], value: int) -> None:
    assert gj.message_flags(frozenset(flags)) == value


@given(st.frozensets(st.sampled_from(list(Flag))))
def test_flags_properties(flags: frozenset[Flag]) -> None:
    value = gj.message_flags(flags)
    assert bool(value & gj.MSGFLAG_READ) == (Flag.SEEN in flags)
    assert bool(value & gj.MSGFLAG_UNSENT) == (Flag.DRAFT in flags)  # non-draft unless a draft
    assert gj.flag_status(flags) == ("flagged" if Flag.FLAGGED in flags else "notFlagged")


def test_last_verb_and_categories() -> None:
    assert gj.last_verb(frozenset({Flag.ANSWERED})) == 102
    assert gj.last_verb(frozenset({Flag.ANSWERED, Flag.FORWARDED})) == 104
    assert gj.last_verb(frozenset()) is None
    assert gj.categories(frozenset({"Work", "$Forwarded", "\\Seen", "", "Blue"})) == [
        "Blue",
        "Work",
    ]


def test_systime_is_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert gj.systime(datetime(2020, 1, 1, 1, 30, tzinfo=cet)) == "2020-01-01T00:30:00Z"
    assert gj.systime(datetime(2020, 1, 1, 1, 30)) == "2020-01-01T01:30:00Z"


@given(st.text(min_size=1, max_size=40))
def test_key_filter_round_trips_through_odata(key: str) -> None:
    flt = parse_filter(gj.key_filter(key))  # the test server's parser, from the OData rules
    assert flt.value == key and flt.prop_id is not None


def test_same_prop_spelling() -> None:
    assert gj.same_prop("Integer 0x0E08", "Integer 0xe08")
    assert not gj.same_prop("Integer 0x0E08", "Integer 0xe07")
    assert gj.same_prop(gj.KEY_PROP, gj.KEY_PROP.lower())
    item = {"singleValueExtendedProperties": [{"id": "Integer 0xe08", "value": "12"}]}
    assert gj.prop_value(item, gj.PR_MESSAGE_SIZE) == "12"
    assert gj.prop_value({}, gj.PR_MESSAGE_SIZE) is None


def test_import_mime_body_is_only_the_base64_mime() -> None:
    raw = b"Subject: x\r\n\r\n\xff\x00body"
    body = gj.import_mime_body(raw)
    assert base64.b64decode(body, validate=True) == raw  # no JSON envelope, no line breaks
    assert len(body) == gj.import_size(raw)


def test_state_patch_carries_what_mime_cannot() -> None:
    raw = b"Subject: x\r\n\r\nbody"
    when = datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC)
    flags = frozenset({Flag.SEEN, Flag.FLAGGED, Flag.ANSWERED})
    msg = stored(4, raw, flags, frozenset({"Red", "$Junk"}), when)
    patch = gj.state_patch(msg)
    assert patch["isRead"] is True and patch["flag"] == {"flagStatus": "flagged"}
    assert patch["categories"] == ["Red"]
    props = {p["id"]: p["value"] for p in patch["singleValueExtendedProperties"]}
    assert props == {gj.KEY_PROP: "store-7f3a:4", gj.PR_LAST_VERB_EXECUTED: "102"}
    # Only properties Graph lets Mail.ReadWrite update on a non-draft message.
    assert set(patch) <= {"isRead", "flag", "categories", "singleValueExtendedProperties"}
    unread = gj.state_patch(stored(5, raw))
    assert unread["isRead"] is False and unread["flag"] == {"flagStatus": "notFlagged"}


def test_json_message_for_every_corpus_file_is_accepted(corpus: Path) -> None:
    state = State()
    for n, raw in enumerate(corpus_messages(corpus), 1):
        msg = stored(n, raw, frozenset({Flag.SEEN}) if n % 2 else frozenset())
        made = gj.json_message(msg, raw, msg.stable_key)
        assert all(h["name"].lower().startswith("x-") for h in made.body["internetMessageHeaders"])
        props = {p["id"]: p["value"] for p in made.body["singleValueExtendedProperties"]}
        assert int(props[gj.PR_MESSAGE_FLAGS]) & gj.MSGFLAG_UNSENT == 0
        # The test server's validator (written from Graph's docs) takes every one of them.
        created = server_messages.create_json(state, "folder", made.body)
        assert created.props["isDraft"] is False
        assert created.props["isRead"] is bool(n % 2)


def test_json_message_big_attachments_go_late() -> None:
    m = EmailMessage()
    m["Subject"] = "two"
    m.set_content("x")
    m.add_attachment(
        b"a" * (2 * 1024 * 1024), maintype="application", subtype="pdf", filename="a.pdf"
    )
    m.add_attachment(b"b" * (2 * 1024 * 1024), maintype="image", subtype="png", filename="b.png")
    raw = m.as_bytes()
    made = gj.json_message(stored(1, raw), raw, "k")
    assert [a["name"] for a in made.body["attachments"]] == ["a.pdf"]
    assert [a.name for a in made.late] == ["b.png"]
    props = {p["id"]: p["value"] for p in made.body["singleValueExtendedProperties"]}
    assert props[gj.KEY_PROP] == "k" + gj.INCOMPLETE  # not findable until complete


def test_folder_index() -> None:
    def item(tid: str, key: str | None, mid: str = "") -> dict[str, object]:
        props = [{"id": gj.KEY_PROP.lower(), "value": key}] if key is not None else []
        return {"id": tid, "internetMessageId": mid, "singleValueExtendedProperties": props}

    index = FolderIndex.of(
        [
            item("a", "s:1", "<1@x>"),
            item("b", None, "<2@x>"),
            item("c", "s:3#incomplete", "<3@x>"),
            item("d", "s:1"),
        ]
    )
    assert index.lookup("s:1", "<nope@x>") == ["a", "d"]
    assert index.lookup("s:2", "<2@x>") == ["b"]  # foreign item, same Message-ID
    assert index.lookup("s:3", "<3@x>") == []  # half-made copies are not duplicates…
    assert index.incomplete == ["c"]  # …but garbage to remove
    assert index.lookup("s:9", "") == []
