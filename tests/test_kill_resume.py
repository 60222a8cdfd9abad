"""kill -9 an export and an import at several points; re-runs finish exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, cli_json, maildir_content, make_message, write_maildir

N = 1500
DELAYS = [0.9, 1.3, 1.8, 2.4]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    write_maildir(root, {
        "": [(make_message(i, size=2000), "S" if i % 3 else "") for i in range(N // 2)],
        ".Sent": [(make_message(10_000 + i, size=1500), "S") for i in range(N // 2)],
    })  # fmt: skip
    return root


def _start(*args: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PSTKIT_BATCH_ITEMS": "50"}
    return subprocess.Popen([sys.executable, "-m", "pstkit", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _kill_after(proc: subprocess.Popen[bytes], delay: float) -> bool:
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


def _multiset(root: Path) -> Counter[str]:
    return Counter(s for items in maildir_content(root).values() for s, _ in items)


@pytest.mark.slow
@pytest.mark.parametrize("delay", DELAYS)
def test_killed_export_resumes_exactly_once(source: Path, tmp_path: Path, delay: float) -> None:
    store = tmp_path / "store"
    _kill_after(_start("export", source, store), delay)
    code, res = cli_json("export", source, store)
    assert code == 0, res
    code, out, _ = cli("check", "--read-data", store)
    assert code == 0, out
    _, listing = cli_json("ls", store)
    assert sum(f["messages"] for f in listing["folders"]) == N  # type: ignore[index]
    out_dir = tmp_path / "out"
    cli("import", store, f"maildir:{out_dir}")
    assert _multiset(out_dir) == _multiset(source)


@pytest.mark.slow
@pytest.mark.parametrize("delay", DELAYS)
def test_killed_import_resumes_exactly_once(source: Path, tmp_path: Path, delay: float) -> None:
    store, out_dir = tmp_path / "store", tmp_path / "out"
    assert cli("export", source, store)[0] == 0
    _kill_after(_start("import", store, f"maildir:{out_dir}"), delay)
    code, _, err = cli("import", store, f"maildir:{out_dir}")
    assert code == 0, err
    assert _multiset(out_dir) == _multiset(source)
    assert maildir_content(out_dir)[("Sent",)] == maildir_content(source)[("Sent",)]
    assert cli("check", store)[0] == 0


@pytest.mark.slow
def test_some_kills_landed_mid_run(source: Path, tmp_path: Path) -> None:
    """Guard against a suite that only ever kills finished processes."""
    landed = sum(
        _kill_after(_start("export", source, tmp_path / f"s{i}"), d) for i, d in enumerate(DELAYS)
    )
    assert landed >= 2
