"""Resolve secrets from a command, a file, the environment or a prompt.

Never from argv. The value is returned, never logged or stored; callers keep
it in a local variable only as long as the login needs it.
"""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys

from pstkit.errors import SecretError
from pstkit.options import SecretSpec


def resolve_secret(spec: SecretSpec, who: str = "") -> str:
    if spec.value is not None:
        return spec.value
    if spec.command:
        return _from_command(spec.command, spec.label)
    if spec.file:
        try:
            return spec.file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as e:
            raise SecretError(f"{spec.label} file {spec.file}: {e.strerror or e}") from e
    if spec.env and spec.env in os.environ:
        return os.environ[spec.env]
    if spec.prompt and sys.stdin.isatty():
        return getpass.getpass(f"{spec.label} for {who}: " if who else f"{spec.label}: ")
    where = f"${spec.env}" if spec.env else "a file or command"
    raise SecretError(f"no {spec.label} given (looked for {where}; stdin is not a terminal)")


def _from_command(command: str, label: str) -> str:
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SecretError(f"{label} command failed: {e}") from e
    if done.returncode != 0:
        # Do not echo stdout: it may hold a partial secret.
        raise SecretError(f"{label} command exited with {done.returncode}")
    value = done.stdout.rstrip("\r\n")
    if not value:
        raise SecretError(f"{label} command printed nothing")
    return value
