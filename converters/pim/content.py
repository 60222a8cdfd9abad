"""vCard/iCalendar content lines, and finding them in a stored item (pure).

Shared by the Graph sink (vCard/iCalendar -> contacts and events) and the
PST writer (vCard/iCalendar -> Outlook items). RFC 6350 / RFC 5545:
lines are folded with CRLF + one space or tab; a property is
`NAME;PARAM=a,b;PARAM="quoted:value":value`; text values escape `\\,`,
`\\;`, `\\\\` and `\\n` (`\\N`). vCard 2.1 QUOTED-PRINTABLE/CHARSET values
(which old Outlook exports still carry) are decoded too.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import quopri
from dataclasses import dataclass, field
from email.message import Message

VCARD_TYPES = ("text/vcard", "text/x-vcard", "text/directory")
ICAL_TYPES = ("text/calendar",)


@dataclass(frozen=True)
class Line:
    name: str  # upper case, group prefix ("item1.") removed
    value: str  # raw value: still escaped (use text()/parts())
    params: dict[str, list[str]] = field(default_factory=dict)

    def param(self, name: str) -> str:
        values = self.params.get(name.upper(), [])
        return values[0] if values else ""

    def types(self) -> set[str]:
        """TYPE values, upper case (vCard 2.1 bare parameters count as types)."""
        return {t.upper() for t in self.params.get("TYPE", [])}

    def text(self) -> str:
        return unescape(self.value)

    def parts(self, sep: str = ";") -> list[str]:
        return [unescape(p) for p in split_unescaped(self.value, sep)]


def unfold(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and out:
            out[-1] += raw[1:]
        elif raw.strip():
            out.append(raw)
    return out


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def split_unescaped(value: str, sep: str, quotes: bool = False) -> list[str]:
    """Split on `sep` not preceded by a backslash escape (values stay escaped). With
    `quotes`, also not inside double quotes, where a backslash is just a character: a
    quoted parameter value may hold ';', ':' and ',' (RFC 5545 3.1, RFC 6350 3.3),
    e.g. CN="Doe, Jane"."""
    parts, cur, quoted, i = [], [], False, 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and not quoted:
            cur.append(value[i : i + 2])
            i += 2
            continue
        if quotes and c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _split_head(line: str) -> tuple[str, str]:
    """Name+params and value: the first ':' outside double quotes."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == ":" and not quoted:
            return line[:i], line[i + 1 :]
    return line, ""


def _params(items: list[str]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq:  # vCard 2.1: "TEL;WORK;VOICE:" means TYPE=WORK,VOICE
            key, val = "TYPE", item
        values = [v.strip('"') for v in split_unescaped(val, ",", quotes=True)] if val else []
        params.setdefault(key.strip().upper(), []).extend(values)
    return params


def parse_line(line: str) -> Line:
    head, value = _split_head(line)
    pieces = split_unescaped(head, ";", quotes=True)
    name = pieces[0].strip().upper().rsplit(".", 1)[-1]
    params = _params(pieces[1:])
    if "QUOTED-PRINTABLE" in (v.upper() for v in params.get("ENCODING", [])):
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        # On a bad charset the value stays as it came: a visible oddity beats a lost value.
        with contextlib.suppress(LookupError, UnicodeEncodeError):
            value = quopri.decodestring(value.encode("latin-1")).decode(charset, "replace")
    return Line(name, value, params)


def _join_soft_breaks(lines: list[str]) -> list[str]:
    """vCard 2.1 quoted-printable soft line breaks ('=' at the end) continue a value."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("=") and "QUOTED-PRINTABLE" in out[-1].upper():
            out[-1] = out[-1][:-1] + line
        else:
            out.append(line)
    return out


def lines(text: str) -> list[Line]:
    return [parse_line(x) for x in _join_soft_breaks(unfold(text))]


# --- the part inside a stored item -------------------------------------------


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return payload.decode("utf-8", "replace")


def find_part(raw: bytes, types: tuple[str, ...]) -> str | None:
    """The text of the first MIME part with one of `types`, or None."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_content_type() in types:
            return _decoded(part)
    return None


def parse_rrule(text: str) -> dict[str, str]:
    """An RRULE value (RFC 5545 3.3.10) as {PART: VALUE}, both upper-case: `FREQ=weekly;
    byday=TU` -> {"FREQ": "WEEKLY", "BYDAY": "TU"}. Empty parts are dropped."""
    out = {}
    for item in text.split(";"):
        key, _, value = item.partition("=")
        if key.strip():
            out[key.strip().upper()] = value.strip().upper()
    return out


def escape(text: str) -> str:
    """RFC 6350 / RFC 5545 TEXT escaping (the inverse of `Line.text`'s unescaping)."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
