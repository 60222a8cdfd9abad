"""Running a command: typer parses, one handler turns every PstkitError into
`pstkit: error: …` + `hint: …` and its exit code; tracebacks only with `--debug`,
never with local variables."""

from __future__ import annotations

import logging
import os
import sys
import traceback

import typer

from pstkit import malloc
from pstkit.cli import conventions, fastparams, registry
from pstkit.cli.env import Env, print_json
from pstkit.cli.examples import add_examples
from pstkit.cli.settings import apply_config
from pstkit.errors import EXIT_INTERRUPTED, EXIT_USAGE, PstkitError

EXIT_INTERNAL = 70
fastparams.install()  # typer converts values without pydantic


def main(argv: list[str] | None = None, env: Env | None = None) -> int:
    """Run the CLI; returns the exit code (and exits with it when argv is None)."""
    env = env or Env()
    malloc.for_messages()
    args = sys.argv[1:] if argv is None else argv
    env.argv = list(args)
    asks = [a for a in args if a in ("--version", "-V")]
    if asks and all(a.startswith("-") for a in args):  # `pstkit --json --version`: global options
        args = [*(a for a in args if a not in asks), "version"]
    secrets: dict[str, str] = {}
    try:
        args = conventions.hoist_globals(args)
        # Only the command that runs is imported and built (pstkit.cli.registry).
        command = typer.main.get_command(registry.app_for(registry.wanted(args, os.environ)))
        conventions.polish(command)
        add_examples(command)
        args, defaults, secrets = apply_config(command, args, os.environ)
        os.environ.update(secrets)  # a 0600 config's secret, for this process only
        result = command.main(args, prog_name="pstkit", standalone_mode=False, obj=env,
                              default_map=defaults)  # fmt: skip
        code = result if isinstance(result, int) else 0
        if code == EXIT_INTERRUPTED:
            # typer turns a KeyboardInterrupt that leaves a command into a silent exit 130
            # (our commands raise Interrupted instead, which is reported below).
            raise KeyboardInterrupt
    except PstkitError as e:
        code = report(env, e.message, e.hint_text(), e.exit_code, e)
    except KeyboardInterrupt:
        code = report(
            env, "interrupted", "re-run the same command to resume", EXIT_INTERRUPTED, None
        )
    except Exception as e:
        code = _click_or_internal(env, e)
    for name in secrets:
        os.environ.pop(name, None)
    _remove_log_handler(env)
    if argv is None:
        sys.exit(code)
    return code


def _remove_log_handler(env: Env) -> None:
    """In-process callers (tests, batch runs) must not keep our stderr handler."""
    if env.log_handler is not None:
        logging.getLogger("pstkit").removeHandler(env.log_handler)
        env.log_handler = None


def _click_or_internal(env: Env, e: Exception) -> int:
    """Typer's (vendored) click exceptions are matched by shape, not by class,
    so this works whichever click typer brings."""
    kind = type(e).__name__
    if kind == "Exit":
        return int(getattr(e, "exit_code", 0))
    if kind == "Abort":
        return report(
            env, "interrupted", "re-run the same command to resume", EXIT_INTERRUPTED, None
        )
    if hasattr(e, "format_message") and hasattr(e, "exit_code"):
        if kind == "NoArgsIsHelpError":  # bare `pstkit`: show the help
            env.out(str(e.format_message()))
            return EXIT_USAGE
        return report(env, str(e.format_message()), "see `pstkit COMMAND --help`", EXIT_USAGE, None)
    # The last line of defence: one line, no traceback.
    text = " ".join(str(e).split())
    return report(env, f"internal error: {kind}: {text}",
                  "re-run with --debug and report the traceback", EXIT_INTERNAL, e)  # fmt: skip


def report(env: Env, message: str, hint: str, code: int, exc: BaseException | None) -> int:
    if env.debug and exc is not None:
        # Never with local variables: they may hold passwords.
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=env.stderr)
    if env.json:
        print_json(env, {"error": message, "hint": hint, "exit_code": code})
    print(f"pstkit: error: {message}", file=env.stderr)
    if hint:
        print(f"hint: {hint}", file=env.stderr)
    return code
