"""Where the config file is by default. Its own module: every run asks, and most
runs have no config file, so they never load pstkit.config (its parser,
dataclasses and regexes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def default_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pstkit" / "config.toml"
