"""Many mailboxes at once: Microsoft's IMAP-migration CSV -> one store each.

CSV columns (header names as in Exchange Online's IMAP migration, matched
case-insensitively): EmailAddress, UserName, Password, and optionally
Server (or Host), Port, Security (SSL|TLS|None). Rows without a server use
the `--server` URL. Passwords live only in memory: they are handed to the
converter in a SecretSpec whose value is never printed or stored.
"""

from __future__ import annotations

import concurrent.futures
import csv
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pstkit.errors import PstkitError, UsageError
from pstkit.location import Location, parse_location
from pstkit.options import ConnectOptions, FetchFilter, SecretSpec
from pstkit.pipeline import export
from pstkit.protocols import Source
from pstkit.store import Store

_SCHEMES = {"ssl": "imaps", "tls": "imap", "starttls": "imap", "none": "imap", "": ""}


@dataclass(frozen=True)
class BatchMailbox:
    email: str
    location: Location
    password: str = ""

    def __repr__(self) -> str:  # never show the password
        return f"BatchMailbox({self.email!r}, {self.location.display()!r})"


@dataclass(frozen=True)
class BatchResult:
    email: str
    store: str
    folders: int = 0
    messages: int = 0
    bytes: int = 0
    skipped: int = 0
    error: str = ""
    exit_code: int = 0
    seconds: float = 0.0


def read_users(path: Path, server: Location | None) -> list[BatchMailbox]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    out = []
    for n, row in enumerate(rows, start=2):
        cols = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        email = cols.get("emailaddress", "")
        if not email:
            raise UsageError(f"{path}:{n}: no EmailAddress")
        out.append(
            BatchMailbox(email, _location(cols, server, f"{path}:{n}"), cols.get("password", ""))
        )
    return out


def _location(cols: dict[str, str], server: Location | None, where: str) -> Location:
    user = cols.get("username") or cols.get("emailaddress", "")
    host = cols.get("server") or cols.get("host") or ""
    security = cols.get("security", "").lower()
    if security not in _SCHEMES:
        raise UsageError(f"{where}: Security must be SSL, TLS or None, not {cols['security']!r}")
    if not host:
        if server is None:
            raise UsageError(f"{where}: no Server column and no --server")
        return replace(server, user=user)
    scheme = _SCHEMES[security] or "imaps"
    text = f"{scheme}://{host}" + (f":{cols['port']}" if cols.get("port") else "")
    return replace(parse_location(text), user=user)


def store_name(email: str) -> str:
    """A FAT-safe directory name for a mailbox's store."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", email)[:200]


def run_batch(
    mailboxes: Sequence[BatchMailbox],
    store_dir: Path,
    options: ConnectOptions,
    filt: FetchFilter,
    open_source: Callable[[Location, ConnectOptions], Source],
    parallel: int = 2,
) -> list[BatchResult]:
    """Export every mailbox into STORE_DIR/<address>; one failure never stops the rest."""

    def one(box: BatchMailbox) -> BatchResult:
        return _export_one(box, store_dir / store_name(box.email), options, filt, open_source)

    with concurrent.futures.ThreadPoolExecutor(max(1, parallel)) as pool:
        return list(pool.map(one, mailboxes))


def _export_one(
    box: BatchMailbox,
    path: Path,
    options: ConnectOptions,
    filt: FetchFilter,
    open_source: Callable[[Location, ConnectOptions], Source],
) -> BatchResult:
    start = time.monotonic()
    secret = SecretSpec(value=box.password, prompt=False) if box.password else options.password
    try:
        source = open_source(box.location, replace(options, password=secret))
        try:
            with Store.create(path, command=f"export {source.key}") as store:
                result = export(source, store, filt)
                folders = len(store.folders())
        finally:
            source.close()
    except PstkitError as e:
        return BatchResult(box.email, str(path), error=e.message, exit_code=e.exit_code,
                           seconds=time.monotonic() - start)  # fmt: skip
    return BatchResult(
        box.email, str(path), folders, result.stats["stored"], result.stats["bytes"],
        result.stats["skipped"], exit_code=result.exit_code, seconds=time.monotonic() - start,
    )  # fmt: skip
