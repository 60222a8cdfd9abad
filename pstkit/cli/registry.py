"""Which module registers which command, so that a run imports and builds only the
command it runs. typer reads every command's signature each time it builds the click
command (~25 ms for all of them), and the command modules bring their own imports.

All commands are built when the run needs them all: `pstkit`, `pstkit -h`, `pstkit
help`, shell completion, a config file (its keys are checked against every command),
or a name not listed here (click then says what it says about an unknown command).
A new command module adds its commands here; tests/core/test_startup.py checks that
the table names every registered command.
"""

from __future__ import annotations

import copy
import importlib
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import typer

from pstkit.cli.app import app
from pstkit.cli.settings import command_and_config

MODULES: dict[str, str] = {
    "version": "about", "worker": "batchcmds", "batch": "batchcmds",
    "keygen": "seal", "seal": "seal", "unseal": "seal",
    "folders": "commands", "export": "commands", "import": "commands", "plan": "commands",
    "ls": "commands", "check": "commands", "unlock": "commands",
    "report": "reportcmd", "verify": "verifycmd", "completion": "completion",
}  # fmt: skip
#: click's variable for shell completion (pstkit.cli.completion), which needs every command
COMPLETE_VAR = "_PSTKIT_COMPLETE"
#: `help` is in pstkit.cli.conventions, which run imports anyway
ALL = tuple(sorted(set(MODULES.values())))


def app_for(name: str | None) -> typer.Typer:
    """The app holding command `name` only (None or an unlisted name: every command)."""
    modules = (MODULES[name],) if name in MODULES else ALL
    for module in modules:
        importlib.import_module(f"pstkit.cli.{module}")  # importing registers on `app`
    chosen = app
    if name in MODULES:
        chosen = copy.copy(app)  # the same callback (global options), settings and help
        chosen.registered_commands = [c for c in app.registered_commands
                                      if command_name(c) == name]  # fmt: skip
        chosen.registered_groups = [g for g in app.registered_groups if g.name == name]
    for callback in _callbacks(chosen):
        resolve_annotations(callback)
    return chosen


def _callbacks(group: typer.Typer) -> Iterator[Callable[..., Any]]:
    """The functions typer reads the parameters of, to build this app's commands."""
    info = group.registered_callback
    if info is not None and info.callback is not None:
        yield info.callback
    yield from (c.callback for c in group.registered_commands if c.callback is not None)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            yield from _callbacks(sub.typer_instance)


def resolve_annotations(func: Callable[..., Any]) -> None:
    """Evaluate the function's annotations once, in place. Our modules use `from
    __future__ import annotations`, so each is a string, and typer evaluates every one
    six times while it builds a command (inspect.signature(eval_str=True) and
    get_type_hints, for each of three reads): ~200 evals for export. Evaluated here
    the same way (the function's globals, Annotated kept), typer's reads find objects."""
    annotations = getattr(func, "__annotations__", None)
    if annotations and any(isinstance(a, str) for a in annotations.values()):
        func.__annotations__ = typing.get_type_hints(func, include_extras=True)


def command_name(info: typer.models.CommandInfo) -> str:
    callback = info.callback
    return info.name or typer.main.get_command_name(callback.__name__ if callback else "")


def registered() -> set[str]:
    """Every command and group name on the app (after all modules are imported)."""
    app_for(None)
    groups = {str(g.name) for g in app.registered_groups}
    return {command_name(c) for c in app.registered_commands} | groups


def wanted(args: list[str], environ: Mapping[str, str]) -> str | None:
    """The one command to build (args are hoisted), or None when the run needs them all."""
    name, config_file = command_and_config(args, environ)
    return None if config_file or COMPLETE_VAR in environ else name
