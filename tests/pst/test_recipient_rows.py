"""The recipient list codec of PidLidForwardNotificationRecipients (`pst.recipient_rows`):
a list made by hand in the layout Outlook stores (one independent of the encoder), the
rows the encoder writes, encode -> decode for any names (Hypothesis), and damaged or
foreign values, which give notes and never raise."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst.recipient_rows import Decoded, Recipient, decode, encode, read_rows


def _prop(ptype: int, pid: int, value: bytes) -> bytes:
    counted = ptype in (0x001E, 0x001F, 0x0102)
    return struct.pack("<HH", ptype, pid) + (struct.pack("<H", len(value)) if counted else b"") \
        + value


def _w(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


#: two rows as Outlook keeps an Exchange user and an 8-bit one-off: missing properties
#: (PtypErrorCode), booleans of 2 bytes, a time, a GUID, an 8-bit string
HAND_MADE = b"".join([
    struct.pack("<II", 1, 2),
    struct.pack("<II", 9, 0),
    _prop(0x0003, 0x0C15, struct.pack("<I", 2)),  # Cc
    _prop(0x000B, 0x0E0F, b"\0\0"),
    _prop(0x000A, 0x0FF9, struct.pack("<I", 0x8004010F)),  # PidTagRecordKey: not found
    _prop(0x001F, 0x3001, _w("Mister Somebody")),
    _prop(0x001F, 0x3002, _w("EX")),
    _prop(0x001F, 0x3003, _w("/O=EXAMPLE/OU=SITE/CN=RECIPIENTS/CN=SOMEBODY")),
    _prop(0x0040, 0x5FE3, struct.pack("<Q", 133_000_000_000_000_000)),
    _prop(0x001F, 0x39FE, _w("somebody@example.com")),
    _prop(0x0003, 0x5FFD, struct.pack("<I", 0x0300)),
    struct.pack("<II", 5, 0),
    _prop(0x0048, 0x3D01, bytes(range(16))),
    _prop(0x001E, 0x3001, "Zo\xeb".encode("cp1252") + b"\0"),
    _prop(0x001E, 0x3002, b"SMTP\0"),
    _prop(0x001E, 0x3003, b"zoe@example.org\0"),
    _prop(0x0102, 0x0FFF, b"\x01\x02"),
])


def test_a_list_in_outlooks_layout() -> None:
    got = decode(HAND_MADE)
    assert got.notes == ()
    assert got.recipients == (
        Recipient("Mister Somebody", "/O=EXAMPLE/OU=SITE/CN=RECIPIENTS/CN=SOMEBODY", "EX", 2,
                  "somebody@example.com", b"", 0x0300),
        Recipient("Zo\xeb", "zoe@example.org", "SMTP", 1, "", b"\x01\x02"))
    rows, why = read_rows(HAND_MADE)
    assert why == "" and 0x0FF9 not in rows[0]  # a missing property is no value


def test_the_rows_outlook_writes_for_a_one_off() -> None:
    """Version 1, the row count, then per row its value count, 4 reserved bytes and the
    values; strings UTF-16LE with their NUL counted, as Outlook stores them."""
    blob = encode([Recipient("Cy", "cy@x.org", kind=2, smtp="cy@x.org", entry_id=b"E")])
    assert blob[:8] == struct.pack("<II", 1, 1)
    count, reserved = struct.unpack_from("<II", blob, 8)
    rows, why = read_rows(blob)
    assert why == "" and reserved == 0 and len(rows[0]) == count
    assert rows[0][0x0C15] == 2 and rows[0][0x3001] == "Cy" and rows[0][0x3002] == "SMTP"
    assert rows[0][0x300B] == b"SMTP:CY@X.ORG\0" and rows[0][0x0FFF] == b"E"
    assert rows[0][0x39FE] == "cy@x.org" and rows[0][0x0FFE] == 6  # MAPI_MAILUSER
    assert _prop(0x001F, 0x3001, _w("Cy")) in blob  # the count includes the NUL
    assert encode([]) == struct.pack("<II", 1, 0) and decode(encode([])) == Decoded(())


_recipients = st.lists(st.builds(
    Recipient, name=st.text(max_size=40), address=st.text(max_size=40),
    addrtype=st.sampled_from(["SMTP", "EX", "X400"]) | st.text(max_size=8),
    kind=st.integers(0, 3), smtp=st.text(max_size=40), entry_id=st.binary(max_size=60),
    flags=st.integers(0, 0xFFFFFFFF)), max_size=5)


@settings(max_examples=300, deadline=None)
@given(_recipients)
def test_encode_then_decode_gives_them_back(people: list[Recipient]) -> None:
    assert decode(encode(people)) == Decoded(tuple(people))


def test_a_name_too_long_for_its_count_is_cut_not_broken() -> None:
    long_name = "a" + "\U0001f600" * 20000  # a pair would be cut in two at 65,532 bytes
    got = decode(encode([Recipient(long_name, "a@b.c")]))
    assert got.notes == ()
    name = got.recipients[0].name
    assert long_name.startswith(name) and 16000 < len(name) < 16384


@settings(max_examples=40, deadline=None)
@given(_recipients.filter(bool))
def test_every_cut_short_value_gives_a_note_and_the_rows_before(people: list[Recipient]) -> None:
    blob = encode(people)
    for size in range(len(blob)):
        got = decode(blob[:size], "forward notification recipients")
        assert len(got.notes) == 1 and got.notes[0].startswith(
            "forward notification recipients unreadable ("), size
        assert got.recipients == tuple(people[: len(got.recipients)])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_raises(blob: bytes) -> None:
    got = decode(blob)
    assert all(isinstance(r, Recipient) for r in got.recipients)
    assert got.notes or blob[:8] == struct.pack("<II", 1, len(got.recipients))


@pytest.mark.parametrize(("blob", "why"), [
    (b"", "0 byte(s) and no list header"),
    (struct.pack("<II", 2, 0), "version 2 where 1 was expected"),
    (struct.pack("<II", 1, 0xFFFFFFFF), "cut short at byte 8: 0 of 4294967295 row(s) read"),
    (struct.pack("<IIII", 1, 1, 0x40000000, 0), "row 1 claims 1073741824 values: 0 of 1 row(s)"
     " read"),
    (struct.pack("<IIII", 1, 1, 1, 0) + struct.pack("<HHI", 0x0099, 0x3001, 0),
     "property 3001 of type 0099 not understood at byte 16: 0 of 1 row(s) read"),
])
def test_what_a_note_says(blob: bytes, why: str) -> None:
    assert decode(blob, "the list") == Decoded((), (f"the list unreadable ({why})",))
