"""`pstkit --version` / `pstkit version`: version, Python, optional parts; quick to answer."""

from __future__ import annotations

import json
import subprocess
import sys

import pstkit
from tests.helpers import REPO, cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pstkit", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_version_names_pstkit_python_and_the_optional_parts() -> None:
    for args in (["--version"], ["-V"], ["version"]):
        done = _run(*args)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == f"pstkit {pstkit.__version__}"
        assert lines[1].startswith("python ")
        assert any("pypff" in line for line in lines) and any("C twins" in line for line in lines)


def test_version_as_json_in_any_order_of_global_options() -> None:
    for args in (["--json", "--version"], ["--version", "--json"], ["--json", "version"]):
        done = _run(*args)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert info["version"] == pstkit.__version__
        assert set(info["parts"]) >= {"EWS (exchangelib)", "Graph sign-in (msal)"}


def test_version_in_process_too() -> None:
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith(f"pstkit {pstkit.__version__}\n")


def test_the_quick_answer_imports_no_command_code() -> None:
    probe = ("import sys, pstkit.cli as c\n"
             "try:\n    c.main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('typer', 'tqdm', 'pstkit.cli.run', 'pstkit.store')"
             " if m in sys.modules), file=sys.stderr)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe, "--version"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.stdout.startswith("pstkit ")
    assert done.stderr.strip() == "[]"
