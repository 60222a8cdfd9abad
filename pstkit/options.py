"""Options handed from the CLI to converters and pipelines (plain data, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pstkit.model import DuplicatePolicy, FolderPath


@dataclass(frozen=True)
class SecretSpec:
    """Where a secret comes from. The secret itself is never stored here.

    Order of precedence when resolving: command, file, environment variable,
    then an interactive prompt (only if `prompt` and stdin is a TTY).
    """

    env: str | None = None
    file: Path | None = None
    command: str | None = None
    prompt: bool = True
    label: str = "password"
    #: a value already in memory (a row of a batch CSV); never shown by repr.
    value: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ConnectOptions:
    """Everything a converter may need to reach its system.

    One flat record so the CLI stays generic; each converter reads the fields
    it understands and ignores the rest. `extra` carries `--opt key=value`.
    """

    password: SecretSpec = field(default_factory=lambda: SecretSpec(env="PSTKIT_PASSWORD"))
    token: SecretSpec | None = None  # OAuth2 access token (XOAUTH2/OAUTHBEARER, EWS, Graph)
    auth: str = "auto"  # auto|password|xoauth2|oauthbearer|ntlm|basic|oauth2|device-code
    ca_file: Path | None = None
    insecure: bool = False
    starttls: bool = True  # for plain imap:// and pop3:// upgrade when offered
    timeout: float = 60.0
    connections: int = 1
    codepage: str | None = None  # PST: override the ANSI code page
    mailbox: str | None = None  # EWS/Graph: the target mailbox (SMTP address or UPN)
    impersonate: bool = False  # EWS: act as `mailbox` via ApplicationImpersonation
    tenant: str | None = None  # Graph: directory (tenant) id
    client_id: str | None = None  # Graph/EWS OAuth2 application id
    client_secret: SecretSpec | None = None
    client_cert: Path | None = None
    gmail: bool | None = None  # None = detect from X-GM-EXT-1
    delete_after_export: bool = False  # POP3 only
    extra: Mapping[str, str] = field(default_factory=dict)
    #: verify, plan: the target is only looked at; a local one that is not there is not made
    only_read: bool = False


@dataclass(frozen=True)
class FetchFilter:
    """What to export. Sources apply what they can server-side; the pipeline
    re-checks `since`/`before`/`max_size` on every result and turns a miss
    into a reported skip, so a source that ignores these stays correct."""

    include: tuple[str, ...] = ()  # folder globs over "/"-joined paths; empty = all
    exclude: tuple[str, ...] = ()
    since: datetime | None = None  # received >= since
    before: datetime | None = None  # received < before
    max_size: int | None = None  # bytes; larger messages are skipped and reported
    newest_first: bool = False


@dataclass(frozen=True)
class MappingOptions:
    """Outlook's "import items into the same folder, include subfolders"."""

    target_root: FolderPath = ()  # nest everything under this target folder
    select: FolderPath | None = None  # import only this store folder …
    include_subfolders: bool = True  # … and, if set, its subfolders
    exclude: tuple[str, ...] = ()  # folder globs to leave out
    by_role: bool = True  # map special folders by role (Sent -> Sent Items)
    duplicates: DuplicatePolicy = DuplicatePolicy.SKIP
