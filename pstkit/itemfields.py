"""The fields of a stored contact or calendar item that verify compares (pure).

A contact or event is stored as a message carrying a vCard or iCalendar part;
a target rebuilds it (Exchange keeps its own rendering), so neither its bytes
nor its size can be compared. What matters to a person is compared instead:
a contact's display name and e-mail addresses, an event's start and end. An
item that arrived empty then differs, instead of passing on its subject.

Keys (shared with `TargetItem.fields`): "name", "emails" (lower-case,
sorted, comma-joined), "start", "end" (UTC, "YYYY-MM-DDTHH:MM:SSZ").
"""

from __future__ import annotations

import email.parser
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from pstkit.model import ItemKind

_PARSER = email.parser.BytesParser()  # compat32, the default (see pstkit.headers)
_CARD_TYPES = ("text/vcard", "text/x-vcard", "text/directory")
_UTC_STAMP = re.compile(r"^(\d{8})T(\d{6})Z$")


def stored_fields(kind: ItemKind, raw: bytes) -> dict[str, str]:
    """The compared fields of a stored item; {} for mail or when unreadable."""
    try:
        if kind in (ItemKind.CONTACT, ItemKind.DISTLIST):
            return card_fields(_part_text(raw, _CARD_TYPES))
        if kind is ItemKind.EVENT:
            return event_fields(_part_text(raw, ("text/calendar",)))
    except (ValueError, LookupError, TypeError):
        pass  # an unreadable part: compared by subject, as before
    return {}


def emails_text(addresses: Iterable[str]) -> str:
    return ",".join(sorted({a.strip().lower() for a in addresses if a.strip()}))


def utc_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def card_fields(text: str) -> dict[str, str]:
    lines = _content_lines(text)
    out: dict[str, str] = {}
    names = [v for n, v in lines if n == "FN"]
    if names:
        out["name"] = _unescape(names[0])
    emails = [_unescape(v) for n, v in lines if n == "EMAIL"]
    if emails:
        out["emails"] = emails_text(emails)
    return out


def event_fields(text: str) -> dict[str, str]:
    """Start and end of the series master (the first VEVENT without
    RECURRENCE-ID), only where they are UTC stamps: a local time in a
    Windows time zone cannot be placed without that zone's rules."""
    out: dict[str, str] = {}
    inside, props = False, dict[str, str]()
    for name, value in _content_lines(text):
        if name == "BEGIN" and value.upper() == "VEVENT":
            inside, props = True, {}
        elif name == "END" and value.upper() == "VEVENT" and inside:
            if "RECURRENCE-ID" not in props:
                break
            inside = False
        elif inside:
            props.setdefault(name, value)
    for key in ("start", "end"):
        m = _UTC_STAMP.match(props.get(f"DT{key.upper()}", ""))
        if m:
            stamp = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
            out[key] = utc_text(stamp.replace(tzinfo=UTC))
    return out


#: Exchange (EWS and Graph) keeps three e-mail addresses per contact; the import reports
#: the ones it could not keep, so verify asks for the first three only
KEPT_EMAILS = 3


def differences(stored: Mapping[str, str], target: Mapping[str, str]) -> list[str]:
    """What differs, in words; only fields the store has and the target reports."""
    out = []
    for key, want in stored.items():
        if key not in target:
            continue
        if key == "emails":
            if not _emails_kept(want, target[key]):
                out.append(f"{key} {target[key]!r} != {want!r}")
        elif " ".join(target[key].split()) != " ".join(want.split()):
            out.append(f"{key} {target[key]!r} != {want!r}")
    return out


def _emails_kept(stored: str, target: str) -> bool:
    """Every address the target has is the store's, and none is missing but those past
    the three a target keeps."""
    want, got = set(filter(None, stored.split(","))), set(filter(None, target.split(",")))
    return got <= want and len(got) >= min(len(want), KEPT_EMAILS)


def _part_text(raw: bytes, types: tuple[str, ...]) -> str:
    msg = _PARSER.parsebytes(raw)
    for part in msg.walk():
        if part.get_content_type() in types:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def _content_lines(text: str) -> list[tuple[str, str]]:
    """(NAME, value) of each unfolded content line; parameters dropped except
    that the value keeps what follows the first unquoted colon."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    out = []
    for line in unfolded.splitlines():
        head, sep, value = line.partition(":")
        if sep:
            name = head.split(";", 1)[0].split(".")[-1].strip().upper()
            out.append((name, value.strip()))
    return out


def _unescape(value: str) -> str:
    return re.sub(r"\\([nN,;\\])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
