"""Registry of converters: scheme -> "room.module:Class", imported lazily.

One room (subpackage) per system: `local` (Maildir, mbox, .eml), `imap` (IMAP and POP3),
`pst` (Outlook PST/OST), `ews` (Exchange Web Services), `graph` (Microsoft Graph), and `pim`,
the neutral home of what several rooms share (time zones, iCalendar). A room imports only
`pstkit` core and `pim`, never another room (tests/core/test_layout.py checks it).
A new converter is one module plus one line here. A missing optional
library becomes a one-line "pst needs: pip install 'pstkit[pst]'" error.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, cast

from pstkit.errors import BadLocation, MissingDependency
from pstkit.location import Location
from pstkit.options import ConnectOptions
from pstkit.protocols import Sink, Source


@dataclass(frozen=True)
class Entry:
    source: str | None  # "module:Class" (module under pstkit.converters), or None
    sink: str | None
    extra: str | None = None  # pip extra that provides `requires`
    requires: tuple[str, ...] = ()  # import names checked before loading


_IMAP = Entry("imap.source:ImapSource", "imap.sink:ImapSink", "imap", ("imapclient",))
_POP3 = Entry("imap.pop3:Pop3Source", None)

REGISTRY: dict[str, Entry] = {
    "maildir": Entry("local.maildir:MaildirSource", "local.maildir:MaildirSink"),
    "mbox": Entry("local.mbox:MboxSource", "local.mbox:MboxSink"),
    "eml": Entry("local.eml:EmlSource", None),
    # pypff: only a fallback of the reader (pst.libpff); the writer needs none
    "pst": Entry("pst.source:PstSource", "pst.write.sink:PstSink"),
    "imap": _IMAP,
    "imaps": _IMAP,
    "pop3": _POP3,
    "pop3s": _POP3,
    "ews": Entry(None, "ews.sink:EwsSink", "ews", ("exchangelib",)),
    "graph": Entry(None, "graph.sink:GraphSink", "graph", ("msal", "httpx")),
}


def _load(loc: Location, role: str) -> type[Any]:
    entry = REGISTRY.get(loc.scheme)
    target = None if entry is None else (entry.source if role == "source" else entry.sink)
    if entry is None or target is None:
        usable = sorted(
            s for s, e in REGISTRY.items() if (e.source if role == "source" else e.sink)
        )
        raise BadLocation(
            loc.display(), f"cannot be used as a {role} (use one of: {', '.join(usable)})"
        )
    for req in entry.requires:
        try:
            importlib.import_module(req)
        except ImportError as e:
            raise MissingDependency(loc.scheme, req, entry.extra or "all") from e
    module_name, _, name = target.partition(":")
    module_name = f"{__name__}.{module_name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise BadLocation(loc.display(), f"{loc.scheme} {role} is not built yet") from e
        raise
    cls = getattr(module, name, None)
    if cls is None:
        raise BadLocation(loc.display(), f"{loc.scheme} {role} is not built yet")
    return cast(type[Any], cls)


def open_source(loc: Location, options: ConnectOptions) -> Source:
    return cast(Source, _load(loc, "source")(loc, options))


def open_sink(loc: Location, options: ConnectOptions) -> Sink:
    return cast(Sink, _load(loc, "sink")(loc, options))


#: file checkers by scheme: "module:function", the function taking (path, progress) and
#: returning a report with `findings`, `folders`, `items` and `size` (`pstkit check pst:F`)
CHECKERS: dict[str, str] = {"pst": "pst.write.check:check_path"}


def open_checker(scheme: str) -> Any:
    """The file checker of a scheme, imported when asked for."""
    module_name, _, name = CHECKERS[scheme].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
