"""CLI habits people bring from other tools (issue 15.10): global options after the
command too (`pstkit verify S T --json`), `-h`, `pstkit help [COMMAND]`, and help
texts that name values as people do (`--root FOLDER`, `--duplicates skip|allow|replace`)
instead of Python types (`<str>`, `<list[str]>`, `{store}`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from pstkit.cli.app import app, env_of
from pstkit.errors import UsageError

#: the global flags (app.py's callback), and those of them that take a value
GLOBAL_FLAGS = frozenset({"--json", "--debug", "--verbose", "-v", "--quiet", "-q"})
GLOBAL_VALUED = frozenset({"--log-file", "--config"})

#: what an option's value is, by parameter name (the rest: the name in capitals)
METAVARS = {
    "root": "FOLDER", "select": "FOLDER", "exclude": "GLOB", "include": "GLOB",
    "password_env": "VAR", "client_secret_env": "VAR", "password_file": "FILE",
    "token_file": "FILE", "client_secret_file": "FILE", "passphrase_file": "FILE",
    "client_cert": "PEM", "ca_file": "PEM", "password_command": "COMMAND",
    "token_command": "COMMAND", "opt": "KEY=VALUE", "connections": "N", "parallel": "N",
    "since": "YYYY-MM-DD", "before": "YYYY-MM-DD", "max_size": "SIZE", "work_store": "DIR",
    "batch": "CSV", "server": "imaps://HOST[:PORT]", "mailbox": "ADDRESS", "tenant": "TENANT",
    "client_id": "APP-ID", "codepage": "CODEPAGE", "duplicates": "skip|allow|replace",
    "auth": "METHOD", "fmt": "maildir|mbox", "source": "SOURCE", "target": "TARGET",
    "store": "STORE", "log_file": "FILE", "bwlimit": "RATE", "config": "FILE",
}  # fmt: skip


def hoist_globals(args: Sequence[str]) -> list[str]:
    """Global options found after the command move in front of it, so
    `pstkit verify S T --json` means `pstkit --json verify S T`. Nothing after
    `--` moves (it is data)."""
    front: list[str] = []
    rest: list[str] = []
    seen_command = False
    items = iter(args)
    for arg in items:
        if arg == "--":
            rest.append(arg)
            rest.extend(items)
            break
        if not seen_command:
            front.append(arg)
            prev = front[-2] if len(front) > 1 else ""
            seen_command = not arg.startswith("-") and prev not in GLOBAL_VALUED
            continue
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.insert(_command_at(front), arg)
        elif name in GLOBAL_VALUED:
            value = [arg] if "=" in arg else [arg, next(items, "")]
            at = _command_at(front)
            front[at:at] = value
        else:
            rest.append(arg)
    return front + rest


def _command_at(front: list[str]) -> int:
    return len(front) - 1


def polish(command: Any) -> None:
    """Help metavars for every parameter of every command (typer would print
    `<str>`); called once on the click command typer builds."""
    for param in getattr(command, "params", ()):
        if getattr(param, "is_flag", False) or not param.name:
            continue
        if param.metavar is None:
            param.metavar = METAVARS.get(param.name, param.name.upper().replace("_", "-"))
        if getattr(param, "param_type_name", "") == "argument":
            _plain_argument(param)
    for sub in getattr(command, "commands", {}).values():
        polish(sub)


def _plain_argument(param: Any) -> None:
    """`STORE`, `[STORE]` in usage and help (typer writes `{STORE} <str>`)."""
    shown = param.metavar if param.required else f"[{param.metavar}]"
    param.display_type_rich = lambda ctx: None
    param._usage_display_name = lambda: shown + ("..." if param.nargs != 1 else "")


@app.command("help")
def help_cmd(
    ctx: typer.Context,
    command: Annotated[str | None, typer.Argument(help="The command to explain.", metavar="COMMAND")] = None,
) -> int:  # fmt: skip
    """Show the help of pstkit or of one command.

    \b
    Examples:
      pstkit help
      pstkit help verify
    """
    root = ctx.find_root()
    group = root.command
    if command is None:
        env_of(ctx).out(group.get_help(root))
        return 0
    sub = group.get_command(root, command)  # type: ignore[attr-defined]
    if sub is None:
        raise UsageError(f"no command {command!r}; `pstkit help` lists them")
    with sub.make_context(command, [], parent=root, resilient_parsing=True) as sub_ctx:
        env_of(ctx).out(sub.get_help(sub_ctx))
    return 0
