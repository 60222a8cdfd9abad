"""`parse_meta_fetch` and `parse_internaldate`: imaplib's raw metadata FETCH reply read
by regex. Fixed inputs for each form, a round trip over generated replies, and a
seeded fuzz: junk gives a fallback (None) or only messages it read completely, never
an exception."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from imapclient.datetime_util import parse_to_datetime

from pstkit.converters.imap.items import RawMeta, parse_internaldate, parse_meta_fetch

DATE = b"17-Jul-1996 02:44:25 -0700"


def test_dovecot_form() -> None:
    data = [
        b'1 (UID 7 FLAGS (\\Seen $Forwarded) INTERNALDATE "' + DATE + b'" RFC822.SIZE 1234)',
        b'2 (UID 9 FLAGS () INTERNALDATE "01-Jan-2020 00:00:00 +0000" RFC822.SIZE 0)',
    ]
    assert parse_meta_fetch(data) == [
        RawMeta(7, 1234, (b"\\Seen", b"$Forwarded"), DATE),
        RawMeta(9, 0, (), b"01-Jan-2020 00:00:00 +0000"),
    ]


def test_items_in_any_order_and_case_with_modseq() -> None:
    data = [b'3 (rfc822.size 42 MODSEQ (12345) flags (\\Draft) uid 11 internaldate "' + DATE
            + b'")']
    assert parse_meta_fetch(data) == [RawMeta(11, 42, (b"\\Draft",), DATE)]


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        (b"\\Seen \\Recent", (b"\\Seen", b"\\Recent")),  # \Recent is dropped later
        (b"\\Junk \\Important NonJunk", (b"\\Junk", b"\\Important", b"NonJunk")),
        (b"$label[1] $MDNSent %odd* caf\xc3\xa9", (b"$label[1]", b"$MDNSent", b"%odd*",
                                                    b"caf\xc3\xa9")),
        (b"  \\Seen   \\Flagged ", (b"\\Seen", b"\\Flagged")),
    ],
)
def test_odd_flags_are_kept_as_sent(flags: bytes, want: tuple[bytes, ...]) -> None:
    data = [b"1 (UID 5 RFC822.SIZE 10 FLAGS (" + flags + b"))"]
    assert parse_meta_fetch(data) == [RawMeta(5, 10, want, None)]


def test_keyword_that_looks_like_an_item_is_a_flag() -> None:
    data = [b"1 (FLAGS (UID RFC822.SIZE) UID 5 RFC822.SIZE 10)"]
    assert parse_meta_fetch(data) == [RawMeta(5, 10, (b"UID", b"RFC822.SIZE"), None)]


def test_message_without_uid_or_size_is_left_out() -> None:
    data = [
        b"4 (FLAGS (\\Seen))",  # unsolicited flag update
        b"5 (FLAGS (\\Seen) RFC822.SIZE 10)",  # no UID: cannot be placed
        b"6 (UID 8 FLAGS (\\Seen))",  # no size
        b"7 (UID 9 RFC822.SIZE 3)",
        None,
    ]
    assert parse_meta_fetch(data) == [RawMeta(9, 3, (), None)]


@pytest.mark.parametrize(
    "data",
    [
        [(b'1 (UID 5 RFC822.SIZE 3 FLAGS (\\Seen) INTERNALDATE {26}', DATE), b")"],
        [b"1 (UID 5 RFC822.SIZE 3)", (b"2 (UID 6 FLAGS {3}", b"abc"), b")"],
        [b'1 (UID 5 RFC822.SIZE 3 FLAGS ("quoted"))'],
        [b"1 (UID 5 RFC822.SIZE 3 FLAGS (\\Seen)"],  # unclosed
        [b"1 (UID 5 RFC822.SIZE 3 FLAGS (\\Seen $x)(y))"],
        [b"1 (UID 5 RFC822.SIZE 3 X-GM-MSGID 99)"],  # an item it does not read
        [b"1 (UID 5 RFC822.SIZE 3x)"],
        [b"1 (UID 5 RFC822.SIZE 3 INTERNALDATE NIL)"],
        [b"garbage"],
        ["1 (UID 5 RFC822.SIZE 3)"],  # not bytes
    ],
)
def test_anything_not_plain_falls_back(data: list[object]) -> None:
    assert parse_meta_fetch(data) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (DATE, datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)),
        (b" 1-Jan-2020 12:00:00 +0200", datetime(2020, 1, 1, 10, 0, tzinfo=UTC)),
        (b"1-jan-2020 12:00:00 -0130", datetime(2020, 1, 1, 13, 30, tzinfo=UTC)),
        (b"29-Feb-2024 23:59:59 +0000", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
        (b"01-Jan-0001 00:30:00 +0100", None),  # before year 1 in UTC
        (b"30-Feb-2024 00:00:00 +0000", None),
        (b"01-Foo-2024 00:00:00 +0000", None),
        (b"01-Jan-2024 00:00:00", None),  # no zone: the lenient parser's case
        (b"Wed, 01 Jan 2020 12:00:00 +0000", None),
        (b"01-Jan-2024 00:00:00 +9999", None),
        (b"", None),
    ],
)
def test_internaldate_forms(raw: bytes, want: datetime | None) -> None:
    assert parse_internaldate(raw) == want


def test_internaldate_agrees_with_imapclient() -> None:
    rnd = random.Random(19)
    months = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
    for _ in range(2000):
        zone = timezone(timedelta(minutes=rnd.randrange(-14 * 60, 14 * 60 + 1)))
        when = datetime(rnd.randrange(1970, 2100), rnd.randrange(1, 13), rnd.randrange(1, 29),
                        rnd.randrange(24), rnd.randrange(60), rnd.randrange(60), tzinfo=zone)
        off = int(when.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
        sign = b"-" if off < 0 else b"+"
        raw = b"%2d-%s-%04d %02d:%02d:%02d %s%02d%02d" % (
            when.day, months[when.month - 1], when.year, when.hour, when.minute, when.second,
            sign, abs(off) // 60, abs(off) % 60)
        got = parse_internaldate(raw)
        assert got == when and got.tzinfo is UTC
        assert got == parse_to_datetime(raw, normalise=False)


def _reply(rnd: random.Random, seq: int) -> tuple[bytes, RawMeta]:
    uid, size = rnd.randrange(1, 2**32), rnd.randrange(0, 2**31)
    alphabet = b"abcXYZ019$%*[]\\-_.\xc3\xa9"
    flags = tuple(bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 8)))
                  for _ in range(rnd.randrange(0, 5)))
    date = DATE if rnd.random() < 0.8 else None
    items = [b"UID %d" % uid, b"RFC822.SIZE %d" % size, b"FLAGS (" + b" ".join(flags) + b")"]
    if date is not None:
        items.append(b'INTERNALDATE "' + date + b'"')
    rnd.shuffle(items)
    return b"%d (" % seq + b" ".join(items) + b")", RawMeta(uid, size, flags, date)


def test_generated_replies_round_trip() -> None:
    rnd = random.Random(1919)
    for _ in range(300):
        pairs = [_reply(rnd, i + 1) for i in range(rnd.randrange(1, 20))]
        assert parse_meta_fetch([line for line, _ in pairs]) == [m for _, m in pairs]


def _mutate(rnd: random.Random, line: bytes) -> bytes:
    junk = b'() "{}\\\r\n\x00\x80 UIDFLAGSRFC822.SIZEINTERNALDATE0123456789'
    b = bytearray(line)
    for _ in range(rnd.randrange(1, 6)):
        op = rnd.randrange(4)
        at = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            del b[at : at + rnd.randrange(1, 8)]
        elif op == 1:
            b[at:at] = bytes(rnd.choice(junk) for _ in range(rnd.randrange(1, 6)))
        elif op == 2:
            b = b[:at]
        else:
            b[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4)))
    return bytes(b)


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_never_raises(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(2000):
        lines: list[object] = []
        for i in range(rnd.randrange(1, 5)):
            line, _ = _reply(rnd, i + 1)
            r = rnd.random()
            if r < 0.5:
                line = _mutate(rnd, line)
            elif r < 0.6:
                lines.append((line, bytes(rnd.randrange(256) for _ in range(9))))
                continue
            elif r < 0.65:
                lines.append(None)
            lines.append(line)
        got = parse_meta_fetch(lines)  # type: ignore[arg-type]
        if got is None:
            continue
        for meta in got:  # whatever it read, it read from a line that says so
            assert any(isinstance(x, bytes) and b"%d" % meta.uid in x for x in lines)
            for flag in meta.flags:
                assert flag and not set(flag) & set(b'()"{} \r\n')
    for _ in range(3000):
        raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
        when = parse_internaldate(raw)
        assert when is None or when.tzinfo is UTC
