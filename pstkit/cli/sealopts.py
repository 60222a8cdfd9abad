"""The option types of sealing and of bundles (export --seal, import/check BUNDLE, seal,
unseal), apart from pstkit.cli.seal: a plain export names them in its signature but
runs none of the seal code, so it imports only this."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RecipientOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--recipient",
        "-r",
        help="Encrypt to this age recipient (age1…, or a file of them such as recipient.txt); repeatable.",
        rich_help_panel="Sealing",
    ),
]
PassphraseFlag = Annotated[
    bool,
    typer.Option(
        "--passphrase",
        help="Encrypt with a passphrase (age scrypt) instead of recipients; read from $PSTKIT_PASSPHRASE, --passphrase-file or a prompt.",
        rich_help_panel="Sealing",
    ),
]
PassphraseFile = Annotated[
    Path | None, typer.Option(help="File holding the bundle passphrase.", rich_help_panel="Sealing")
]
SignKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--sign-key",
        help="minisign secret key (sign.key) that signs the manifest.",
        rich_help_panel="Sealing",
    ),
]
SignPassphraseFile = Annotated[
    Path | None,
    typer.Option(
        help="File holding sign.key's passphrase (else $PSTKIT_SIGN_PASSPHRASE or a prompt).",
        rich_help_panel="Sealing",
    ),
]
Description = Annotated[
    str,
    typer.Option(
        help="Source description for the manifest. Readable without a key: put no names or addresses in it.",
        rich_help_panel="Sealing",
    ),
]
VolumeSize = Annotated[
    str,
    typer.Option(
        help="Largest data file (plaintext bytes), e.g. 1G, 200M; FAT32 allows up to 3G here.",
        rich_help_panel="Sealing",
    ),
]
IdentityOpt = Annotated[
    Path | None,
    typer.Option(
        "--identity",
        "-i",
        help="age identity file (identity.age) that decrypts the bundle.",
        rich_help_panel="Bundle",
    ),
]
KeepCache = Annotated[
    bool,
    typer.Option(
        "--keep-cache",
        help="import BUNDLE: keep the plain work store in ~/.cache/pstkit/bundles/ after a"
        " complete import (it is removed then by default; kept anyway after problems, so a"
        " re-run resumes).",
        rich_help_panel="Sealing",
    ),
]
TrustOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust",
        help="minisign public key (sign.pub) the bundle must be signed with (default with --identity: sign.pub beside it).",
        rich_help_panel="Bundle",
    ),
]
