"""Typer option types shared by the commands, and their translation into the
plain option records of `pstkit.options` (secrets are never options' values)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from pstkit.errors import BadLocation, UsageError
from pstkit.location import parse_location
from pstkit.model import DuplicatePolicy
from pstkit.options import ConnectOptions, FetchFilter, MappingOptions, SecretSpec

PasswordEnv = Annotated[
    str,
    typer.Option(help="Environment variable holding the password.", rich_help_panel="Connection"),
]
PasswordFile = Annotated[
    Path | None, typer.Option(help="File holding the password.", rich_help_panel="Connection")
]
PasswordCommand = Annotated[
    str | None, typer.Option(help="Command printing the password.", rich_help_panel="Connection")
]
TokenFile = Annotated[
    Path | None,
    typer.Option(help="File holding an OAuth2 access token.", rich_help_panel="Connection"),
]
TokenCommand = Annotated[
    str | None,
    typer.Option(help="Command printing an OAuth2 access token.", rich_help_panel="Connection"),
]
Auth = Annotated[
    str,
    typer.Option(
        help="auto; IMAP: password, xoauth2, oauthbearer; POP3: password, apop; "
        "EWS: ntlm, basic, oauth2; Graph: client-credentials, device-code.",
        rich_help_panel="Connection",
    ),
]
# Targets (import, plan, verify) are never POP3: apop is not offered there.
TargetAuth = Annotated[
    str,
    typer.Option(
        "--auth",
        help="auto; IMAP: password, xoauth2, oauthbearer; "
        "EWS: ntlm, basic, oauth2; Graph: client-credentials, device-code.",
        rich_help_panel="Connection",
    ),
]
CaFile = Annotated[
    Path | None, typer.Option(help="Trust this CA certificate (PEM).", rich_help_panel="Connection")
]
Insecure = Annotated[
    bool, typer.Option(help="Do not verify TLS certificates.", rich_help_panel="Connection")
]
MAX_CONNECTIONS = 27  # below the per-user connection limits servers commonly set


def between(low: int, high: int) -> Any:
    """An option callback checking low..high. Not typer's min/max: those print
    `1<=x<=27` in the help; the help text says the range in words instead."""

    def check(value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise typer.BadParameter(f"{value} is not between {low} and {high}")
        return value

    return check


#: With an IMAP server and no --connections: two folders at a time, either way. Measured
#: (issue 19): export (note 19-imapexport3.md) wall 12.97 -> 10.15 s imaps, 6.48 -> 4.52 s
#: plain for +0.3 s CPU; import (`scripts/bench_imap_import.py --messages 5000`, Dovecot)
#: 616 -> 984 msg/s (mbsync 577-649) for +0.15 s CPU and +49 MiB peak RSS. Two leave a mail
#: client room under Dovecot's 10 and Gmail's 15 per-user connections.
IMAP_CONNECTIONS = 2


def _connections_option(default_text: str) -> Any:
    return typer.Option(
        "--connections",
        metavar="N",
        callback=between(1, MAX_CONNECTIONS),
        rich_help_panel="Connection",
        help=f"Parallel connections across folders, 1 to {MAX_CONNECTIONS}. Default: "
        f"{IMAP_CONNECTIONS} {default_text} an IMAP server, else 1.",
        show_default=False,
    )


ExportConnections = Annotated[int | None, _connections_option("from")]
ImportConnections = Annotated[int | None, _connections_option("into")]


def server_connections(given: int | None, location: str | None) -> int:
    """--connections as given, else the default for the kind of server or file at
    `location` (the export's source, the import's target; a location that does not
    parse gets 1: opening it reports the error)."""
    if given is not None:
        return given
    if location is None:
        return 1
    try:
        scheme = parse_location(location).scheme
    except BadLocation:
        return 1
    return IMAP_CONNECTIONS if scheme in ("imap", "imaps") else 1


Opt = Annotated[
    list[str] | None,
    typer.Option(
        "--opt", help="Converter option KEY=VALUE (repeatable).", rich_help_panel="Connection"
    ),
]


def parse_size(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)?\s*", text, re.IGNORECASE)
    if not m:
        raise UsageError(f"cannot read size {text!r} (use e.g. 35MB, 500k)")
    unit = (m.group(2) or "").lower().rstrip("b").rstrip("i")
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    return int(float(m.group(1)) * factor)


def parse_date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise UsageError(f"cannot read date {text!r} (use YYYY-MM-DD)") from e
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_opts(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--opt needs KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def secret(
    env: str | None, file: Path | None, command: str | None, label: str, prompt: bool
) -> SecretSpec:
    return SecretSpec(env=env, file=file, command=command, prompt=prompt, label=label)


def folder_path(text: str | None) -> tuple[str, ...] | None:
    """ "Inbox/Project" -> ("Inbox", "Project"); "" -> the root ()."""
    if text is None:
        return None
    return tuple(p for p in text.split("/") if p)


def connect_options(
    *,
    password_env: str = "PSTKIT_PASSWORD",
    password_file: Path | None = None,
    password_command: str | None = None,
    token_file: Path | None = None,
    token_command: str | None = None,
    auth: str = "auto",
    ca_file: Path | None = None,
    insecure: bool = False,
    connections: int = 1,
    opt: list[str] | None = None,
    codepage: str | None = None,
    gmail: bool | None = None,
    delete_after_export: bool = False,
    mailbox: str | None = None,
    impersonate: bool = False,
    tenant: str | None = None,
    client_id: str | None = None,
    client_secret_env: str | None = None,
    client_secret_file: Path | None = None,
    client_cert: Path | None = None,
) -> ConnectOptions:
    token = None
    if token_file or token_command:
        token = secret(None, token_file, token_command, "token", False)
    client_secret = None
    if client_secret_env or client_secret_file:
        client_secret = secret(client_secret_env, client_secret_file, None, "client secret", False)
    return ConnectOptions(
        password=secret(password_env, password_file, password_command, "password", True),
        token=token, auth=auth, ca_file=ca_file, insecure=insecure, connections=connections,
        codepage=codepage, mailbox=mailbox, impersonate=impersonate, tenant=tenant,
        client_id=client_id, client_secret=client_secret, client_cert=client_cert, gmail=gmail,
        delete_after_export=delete_after_export, extra=parse_opts(opt),
    )  # fmt: skip


CONNECT_KEYS = frozenset(connect_options.__kwdefaults__ or {})


def pick_connect(values: dict[str, Any]) -> dict[str, Any]:
    """The connection options among a command's arguments."""
    return {k: v for k, v in values.items() if k in CONNECT_KEYS}


def fetch_filter(
    include: list[str] | None, exclude: list[str] | None, since: str | None,
    before: str | None, max_size: str | None, newest_first: bool,
) -> FetchFilter:  # fmt: skip
    return FetchFilter(
        include=tuple(include or ()), exclude=tuple(exclude or ()), since=parse_date(since),
        before=parse_date(before), max_size=parse_size(max_size), newest_first=newest_first,
    )  # fmt: skip


def mapping_options(
    root: str | None, select: str | None, subfolders: bool, exclude: list[str] | None,
    duplicates: str, by_role: bool,
) -> MappingOptions:  # fmt: skip
    try:
        policy = DuplicatePolicy(duplicates)
    except ValueError as e:
        raise UsageError(f"--duplicates must be skip, allow or replace, not {duplicates!r}") from e
    return MappingOptions(
        target_root=folder_path(root) or (), select=folder_path(select),
        include_subfolders=subfolders, exclude=tuple(exclude or ()), by_role=by_role,
        duplicates=policy,
    )  # fmt: skip
