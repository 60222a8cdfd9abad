"""The PST source's `--opt` settings (`pst_reader`, `pst_system`). Pure."""

from __future__ import annotations

from pstkit.errors import UsageError
from pstkit.options import ConnectOptions

_READERS = ("nodes", "libpff")


def reader_option(options: ConnectOptions, path: str) -> str:
    """`pst_reader=libpff` reads everything through pypff (slower; a way around a problem
    in the node reader); the default reads through pst_nodes with pypff as fallback."""
    value = options.extra.get("pst_reader", "nodes")
    if value not in _READERS:
        raise UsageError(f"unknown pst_reader {value!r} for {path}",
                         hint="pst_reader is nodes (default) or libpff")
    return value


def system_option(options: ConnectOptions, path: str) -> bool:
    """`pst_system=include` also exports Outlook's own folders (Freebusy Data, Sync Issues,
    RSS Feeds…); by default their items are counted as "system items, not exported"."""
    value = options.extra.get("pst_system", "skip")
    if value not in ("skip", "include"):
        raise UsageError(f"unknown pst_system {value!r} for {path}",
                         hint="pst_system is skip (default) or include")
    return value == "include"
