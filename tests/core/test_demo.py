"""The README's first command ends in scripts/demo.sh: it must keep working as pstkit changes.

Runs the demo as a user would (bash, a scratch directory under TMPDIR) with pstkit as this
interpreter runs it, and checks what it claims: every message of the bundled sample
mailbox went into the store, into a Maildir (once, also when run twice) and into a PST,
and verify found them all in both."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "fixtures" / "sample-maildir"


def _messages(root: Path) -> int:
    """Messages in a Maildir++ tree: the files in every cur/ and new/ (not dot files,
    which Maildir readers skip: the sample's .keep files hold its empty folders in git)."""
    return sum(1 for d in root.rglob("*") if d.name in ("cur", "new") and d.is_dir()
               for f in d.iterdir() if f.is_file() and not f.name.startswith("."))


def test_the_readme_demo_runs_end_to_end(tmp_path: Path) -> None:
    n = _messages(SAMPLE)
    assert n > 0
    wrapper = tmp_path / "pstkit"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pstkit "$@"\n')
    wrapper.chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PSTKIT": str(wrapper), "TMPDIR": str(scratch)}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], check=False,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    out = done.stdout
    assert re.search(rf"exported from .*: {n} new, 0 already stored", out), out
    assert re.search(rf"into maildir:.*: {n} new, 0 already delivered", out), out
    assert re.search(rf"into maildir:.*: 0 new, {n} already delivered", out), out
    assert re.search(rf"into pst:.*: {n} new, 0 already delivered", out), out
    assert out.count(f"{n} matching, 0 missing, 0 extra, 0 differing") == 2, out
    (work,) = scratch.iterdir()  # the demo's one scratch directory
    assert _messages(work / "restored") == n
    assert (work / "mailbox.pst").read_bytes()[:4] == b"!BDN"  # a PST's dwMagic
    report = (work / "report.html").read_text(encoding="utf-8")
    assert "Projekte" in report and "日本語" in report
