"""`import --batch mapping.csv`: one row per mailbox -> one import job.

Columns (case-insensitive; only Source and Target are required):

    EmailAddress    the mailbox's name in the batch and in `batch status`
                    (default: the target's user name, else the source); for a
                    pst: target also the mailbox of `--purview-csv`
    Source          a pstkit store (a directory, or store:PATH), or any
                    source: imaps://user@host, pst:FILE, maildir:DIR, ...
    Store           where to stage a Source that is not a store (export
                    first, then import: the store makes both resumable)
    UserName        the source's login (as in Microsoft's IMAP CSV)
    Password        the source's password (as in Microsoft's IMAP CSV)
    TargetUserName  the target's login, if not in the Target URL
    TargetPassword  the target's password
    Root            put everything under this target folder ("Imported/2024")
    Duplicates      skip, allow or replace (as `import --duplicates`)

Relative paths are taken from the CSV's folder and made absolute.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pstkit.batch.csvfiles import _rows, _unique
from pstkit.batch.jobs import Job, JobSecrets
from pstkit.errors import PstkitError, UsageError
from pstkit.location import FILE_SCHEMES, Location, parse_location
from pstkit.model import DuplicatePolicy
from pstkit.options import ConnectOptions, MappingOptions


def read_mapping(
    path: Path, batch_id: str, source_options: ConnectOptions,
    target_options: ConnectOptions, mapping: MappingOptions,
) -> tuple[list[Job], dict[str, JobSecrets]]:  # fmt: skip
    base = path.expanduser().absolute().parent
    jobs, secrets = [], {}
    for n, cols in _rows(path):
        where = f"{path}:{n}"
        try:
            job = _job(cols, base, batch_id, source_options, target_options, mapping)
        except PstkitError as e:
            raise UsageError(f"{where}: {e.message}") from e
        jobs.append(job)
        if cols.get("password") or cols.get("targetpassword"):
            secrets[job.key] = JobSecrets(cols.get("password", ""), cols.get("targetpassword", ""))
    _unique([j.key for j in jobs], "EmailAddress")
    return jobs, secrets


def _job(
    cols: dict[str, str], base: Path, batch_id: str, source_options: ConnectOptions,
    target_options: ConnectOptions, mapping: MappingOptions,
) -> Job:  # fmt: skip
    if not cols.get("source") or not cols.get("target"):
        raise UsageError("Source and Target are required")
    source = _absolute(parse_location(_relative(cols["source"], base)), base)
    target = _absolute(parse_location(cols["target"]), base)
    if cols.get("targetusername"):
        target = replace(target, user=cols["targetusername"])
    if target.scheme == "store":
        raise UsageError(f"Target {cols['target']} is a pstkit store, not an import target")
    if source.scheme == "store":
        store, export_from = source.path, None
    else:
        if not cols.get("store"):
            raise UsageError(f"Source {cols['source']} is not a store: give a Store to stage it")
        store = str((base / Path(cols["store"]).expanduser()).absolute())
        export_from = replace(source, user=cols["username"]) if cols.get("username") else source
    key = cols.get("emailaddress") or target.user or (export_from or source).display()
    if target.scheme == "pst" and cols.get("emailaddress") and not target_options.mailbox:
        # a PST's mailbox (Purview mapping file, import requests) is the row's mailbox
        target_options = replace(target_options, mailbox=cols["emailaddress"])
    return Job(batch_id, key, store, source=export_from, target=target,
               source_options=source_options, target_options=target_options,
               mapping=_row_mapping(cols, mapping))  # fmt: skip


def _relative(text: str, base: Path) -> str:
    """A bare relative path is read from the CSV's folder (parse_location sniffs it)."""
    scheme, sep, _ = text.partition(":")
    if sep and (scheme.lower() in FILE_SCHEMES or "://" in text) and len(scheme) > 1:
        return text
    return str(base / Path(text).expanduser())


def _absolute(loc: Location, base: Path) -> Location:
    if loc.is_url or not loc.path:
        return loc
    return replace(loc, path=str((base / loc.path).absolute()))


def _row_mapping(cols: dict[str, str], default: MappingOptions) -> MappingOptions:
    out = default
    if cols.get("root"):
        out = replace(out, target_root=tuple(p for p in cols["root"].split("/") if p))
    if cols.get("duplicates"):
        try:
            out = replace(out, duplicates=DuplicatePolicy(cols["duplicates"].lower()))
        except ValueError:
            bad = cols["duplicates"]
            raise UsageError(f"Duplicates must be skip, allow or replace, not {bad!r}") from None
    return out
