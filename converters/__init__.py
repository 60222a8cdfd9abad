"""Registry of converters: scheme -> module, imported lazily.

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
    module: str
    source: str | None  # class name in `module`, or None
    sink: str | None
    extra: str | None = None  # pip extra that provides `requires`
    requires: tuple[str, ...] = ()  # import names checked before loading


REGISTRY: dict[str, Entry] = {
    "maildir": Entry("converters.maildir", "MaildirSource", "MaildirSink"),
    "mbox": Entry("converters.mbox", "MboxSource", "MboxSink"),
    "eml": Entry("converters.eml", "EmlSource", None),
    "pst": Entry("converters.pst", "PstSource", None, "pst", ("pypff",)),
    "imap": Entry("converters.imap", "ImapSource", "ImapSink", "imap", ("imapclient",)),
    "imaps": Entry("converters.imap", "ImapSource", "ImapSink", "imap", ("imapclient",)),
    "pop3": Entry("converters.pop3", "Pop3Source", None),
    "pop3s": Entry("converters.pop3", "Pop3Source", None),
    "ews": Entry("converters.ews", None, "EwsSink", "ews", ("exchangelib",)),
    "graph": Entry("converters.graph", None, "GraphSink", "graph", ("msal", "httpx")),
}


def _load(loc: Location, role: str) -> type[Any]:
    entry = REGISTRY.get(loc.scheme)
    name = None if entry is None else (entry.source if role == "source" else entry.sink)
    if entry is None or name is None:
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
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as e:
        if e.name == entry.module:
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
