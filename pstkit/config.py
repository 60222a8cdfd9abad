"""The config file (issue 15.13): option defaults and named profiles of sources and
targets, in TOML (read with the standard library's tomllib).

Where: `--config FILE`, else `$XDG_CONFIG_HOME/pstkit/config.toml` (default
`~/.config/pstkit/config.toml`); no file is fine, a named one that is missing is not.

    [defaults]                 # every command that has the option
    ca-file = "~/certs/corp-ca.pem"
    [defaults.export]          # one command
    connections = 4
    bwlimit = "2M"
    [profiles.oldhost]         # `pstkit export @oldhost STORE` (or profile:oldhost)
    location = "imaps://alice@mail.old.example"
    password-file = "~/.secrets/oldhost"

Keys are the long option names without `--` (`ca-file` or `ca_file`). Precedence: the
command line, then the profiles it names, then `[defaults.COMMAND]`, then `[defaults]`.

Secrets: `password` and `client-secret` are allowed only if the file is private (no
permission bits for group or others, e.g. 0600); otherwise the file is refused, since
every other user of the machine can already read the secret and a warning scrolls by
unseen. `password-file`/`password-command` keep it out of the file entirely.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pstkit.configpath import default_path
from pstkit.errors import UsageError

#: secret keys -> (the option naming an environment variable, the variable pstkit sets)
SECRETS = {
    "password": ("password_env", "PSTKIT_CONFIG_PASSWORD"),
    "client_secret": ("client_secret_env", "PSTKIT_CONFIG_CLIENT_SECRET"),
}
#: secrets that have no environment-variable option: always refused
NO_SECRET = {"token": "token-file or token-command"}
_PROFILE = re.compile(r"(?:@|profile:)([A-Za-z0-9][A-Za-z0-9_.-]*)")


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Resolved:
    """What a command line gets from the config: its arguments with profile names
    replaced by their locations, the option defaults in order of precedence (lowest
    first), and secrets to put into this process's environment."""

    args: list[str]
    layers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    environ: dict[str, str] = field(default_factory=dict)


def load(path: Path | None, environ: Mapping[str, str]) -> Config:
    """The config at `path` (--config), or at the default place if there is one."""
    explicit = path is not None
    path = Path(path).expanduser() if path is not None else default_path(environ)
    if not path.is_file():
        if explicit:
            raise UsageError(f"no config file {path}")
        return Config()
    import tomllib  # noqa: PLC0415 - most runs have no config file

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot read config {path}: {e}") from e
    return _parse(path, data)


def _parse(path: Path, data: dict[str, Any]) -> Config:
    unknown = set(data) - {"defaults", "profiles"}
    if unknown:
        raise UsageError(
            f"config {path}: unknown section [{sorted(unknown)[0]}]",
            hint="the sections are [defaults], [defaults.COMMAND], [profiles.NAME]",
        )
    defaults = _table(path, "defaults", data.get("defaults", {}))
    commands = {k: _options(path, f"defaults.{k}", _table(path, f"defaults.{k}", v))
                for k, v in defaults.items() if isinstance(v, dict)}  # fmt: skip
    general = _options(path, "defaults",
                       {k: v for k, v in defaults.items() if not isinstance(v, dict)})  # fmt: skip
    profiles = {k: _options(path, f"profiles.{k}", _table(path, f"profiles.{k}", v))
                for k, v in _table(path, "profiles", data.get("profiles", {})).items()}  # fmt: skip
    for name, prof in profiles.items():
        if not isinstance(prof.get("location"), str):
            raise UsageError(f"config {path}: [profiles.{name}] needs location = \"…\"")
    cfg = Config(path, general, commands, profiles)
    _check_secrets(cfg)
    return cfg


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"config {path}: {where} must be a table ([{where}])")
    return value


def _options(path: Path, where: str, table: dict[str, Any]) -> dict[str, Any]:
    """Keys as parameter names (`ca-file` -> `ca_file`), `~/` expanded in strings."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            raise UsageError(f"config {path}: [{where}] {key} cannot be a table here")
        name = key.replace("-", "_")
        if name in NO_SECRET:
            raise UsageError(f"config {path}: [{where}] {key}: a token is never read from "
                             f"the config; use {NO_SECRET[name]}")  # fmt: skip
        home = isinstance(value, str) and value.startswith("~/")
        out[name] = os.path.expanduser(value) if home else value
    return out


def _check_secrets(cfg: Config) -> None:
    tables = [("defaults", cfg.defaults)] + [(f"defaults.{k}", v) for k, v in cfg.commands.items()]
    tables += [(f"profiles.{k}", v) for k, v in cfg.profiles.items()]
    found = [f"[{where}] {key}" for where, t in tables for key in t if key in SECRETS]
    if not found or cfg.path is None:
        return
    mode = stat.S_IMODE(cfg.path.stat().st_mode)
    if mode & 0o077:
        raise UsageError(
            f"config {cfg.path} holds a secret ({', '.join(found)}) but has mode "
            f"{mode:04o}: other users can read it, so it is not used",
            hint=f"chmod 600 {cfg.path}, or use password-file / password-command instead",
        )


def profile_name(arg: str) -> str | None:
    """`@oldhost` or `profile:oldhost` -> "oldhost"; anything else -> None."""
    m = _PROFILE.fullmatch(arg)
    return m.group(1) if m else None


def resolve(cfg: Config, args: list[str], command: str | None, first_arg: int) -> Resolved:
    """Replace profile references among `args[first_arg:]` and collect the defaults
    for `command`: [defaults], [defaults.COMMAND], then each profile named."""
    out = Resolved(list(args))
    out.layers.append(("defaults", dict(cfg.defaults)))
    if command is not None and command in cfg.commands:
        out.layers.append((f"defaults.{command}", dict(cfg.commands[command])))
    for i in range(first_arg, len(args)):
        if args[i] == "--":
            break  # data after it, never a profile
        name = profile_name(args[i])
        if name is None:
            continue
        if name not in cfg.profiles:
            known = ", ".join(sorted(cfg.profiles)) or "none"
            where = cfg.path or "the config file"
            raise UsageError(f"no profile {name!r} in {where} (profiles: {known})")
        prof = dict(cfg.profiles[name])
        out.args[i] = str(prof.pop("location"))
        out.layers.append((f"profiles.{name}", prof))
    for _where, layer in out.layers:
        for key, (option, variable) in SECRETS.items():
            if key in layer:
                out.environ[variable] = str(layer.pop(key))
                layer[option] = variable
    return out
