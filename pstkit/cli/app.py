"""The typer application and its global options."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from pstkit.cli.env import Env

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Move mailboxes between IMAP/POP3, PST/OST, Maildir/mbox and Exchange "
    "through a verifiable store on disk.",
    epilog=(
        "\b\nSources and targets:\n"
        "  maildir:PATH  mbox:PATH  eml:DIR  pst:FILE (.pst/.ost)\n"
        "  imap://user@host[:port] (STARTTLS)  imaps://user@host  pop3s://user@host\n"
        "  ews://user@host[/EWS/Exchange.asmx]  ews://user@autodiscover  graph://TENANT/MAILBOX\n"
        "  a bare path: an existing store, Maildir, mbox, .eml directory or PST\n\n"
        "\b\nGlobal options may also follow the command (pstkit verify S T --json).\n"
        "`pstkit help COMMAND` or `pstkit COMMAND -h` explains a command."
    ),
)


def env_of(ctx: typer.Context) -> Env:
    root = ctx.find_root()
    if not isinstance(root.obj, Env):
        root.obj = Env()
    return root.obj


@app.callback()
def _global(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable results on stdout.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More log lines on stderr.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="Also write each run's log here (the store keeps "
                     "its own in logs/run-N.log).", metavar="FILE"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Option defaults and profiles (@NAME) from this TOML "
                     "file (default: ~/.config/pstkit/config.toml).", metavar="FILE"),
    ] = None,
) -> None:  # fmt: skip
    env = env_of(ctx)
    env.json, env.debug, env.quiet, env.verbose = json_out, debug, quiet, verbose
    env.log_file = log_file  # (--config was read before parsing: pstkit.cli.settings)
    handler = logging.StreamHandler(env.stderr)
    handler.setFormatter(logging.Formatter("pstkit: %(message)s"))
    # The logger passes everything to the run logs; the terminal sees warnings (-v: all).
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    env.log_handler = handler
    logger = logging.getLogger("pstkit")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
