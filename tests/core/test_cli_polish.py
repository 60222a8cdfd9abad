"""Issue 15.10/15.12 CLI polish, every test through `python -m pstkit` in a child
process: shell completion, option help, folders filters, export --dry-run."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pstkit.cli.opts import server_connections
from tests.helpers import REPO, run_pstkit


def _bin_dir(tmp_path: Path) -> Path:
    """A `pstkit` on PATH that is this checkout's (the script calls pstkit back)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pstkit"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pstkit "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def test_bash_completion_script_is_valid_and_completes_commands(tmp_path: Path) -> None:
    done = run_pstkit("completion", "bash")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "pstkit.bash"
    script.write_text(done.stdout)
    bash = shutil.which("bash")
    assert bash
    syntax = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    probe = (f'source "{script}"; COMP_WORDS=(pstkit ver); COMP_CWORD=1; '
             '_pstkit_completion pstkit; printf "%s\\n" "${COMPREPLY[@]}"; '
             'COMP_WORDS=(pstkit export --conn); COMP_CWORD=2; '
             '_pstkit_completion pstkit; printf "%s\\n" "${COMPREPLY[@]}"')  # fmt: skip
    env = {**os.environ, "PATH": f"{_bin_dir(tmp_path)}:{os.environ['PATH']}"}
    out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=False,
                         env=env, cwd=REPO, timeout=60)  # fmt: skip
    assert out.stdout.split() == ["version", "verify", "--connections"], out.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_their_script(shell: str) -> None:
    done = run_pstkit("completion", shell)
    assert done.returncode == 0 and "_PSTKIT_COMPLETE=complete_" + shell in done.stdout


def test_unknown_shell_is_one_line() -> None:
    done = run_pstkit("completion", "tcsh")
    assert done.returncode == 2 and "choose bash, zsh or fish" in done.stderr
    assert "Traceback" not in done.stderr


def test_connections_help_states_the_limit_in_words() -> None:
    text = " ".join(run_pstkit("export", "--help").stdout.split())
    assert "--connections N Parallel connections across folders, 1 to 27." in text
    assert "<=x<=" not in text
    bad = run_pstkit("export", "x.pst", "st", "--connections", "28")
    assert bad.returncode == 2 and "28 is not between 1 and 27" in bad.stderr


def _maildir(root: Path) -> Path:
    """INBOX (3), Sent (1), Projects (0) with Projects/A (1)."""
    for sub, n in (("", 3), (".Sent", 1), (".Projects", 0), (".Projects.A", 1)):
        for part in ("cur", "new", "tmp"):
            (root / sub / part).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            body = f"From: a@example.com\nSubject: m{sub}{i}\nMessage-ID: <{sub}{i}@x>\n\nb\n"
            (root / sub / "cur" / f"{i}.host:2,S").write_text(body)
    return root


def test_folders_takes_exports_filters(tmp_path: Path) -> None:
    src = f"maildir:{_maildir(tmp_path / 'md')}"
    done = run_pstkit("folders", src, "--folder", "Projects")
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.splitlines()] == [["0", "Projects"], ["1", "A"]]
    done = run_pstkit("folders", src, "--exclude", "Projects", "--folder", "Nope")
    assert done.stdout == "" and "--folder 'Nope' matches no folder" in done.stderr


def test_export_dry_run_lists_and_writes_nothing(tmp_path: Path) -> None:
    src = f"maildir:{_maildir(tmp_path / 'md')}"
    store = tmp_path / "st"
    done = run_pstkit("export", src, store, "--dry-run", "--exclude", "Sent",
                      "--since", "2020-01-01")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[inbox]" in done.stdout and "Sent" not in done.stdout
    assert "4 messages in 3 folders would be fetched" in done.stdout
    assert "--since 2020-01-01" in done.stdout and not store.exists()
    data = run_pstkit("--json", "export", src, store, "--dry-run")
    assert '"messages": 5' in data.stdout and not store.exists()
    assert run_pstkit("export", "--batch", "u.csv", "d", "--dry-run").returncode == 2


def test_roles_known_by_name_are_written_into_the_catalog(tmp_path: Path) -> None:
    store = tmp_path / "st"
    done = run_pstkit("export", f"maildir:{_maildir(tmp_path / 'md')}", store)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(store / "catalog.sqlite") as db:
        roles = dict(db.execute("SELECT path, role FROM folders WHERE role IS NOT NULL"))
    assert set(roles.values()) == {"inbox", "sent"}, roles


def _commands(*group: str) -> list[str]:
    text = run_pstkit(*group, "--help").stdout
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.startswith("  ")]


def test_every_command_help_has_examples() -> None:
    names = [[c] for c in _commands()] + [["batch", c] for c in _commands("batch")]
    assert ["export"] in names and ["batch", "status"] in names
    missing = [" ".join(n) for n in names if "Examples:\n    pstkit" not in
               run_pstkit(*n, "--help").stdout.replace("PSTKIT_BROKER=redis://HOST:6379/0 ", "")]
    assert missing == []


def test_apop_offered_only_where_a_pop3_source_can_be() -> None:
    def auth_help(command: str) -> str:
        text = " ".join(run_pstkit(command, "--help").stdout.split())
        return text.split("--auth METHOD", 1)[1].split("[default", 1)[0]

    assert "POP3: password, apop" in auth_help("folders")
    assert "POP3: password, apop" in auth_help("export")
    for command in ("plan", "verify"):
        assert "apop" not in auth_help(command) and "EWS: ntlm" in auth_help(command)


@pytest.mark.parametrize(
    ("given", "source", "want"),
    [
        (None, "imaps://alice@mail.example", 2),
        (None, "imap://alice@127.0.0.1:143", 2),
        (None, "IMAPS://alice@mail.example", 2),
        (None, "pop3s://alice@mail.example", 1),
        (None, "maildir:/tmp/x", 1),
        (None, "ews://mail.example/EWS/Exchange.asmx", 1),
        (None, "imaps:/oops", 1),  # does not parse: opening it says why
        (None, None, 1),  # --batch: one connection per mailbox, mailboxes in parallel
        (1, "imaps://alice@mail.example", 1),
        (4, "maildir:/tmp/x", 4),
    ],
)
def test_export_connections_default_by_source(given: int | None, source: str | None,
                                              want: int) -> None:
    assert server_connections(given, source) == want


def test_export_connections_help_says_the_default() -> None:
    text = " ".join(run_pstkit("export", "--help").stdout.split())
    assert "Default: 2 from an IMAP server, else 1." in text
    text = " ".join(run_pstkit("import", "--help").stdout.split())
    assert "Default: 2 into an IMAP server, else 1." in text
    bad = run_pstkit("export", "imaps://a@127.0.0.1:1", "st", "--connections", "0")
    assert bad.returncode == 2 and "0 is not between 1 and 27" in bad.stderr
