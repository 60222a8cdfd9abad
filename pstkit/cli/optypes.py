"""The option types of the store commands (export, import, folders, plan, check) and of
verify: typer annotations with their help texts, in one place so the command modules stay
short."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pstkit.cli.opts import between

Include = Annotated[
    list[str] | None,
    typer.Option("--folder", help="Only folders matching this glob, and their subfolders "
                 "(repeatable), e.g. 'INBOX*', 'Projects' (with Projects/A); only those under "
                 "it: 'Projects/*'. A pattern that matches nothing is a warning."),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Leave out folders matching this glob, and their "
                 "subfolders (repeatable)."),
]
Codepage = Annotated[
    str | None, typer.Option(help="PST: code page of ANSI text (default: the file's).")
]
Gmail = Annotated[
    bool | None, typer.Option("--gmail/--no-gmail", help="IMAP: Gmail mode (default: detect).")
]
DeleteAfter = Annotated[
    bool, typer.Option(help="POP3: delete messages once they are safely stored.")
]
Mailbox = Annotated[
    str | None, typer.Option(help="EWS/Graph: the target mailbox (SMTP address or UPN). PST: the mailbox the files are for (the Purview mapping file's Mailbox and the New-MailboxImportRequest lines).")
]
Impersonate = Annotated[bool, typer.Option(help="EWS: act as --mailbox through impersonation.")]
Tenant = Annotated[str | None, typer.Option(help="Graph: the tenant (directory) id.")]
ClientId = Annotated[str | None, typer.Option(help="OAuth2 application (client) id.")]
ClientSecretEnv = Annotated[
    str | None, typer.Option(help="Environment variable holding the client secret.")
]
ClientSecretFile = Annotated[Path | None, typer.Option(help="File holding the client secret.")]
ClientCert = Annotated[
    Path | None, typer.Option(help="Client certificate (PEM) for app-only auth.")
]
Root = Annotated[
    str | None,
    typer.Option("--root", help="Put everything under this target folder, e.g. 'Imported/2024'."),
]
Select = Annotated[
    str | None,
    typer.Option("--select", help="Import only this store folder, e.g. 'Inbox/Projects'."),
]
Subfolders = Annotated[
    bool,
    typer.Option("--subfolders/--no-subfolders", help="With --select: include its subfolders."),
]
Duplicates = Annotated[
    str, typer.Option(help="skip (do not import duplicates), allow, or replace.")
]
Engine = Annotated[
    str,
    typer.Option(
        help="With --batch: local (processes here) or celery (workers anywhere, see `pstkit worker`)."
    ),
]
Detach = Annotated[
    bool,
    typer.Option(
        help="With --engine celery: print the batch id and return; follow with `pstkit batch status --follow`."
    ),
]
Parallel = Annotated[
    int,
    typer.Option(
        metavar="N",
        callback=between(1, 16),
        help="With --batch --engine local: mailboxes run at once, 1 to 16.",
    ),
]
BwLimit = Annotated[
    str | None,
    typer.Option(
        "--bwlimit",
        help="Bandwidth limit in bytes/s, e.g. 800K, 2M (K = 1024; off = none).",
        rich_help_panel="Connection",
    ),
]
ByRole = Annotated[
    bool,
    typer.Option("--by-role/--by-name", help="Map special folders by role (Sent -> Sent Items)."),
]
# The batch options of export and import (--batch runs); pstkit.cli.batchcmds uses them too.
Broker = Annotated[str | None, typer.Option(envvar="PSTKIT_BROKER", help="Celery broker, e.g. redis://HOST:6379/0 (or $PSTKIT_BROKER; put a URL with a password there, not in argv).")]
KeyFile = Annotated[Path | None, typer.Option(help="Key sealing the CSV's passwords on the broker; the same file on every worker (`pstkit batch key FILE`).")]
