"""`pstkit completion bash|zsh|fish`: the shell script that completes pstkit's
commands and options. The script calls pstkit back with _PSTKIT_COMPLETE set;
click answers that before any option is parsed (see run.main)."""

from __future__ import annotations

from typing import Annotated

import typer
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

from pstkit.cli.app import app, env_of
from pstkit.cli.registry import COMPLETE_VAR
from pstkit.errors import EXIT_OK, UsageError

SHELLS = ("bash", "zsh", "fish")
VAR = COMPLETE_VAR
# typer's completion classes answer the script's call-back (`complete_bash`, …);
# add_completion=False in app.py leaves them unregistered.
completion_init()


@app.command(epilog=(
    "\b\nExamples:\n"
    "  pstkit completion bash > ~/.local/share/bash-completion/completions/pstkit\n"
    "  pstkit completion zsh > ~/.zfunc/_pstkit   (with fpath+=~/.zfunc in ~/.zshrc)\n"
    "  pstkit completion fish > ~/.config/fish/completions/pstkit.fish"
))  # fmt: skip
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="bash|zsh|fish", help="The shell to write the script for.")],
) -> int:  # fmt: skip
    """Print the shell completion script for bash, zsh or fish."""
    if shell not in SHELLS:
        raise UsageError(f"no completion for {shell!r}: choose bash, zsh or fish")
    env_of(ctx).out(get_completion_script(prog_name="pstkit", complete_var=VAR, shell=shell))
    return EXIT_OK
