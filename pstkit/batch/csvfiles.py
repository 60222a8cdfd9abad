"""The batch CSVs -> jobs (pure apart from reading the file).

`export --batch users.csv STORE_DIR` reads Microsoft's IMAP-migration CSV
(header names as in Exchange Online's IMAP migration, matched
case-insensitively): EmailAddress, UserName, Password, and optionally
Server (or Host), Port, Security (SSL|TLS|None). Rows without a server use
the `--server` URL. Each row becomes one store, STORE_DIR/<EmailAddress>.

`import --batch mapping.csv` reads pstkit's mapping CSV, one row per
mailbox (see `read_mapping`). Passwords live only in memory (JobSecrets);
an engine that sends jobs elsewhere seals them first.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pstkit.batch.jobs import Job, JobSecrets
from pstkit.errors import UsageError
from pstkit.location import Location, parse_location
from pstkit.options import ConnectOptions, FetchFilter

_SCHEMES = {"ssl": "imaps", "tls": "imap", "starttls": "imap", "none": "imap", "": ""}


@dataclass(frozen=True)
class BatchMailbox:
    email: str
    location: Location
    password: str = ""

    def __repr__(self) -> str:  # never show the password
        return f"BatchMailbox({self.email!r}, {self.location.display()!r})"


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, lower-cased column -> stripped value) for every row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    return [(n, {k.strip().lower(): (v or "").strip() for k, v in row.items() if k})
            for n, row in enumerate(rows, start=2)]  # fmt: skip


def read_users(path: Path, server: Location | None) -> list[BatchMailbox]:
    out = []
    for n, cols in _rows(path):
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


def export_jobs(
    mailboxes: Sequence[BatchMailbox], store_dir: Path, batch_id: str,
    options: ConnectOptions, filt: FetchFilter,
) -> tuple[list[Job], dict[str, JobSecrets]]:  # fmt: skip
    """One export job per row; the store path is made absolute (workers run elsewhere)."""
    _unique([b.email for b in mailboxes], "EmailAddress")
    root = store_dir.expanduser().absolute()
    jobs = [Job(batch_id, b.email, str(root / store_name(b.email)), source=b.location,
                source_options=options, filt=filt) for b in mailboxes]  # fmt: skip
    return jobs, {b.email: JobSecrets(source=b.password) for b in mailboxes if b.password}


def _unique(keys: Sequence[str], column: str) -> None:
    seen: set[str] = set()
    for k in keys:
        if k.lower() in seen:
            raise UsageError(f"{column} {k!r} appears twice: one row per mailbox")
        seen.add(k.lower())
