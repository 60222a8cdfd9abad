"""`pstkit version` (also `pstkit --version`): version, Python and the optional parts present."""

from __future__ import annotations

import typer

from pstkit import version as about
from pstkit.cli.app import app, env_of
from pstkit.cli.env import print_json


@app.command()
def version(ctx: typer.Context) -> int:
    """Print pstkit's version, Python's, and which optional parts are installed.

    Example: pstkit --version
    """
    env = env_of(ctx)
    if env.json:
        print_json(env, about.describe())
    else:
        for line in about.lines():
            env.out(line)
    return 0
