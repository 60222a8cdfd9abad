"""Address lists as `email.utils.getaddresses` reads them, without it for the plain ones.
Pure.

getaddresses parses character by character in Python: a sixth of the PST writer's
translating process went there (py-spy, 5,000 bench messages), for lists that are almost
always `addr`, `Name <addr>` or `"Name" <addr>` separated by commas. Those are read
here; anything else (comments, groups, domain literals, escapes, empty entries, a name
with an "@", an address outside the plain dot-atom form) goes to getaddresses, so the
answer is always the one it gives (tests/pst/test_write_addrlist.py compares the two).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import getaddresses

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
_FWS = " \t\r\n"  # what getaddresses skips between words (a folded line included)
_WS = re.compile(r"[ \t\r\n]+")
#: one entry and the comma after it: a quoted name (no escapes, no line break in it) or
#: plain words, then <address>; or a bare address. A name's words hold no specials but
#: the dot; comments, groups, domain literals and escapes never match.
_ENTRY = re.compile(r"""[ \t\r\n]*
    (?: "(?P<quoted>[^"\\\r\n]*)" [ \t\r\n]* <(?P<qaddr>[^<>]*)>
      | (?P<words>[^"()\\\[\];:<>@,]*?) <(?P<addr>[^<>]*)>
      | (?P<bare>[^"()\\\[\];:<>@,\s]+@[^"()\\\[\];:<>@,\s]+) )
    [ \t\r\n]* (?:,|\Z)""", re.VERBOSE)


def addresses(values: Sequence[str]) -> list[tuple[str, str]]:
    """(name, address) of each entry of the header values, as getaddresses gives them."""
    plain = _plain(values)
    return plain if plain is not None else getaddresses(values)


def _plain(values: Sequence[str]) -> list[tuple[str, str]] | None:
    out: list[tuple[str, str]] = []
    for value in values:
        if not value.strip(_FWS):
            return None  # getaddresses makes an empty entry of it
        pos = 0
        while pos < len(value):
            m = _ENTRY.match(value, pos)
            if m is None:
                return None
            pos = m.end()
            if value[pos - 1] == "," and not value[pos:].strip(_FWS):
                return None  # a comma and nothing after it: an empty entry
            if m["bare"] is not None:
                name, addr = "", m["bare"]
            elif m["quoted"] is not None:
                name, addr = m["quoted"], m["qaddr"]
            else:
                name, addr = " ".join(_WS.split(m["words"].strip(_FWS))), m["addr"]
            if not _ADDR.match(addr):
                return None
            out.append((name, addr))
    return out
