"""The bits of OData the mail endpoints need: extended-property ids, $filter, $select.

Only the filter forms Microsoft documents for this use are understood:
  singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and ep/value eq '<v>')
  internetMessageId eq '<v>'
Anything else is refused with 400, as Graph refuses filters it cannot run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tests.servers.graph.core import bad_request

TYPES = {
    t.lower(): t
    for t in (
        "Binary",
        "Boolean",
        "Currency",
        "CLSID",
        "Double",
        "Float",
        "Integer",
        "Long",
        "Short",
        "String",
        "SystemTime",
    )
}
_TAG = re.compile(r"^(\w+) 0x([0-9a-fA-F]{1,4})$")
_NAMED = re.compile(r"^(\w+) \{([0-9a-fA-F-]{36})\} (Name|Id) (.+)$")


def norm_prop_id(raw: str) -> str:
    """Canonical form of a property id, e.g. 'Integer 0x0E07' -> 'Integer 0xe07'."""
    m = _TAG.match(raw.strip())
    if m and m.group(1).lower() in TYPES:
        return f"{TYPES[m.group(1).lower()]} 0x{int(m.group(2), 16):x}"
    m = _NAMED.match(raw.strip())
    if m and m.group(1).lower() in TYPES:
        kind, guid, how, name = m.groups()
        if how == "Id":
            name = f"0x{int(name, 16):x}" if re.fullmatch(r"0x[0-9a-fA-F]+", name) else name
        return f"{TYPES[kind.lower()]} {{{guid.lower()}}} {how} {name}"
    raise bad_request(
        f"The extended property id '{raw}' is not valid.", "ErrorInvalidExtendedProperty"
    )


def check_prop_value(pid: str, value: object) -> str:
    if not isinstance(value, str):
        raise bad_request(
            f"Extended property '{pid}' needs a string value.", "ErrorInvalidExtendedPropertyValue"
        )
    kind = pid.split(" ", 1)[0]
    try:
        if kind in ("Integer", "Long", "Short"):
            int(value)
        elif kind == "SystemTime":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif kind == "Boolean" and value.lower() not in ("true", "false"):
            raise ValueError(value)
    except ValueError as e:
        raise bad_request(
            f"The value '{value}' is not valid for extended property '{pid}'.",
            "ErrorInvalidExtendedPropertyValue",
        ) from e
    return value


_STR = r"'((?:[^']|'')*)'"
_ANY = re.compile(
    r"^singleValueExtendedProperties/any\((\w+):\s*\1/id eq "
    + _STR
    + r" and \1/value eq "
    + _STR
    + r"\)$",
    re.IGNORECASE,
)
_FIELD = re.compile(r"^(internetMessageId|subject) eq " + _STR + r"$", re.IGNORECASE)


@dataclass(frozen=True)
class Filter:
    prop_id: str | None = None  # normalised extended-property id
    field: str | None = None
    value: str = ""


def parse_filter(text: str) -> Filter:
    text = text.strip()
    m = _ANY.match(text)
    if m:
        return Filter(
            prop_id=norm_prop_id(m.group(2).replace("''", "'")), value=m.group(3).replace("''", "'")
        )
    m = _FIELD.match(text)
    if m:
        name = "internetMessageId" if m.group(1).lower() == "internetmessageid" else "subject"
        return Filter(field=name, value=m.group(2).replace("''", "'"))
    raise bad_request(f"Invalid filter clause: {text}", "BadRequest")


_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=(.+)\)$", re.IGNORECASE)
_ID_EQ = re.compile(r"^id eq " + _STR + r"$", re.IGNORECASE)


def parse_expand(text: str) -> list[str]:
    """Property ids asked for with $expand=singleValueExtendedProperties($filter=id eq …)."""
    if not text:
        return []
    m = _EXPAND.match(text.strip())
    if not m:
        raise bad_request(f"Parsing OData Select and Expand failed: {text}", "BadRequest")
    out = []
    for clause in re.split(r"\s+or\s+", m.group(1), flags=re.IGNORECASE):
        c = _ID_EQ.match(clause.strip())
        if not c:
            raise bad_request(f"Invalid filter clause: {clause}", "BadRequest")
        out.append(norm_prop_id(c.group(1).replace("''", "'")))
    return out
