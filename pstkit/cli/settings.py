"""The config file on the command line (pstkit.config does the reading): `--config
FILE` is found before typer parses, profile names are replaced by their locations, and
the file's options become click's `default_map`, so anything on the command line wins."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pstkit.cli.conventions import GLOBAL_FLAGS, GLOBAL_VALUED
from pstkit.configpath import default_path
from pstkit.errors import UsageError

if TYPE_CHECKING:
    from pstkit import config


def apply_config(group: Any, args: list[str], environ: Mapping[str, str]
                 ) -> tuple[list[str], dict[str, Any], dict[str, str]]:  # fmt: skip
    """(arguments, default_map, secrets for this process's environment)."""
    path, name, at = _scan(args)
    if path is None and not default_path(environ).is_file():
        return args, {}, {}  # the common case, without loading pstkit.config
    from pstkit import config  # noqa: PLC0415 - see above

    cfg = config.load(path, environ)
    if cfg.path is None:
        return args, {}, {}
    commands: dict[str, Any] = dict(getattr(group, "commands", {}))
    _validate(cfg, group, commands)
    res = config.resolve(cfg, args, name, at + 1)
    sub = commands.get(name or "")
    top: dict[str, Any] = {}
    mine: dict[str, Any] = {}
    for _where, layer in res.layers:  # lowest precedence first: later layers win
        for key, value in layer.items():
            if key in _keys(group):
                top[_keys(group)[key].name] = value
            elif sub is not None and key in _keys(sub):
                param = _keys(sub)[key]
                listed = param.multiple and not isinstance(value, list)
                mine[param.name] = [value] if listed else value
    if name:
        top[name] = mine
    return res.args, top, res.environ


def _validate(cfg: config.Config, group: Any, commands: dict[str, Any]) -> None:
    """Every key must be an option: of its command in [defaults.COMMAND], of some
    command elsewhere (a profile's options apply where the command has them)."""
    from pstkit.config import SECRETS  # noqa: PLC0415 - only with a config file

    secrets = {k for k, (option, _v) in SECRETS.items()}
    known = {k for c in commands.values() for k in _keys(c)} | set(_keys(group)) | secrets
    for cmd, table in cfg.commands.items():
        if cmd not in commands:
            raise UsageError(f"config {cfg.path}: [defaults.{cmd}]: there is no command {cmd!r}")
        mine = set(_keys(commands[cmd])) | set(_keys(group)) | secrets
        for key in table:
            if key not in mine:
                raise UsageError(f"config {cfg.path}: [defaults.{cmd}] {_shown(key)}: no such option "
                                 f"for {cmd}")  # fmt: skip
    tables = [("defaults", cfg.defaults)] + [(f"profiles.{k}", v) for k, v in cfg.profiles.items()]
    for where, table in tables:
        for key in table:
            if key not in known and key != "location":
                raise UsageError(f"config {cfg.path}: [{where}] {_shown(key)}: no such option")


def _keys(command: Any) -> dict[str, Any]:
    """Option keys a config may use for a command: `ca_file` for `--ca-file`, also the
    parameter's own name (`fmt` for `--format`)."""
    out: dict[str, Any] = {}
    for p in getattr(command, "params", ()):
        if getattr(p, "param_type_name", "") != "option" or not p.name:
            continue
        out[p.name] = p
        for opt in p.opts:
            if opt.startswith("--"):
                out[opt[2:].replace("-", "_")] = p
    return out


def command_and_config(args: list[str], environ: Mapping[str, str]) -> tuple[str | None, bool]:
    """The command's name, and whether a config file applies to this run."""
    path, name, _ = _scan(args)
    return name, path is not None or default_path(environ).is_file()


def _scan(args: list[str]) -> tuple[Path | None, str | None, int]:
    """--config's value, the command's name and its index (args are hoisted: the
    global options come first)."""
    path: Path | None = None
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        key = arg.split("=", 1)[0]
        if key == "--config":
            value = arg.split("=", 1)[1] if "=" in arg else (items[i + 1] if i + 1 < len(items) else "")
            path = Path(value) if value else None
            i += 1 if "=" in arg else 2
        elif key in GLOBAL_VALUED:
            i += 1 if "=" in arg else 2
        elif arg in GLOBAL_FLAGS or arg.startswith("-"):
            i += 1
        else:
            return path, arg, i
    return path, None, len(items)


def _shown(key: str) -> str:
    return key.replace("_", "-")
