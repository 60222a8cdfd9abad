"""A list of recipients kept in one binary property, both ways. Pure; the PST reader
(`pst.attendees`) and writer (`write/attendees.py`) share it.

Used for PidLidForwardNotificationRecipients (PSETID_Appointment 0x8261, [MS-OXOCAL]
2.2.9: the people an attendee forwarded a meeting to, on the Meeting Forward
Notification the organizer gets), which has the form of PidLidAppointmentUnsendable
Recipients (0x825D, 2.2.1.25): Version (4 bytes, 1), RowCount (4 bytes), the rows.

The specification calls each row an [MS-OXCDATA] 2.8.3 RecipientRow (a RecipientFlags
word, then fields that word selects). What Outlook stores is not that: MFCMAPI,
Microsoft's MAPI inspector, reads both properties as a "recipient row stream"
(smartview/RecipientRowStream.cpp, tested on a blob from a real item), and extract-msg
notes that its sample did not match the specification either. Each row there is a MAPI
ADRENTRY written out: cValues (4 bytes), 4 reserved bytes, then cValues property values,
each its type (2 bytes), its id (2 bytes) and its value: 2 bytes for PtypInteger16 and
PtypBoolean, 4 for PtypInteger32, PtypFloating32 and PtypErrorCode (a property the row
lacks), 8 for PtypTime, PtypInteger64, PtypFloating64, PtypCurrency and
PtypFloatingTime, 16 for PtypGuid; a string (UTF-16LE, or 8-bit) or binary value is a
2-byte byte count, then the bytes, a string's terminating NUL counted. This module
writes that form, as Outlook writes an SMTP one-off recipient, and reads it; what it
cannot read it says in notes, never by raising.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

PT_I2, PT_LONG, PT_R4, PT_DOUBLE, PT_CURRENCY, PT_APPTIME = 0x2, 0x3, 0x4, 0x5, 0x6, 0x7
PT_ERROR, PT_BOOLEAN, PT_I8, PT_STRING8, PT_UNICODE = 0xA, 0xB, 0x14, 0x1E, 0x1F
PT_SYSTIME, PT_CLSID, PT_BINARY = 0x40, 0x48, 0x102
#: value sizes of the fixed-size types; the others here are counted (strings, binary)
_FIXED = {PT_I2: 2, PT_BOOLEAN: 2, PT_LONG: 4, PT_R4: 4, PT_ERROR: 4, PT_DOUBLE: 8,
          PT_CURRENCY: 8, PT_APPTIME: 8, PT_I8: 8, PT_SYSTIME: 8, PT_CLSID: 16}
_COUNTED = (PT_STRING8, PT_UNICODE, PT_BINARY)
_MAX = 0xFFFF  # a counted value's size is a 2-byte count
_TEXT_MAX = _MAX - 3  # the most UTF-16LE bytes that fit with their NUL (an even number)

VERSION = 1
MAPI_MAILUSER, DT_MAILUSER = 6, 0
RECIP_SENDABLE = 0x0001  # PidTagRecipientFlags ([MS-OXOCAL] 2.2.4.10.1)


@dataclass(frozen=True)
class Recipient:
    """One row: what pstkit keeps of a recipient."""

    name: str  # PidTagDisplayName
    address: str  # PidTagEmailAddress: the SMTP address, or a native one (an X.500 DN)
    addrtype: str = "SMTP"  # PidTagAddressType
    kind: int = 1  # PidTagRecipientType: 1 To, 2 Cc, 3 Bcc
    smtp: str = ""  # PidTagSmtpAddress, when known
    entry_id: bytes = b""  # PidTagEntryId (an SMTP one-off entry id, [MS-OXCDATA] 2.2.5.1)
    flags: int = RECIP_SENDABLE  # PidTagRecipientFlags


@dataclass(frozen=True)
class Decoded:
    recipients: tuple[Recipient, ...]
    notes: tuple[str, ...] = ()  # what could not be read; empty when all was


# --- writing -----------------------------------------------------------------


def _unicode(text: str) -> bytes:
    """UTF-16LE with its NUL, cut to what a 2-byte count holds (never inside a pair)."""
    data = text.encode("utf-16-le", "surrogatepass")[:_TEXT_MAX]
    if len(data) >= 2 and 0xD8 <= data[-1] <= 0xDB:  # a high surrogate left alone
        data = data[:-2]
    return data + b"\0\0"


def _value(ptype: int, pid: int, data: bytes) -> bytes:
    head = struct.pack("<HH", ptype, pid)
    return head + (struct.pack("<H", len(data)) + data if ptype in _COUNTED else data)


def _row(r: Recipient) -> list[bytes]:
    """The row Outlook writes for a recipient it resolved to a one-off address (the
    columns of its recipient table that carry who the recipient is)."""
    key = f"{r.addrtype}:{r.address}".upper().encode("ascii", "replace") + b"\0"
    out = [_value(PT_LONG, 0x0C15, struct.pack("<I", r.kind & 0xFFFFFFFF)),
           _value(PT_LONG, 0x0FFE, struct.pack("<I", MAPI_MAILUSER))]
    if r.entry_id and len(r.entry_id) <= _MAX:
        out.append(_value(PT_BINARY, 0x0FFF, r.entry_id))
    out += [_value(PT_UNICODE, 0x3001, _unicode(r.name)),
            _value(PT_UNICODE, 0x3002, _unicode(r.addrtype)),
            _value(PT_UNICODE, 0x3003, _unicode(r.address)),
            _value(PT_BINARY, 0x300B, key[:_MAX]),
            _value(PT_LONG, 0x3900, struct.pack("<I", DT_MAILUSER))]
    if r.smtp:
        out.append(_value(PT_UNICODE, 0x39FE, _unicode(r.smtp)))
    out += [_value(PT_UNICODE, 0x3A20, _unicode(r.name)),  # PidTagTransmittableDisplayName
            _value(PT_BOOLEAN, 0x3A40, b"\0\0"),  # PidTagSendRichInfo: no (an SMTP one-off)
            _value(PT_UNICODE, 0x5FF6, _unicode(r.name))]  # PidTagRecipientDisplayName
    if r.entry_id and len(r.entry_id) <= _MAX:
        out.append(_value(PT_BINARY, 0x5FF7, r.entry_id))  # PidTagRecipientEntryId
    return [*out, _value(PT_LONG, 0x5FFD, struct.pack("<I", r.flags & 0xFFFFFFFF)),
            _value(PT_LONG, 0x5FFF, b"\0\0\0\0")]  # PidTagRecipientTrackStatus


def encode(recipients: Iterable[Recipient]) -> bytes:
    """The property value of `recipients`: Version, RowCount, each row."""
    rows = [_row(r) for r in recipients]
    out = [struct.pack("<II", VERSION, len(rows))]
    for values in rows:
        out += [struct.pack("<II", len(values), 0), *values]
    return b"".join(out)


# --- reading -----------------------------------------------------------------


class _Short(Exception):
    """The value ends before what it says it holds."""


def _take(blob: bytes, pos: int, size: int) -> bytes:
    if pos + size > len(blob):
        raise _Short(f"cut short at byte {len(blob)}")
    return blob[pos : pos + size]


def _read_value(blob: bytes, pos: int) -> tuple[int, int, object, int]:
    """(type, id, value, next position) of the value at `pos`; a missing property
    (PtypErrorCode) and types that are kept as bytes have value None or bytes."""
    ptype, pid = struct.unpack("<HH", _take(blob, pos, 4))
    pos += 4
    if ptype in _FIXED:
        raw = _take(blob, pos, _FIXED[ptype])
        value: object = {PT_LONG: int.from_bytes(raw, "little"), PT_BOOLEAN: raw != b"\0\0",
                         PT_ERROR: None}.get(ptype, raw)
        return ptype, pid, value, pos + len(raw)
    if ptype not in _COUNTED:
        raise ValueError(f"property {pid:04X} of type {ptype:04X} not understood at byte {pos - 4}")
    size = struct.unpack("<H", _take(blob, pos, 2))[0]
    raw = _take(blob, pos + 2, size)
    if ptype == PT_UNICODE:
        text = raw[: len(raw) & ~1].decode("utf-16-le", "surrogatepass")
        value = text[:-1] if text.endswith("\0") else text
    elif ptype == PT_STRING8:
        value = raw.decode("cp1252", "replace").removesuffix("\0")
    else:
        value = raw
    return ptype, pid, value, pos + 2 + size


def read_rows(blob: bytes) -> tuple[list[dict[int, object]], str]:
    """Each row as {property id: value}, and why reading stopped ("" when it did not).
    Missing properties (PtypErrorCode) are left out of their row."""
    if len(blob) < 8:
        return [], f"{len(blob)} byte(s) and no list header"
    version, count = struct.unpack_from("<II", blob)
    if version != VERSION:
        return [], f"version {version} where {VERSION} was expected"
    rows: list[dict[int, object]] = []
    pos = 8
    try:
        for _ in range(count):
            n_values = struct.unpack("<I", _take(blob, pos, 4))[0]
            if n_values * 4 > len(blob) - pos - 8:  # each value takes at least 4 bytes
                raise _Short(f"row {len(rows) + 1} claims {n_values} values")
            pos += 8
            row: dict[int, object] = {}
            for _v in range(n_values):
                ptype, pid, value, pos = _read_value(blob, pos)
                if ptype != PT_ERROR:
                    row.setdefault(pid, value)
            rows.append(row)
    except (_Short, ValueError, UnicodeDecodeError) as e:
        return rows, f"{e}: {len(rows)} of {count} row(s) read"
    return rows, ""


def _text(row: dict[int, object], pid: int) -> str:
    v = row.get(pid)
    return v if isinstance(v, str) else ""


def _int(row: dict[int, object], pid: int, default: int) -> int:
    v = row.get(pid)
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def recipient(row: dict[int, object]) -> Recipient:
    entry = row.get(0x0FFF, row.get(0x5FF7, b""))
    return Recipient(_text(row, 0x3001) or _text(row, 0x5FF6), _text(row, 0x3003),
                     _text(row, 0x3002), _int(row, 0x0C15, 1), _text(row, 0x39FE),
                     entry if isinstance(entry, bytes) else b"",
                     _int(row, 0x5FFD, RECIP_SENDABLE))


def decode(blob: bytes, what: str = "recipient list") -> Decoded:
    """The recipients of a property value; a note names `what` when part of it could not
    be read (the rows before the damage are kept)."""
    rows, why = read_rows(blob)
    notes = (f"{what} unreadable ({why})",) if why else ()
    return Decoded(tuple(recipient(r) for r in rows), notes)

