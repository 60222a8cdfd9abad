"""Small helpers shared by tests (no fixtures here; those live in conftest)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import TYPE_CHECKING

from pstkit.cli import main
from pstkit.cli.env import Env
from pstkit.converters.local.maildir import scan
from pstkit.model import Flag, FolderPath
from pstkit.names import info_to_flags, split_maildir_name

if TYPE_CHECKING:  # every test imports this module: not the PST writer for a type
    from pstkit.converters.pst.write.sink import PstSink

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], env=Env(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def cli_json(*args: str) -> tuple[int, object]:
    code, out, _ = cli("--json", *args)
    return code, json.loads(out) if out.strip() else None


def run_pstkit(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process (for kill tests and real exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "pstkit", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], delay: float = 0.0,
              timeout: float = 120) -> bool:
    """SIGKILL `proc` `delay` seconds after `ready()` holds; False if it finished first.
    It returns once the killed run's child processes are gone too (a translating or
    encrypting child ends when its parent does, but a write(2) it is inside completes
    first): after it, nothing of the run writes on. One still alive after 30 s fails.

    The process is stopped (SIGSTOP) while each look runs and goes on (SIGCONT) for the
    ~5 ms between looks, so a slow look (thousands of directory entries, a ledger read
    waiting for the run's commit) cannot let it run past the moment and end. Without
    that, a run that has little left after the moment could end unkilled on a loaded
    machine: the last 100 of 1,500 messages of test_kill_resume take 45-200 ms; a seal's
    last volumes ~77 ms; a PST append's last batch ~77 ms (measured on the 2-core VM,
    2026-12-06). Moments are events of the run (files, bytes, ledger rows), not clock
    times."""
    if not _stopped_when(proc, ready, timeout):
        proc.wait()
        return False
    kids = descendants(proc.pid)
    if delay > 0:  # killed `delay` later (it may end meanwhile)
        proc.send_signal(signal.SIGCONT)
        time.sleep(delay)
        kids += descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_gone(kids, time.monotonic() + 30), f"a child of the killed run outlived it: {kids}"
    return True


def signal_when(proc: subprocess.Popen[str], ready: Callable[[], bool], sig: int,
                timeout: float = 120, group: bool = False) -> bool:
    """Send `sig` (SIGINT, SIGTERM) to `proc` once `ready()` holds, looked at as
    `kill_when` looks: the signal is sent while the process is stopped, so it is taken
    right where the look saw it, however loaded the machine. With `group`, to its whole
    process group (it must lead one: start_new_session), as a terminal sends Ctrl-C.
    False if it finished first."""
    if not _stopped_when(proc, ready, timeout):
        return False
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)
    return True


def _stopped_when(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                  ready: Callable[[], bool], timeout: float) -> bool:
    """True, with `proc` stopped (SIGSTOP), once `ready()` holds; False, with it
    running or ended, if it ended first or `timeout` passed."""
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        proc.send_signal(signal.SIGSTOP)
        try:
            reached = ready()
        except BaseException:
            proc.send_signal(signal.SIGCONT)
            raise
        if reached:
            return True
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    return False


def descendants(pid: int) -> list[int]:
    """`pid`'s child processes, theirs, and so on, now (Linux: /proc)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def gone(pid: int) -> bool:
    """Has process `pid` exited (or is it a zombie, dead but not yet reaped)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def wait_gone(pids: Iterable[int], deadline: float) -> bool:
    """Until every pid has exited (or is a zombie) or the deadline (time.monotonic())
    passes; whether they all have."""
    pids = list(pids)
    while not all(gone(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def as_killed(sink: PstSink) -> None:
    """A PST sink left unclosed stands for a run killed there: its work files stay, but
    not its lock on the target (the kernel drops a dead process's flock), which the
    test's own process would otherwise hold against the next run (its lock file stays, as
    after a kill)."""
    if sink._held is not None:
        os.close(sink._held[0])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def maildir_content(root: Path) -> dict[FolderPath, list[tuple[str, frozenset[Flag]]]]:
    """Folder -> sorted (sha256, flags) of every message in a Maildir tree."""
    out: dict[FolderPath, list[tuple[str, frozenset[Flag]]]] = {}
    for path, folder_dir in scan(root).items():
        items = []
        for sub in ("cur", "new"):
            d = folder_dir / sub
            for name in sorted(os.listdir(d)) if d.is_dir() else []:
                if name.startswith("."):
                    continue
                flags, _ = info_to_flags(split_maildir_name(name)[1])
                items.append((sha((d / name).read_bytes()), flags))
        out[path] = sorted(items, key=lambda t: (t[0], sorted(t[1])))
    return out


def make_message(i: int, subject: str = "", size: int = 0) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"Sender {i} <s{i}@example.com>"
    msg["To"] = "rcpt@example.com"
    msg["Subject"] = subject or f"Message {i} – Grüße"
    msg["Date"] = "Mon, 04 Mar 2024 09:30:00 +0000"
    msg["Message-ID"] = f"<m{i}@test.example>"
    msg.set_content(f"Body {i}\n" + ("x" * 76 + "\n") * (size // 77))
    return msg.as_bytes()


def write_maildir(root: Path, folders: dict[str, list[tuple[bytes, str]]]) -> None:
    """{'': [(raw, 'FS')], '.Sent': [...]} -> a Maildir++ tree."""
    for dirname, messages in folders.items():
        base = root / dirname if dirname else root
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for n, (raw, flags) in enumerate(messages):
            (base / "cur" / f"{1700000000 + n}.m{n}.test:2,{flags}").write_bytes(raw)
