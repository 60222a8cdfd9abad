"""Small helpers shared by tests (no fixtures here; those live in conftest)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from pstkit.cli import main
from pstkit.cli.env import Env
from pstkit.converters.local.maildir import scan
from pstkit.model import Flag, FolderPath
from pstkit.names import info_to_flags, split_maildir_name

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
