"""The command line: the only code that knows typer, tqdm and the terminal.

Results go to stdout (`--json` for scripts), logs and progress to stderr. This module stays
small: `pstkit --version` is answered here without importing typer or any command; everything
else runs in `pstkit.cli.run`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pstkit.cli.env import Env


def main(argv: list[str] | None = None, env: Env | None = None) -> int:
    """Run the CLI; returns the exit code (and exits with it when argv is None)."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]) and env is None:
        from pstkit.version import lines  # noqa: PLC0415 - the fast path imports only this

        print("\n".join(lines()))
        code = 0
    else:
        from pstkit.cli.run import main as run  # noqa: PLC0415 - typer and every command

        code = run([*args], env)
    if argv is None:
        sys.exit(code)
    return code
