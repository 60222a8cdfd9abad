"""Two unseals of one bundle into one target at once (a second terminal, a
retried script): the second used to remove the first's hidden work directory
and write its own there, and the first then renamed the second's half-written
directory into place and exited 0 ("unsealed … N messages") over a store with
messages missing. The second is now refused in one line; the first completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, _stopped_when, cli
from tests.seal.conftest import Keys, build_store, seal, store_state


def _work_files(parent: Path) -> int:
    return sum(len(files) for work in parent.glob(".target.unseal-*")
               for _, _, files in os.walk(work))  # fmt: skip


def test_a_second_unseal_into_a_target_being_unsealed_is_refused(
    tmp_path: Path, keys: Keys
) -> None:
    store = build_store(tmp_path, per_folder=10, size=200_000)
    assert seal(store, tmp_path / "b", keys)[0] == 0
    target = tmp_path / "out" / "target"
    args = ["unseal", str(tmp_path / "b"), str(target), "--identity", str(keys.identity)]
    proc = subprocess.Popen([sys.executable, "-m", "pstkit", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert _stopped_when(proc, lambda: _work_files(target.parent) >= 5, timeout=120)
        code, _, err = cli(*args)
        assert code == 3, err
        assert "being unsealed" in err and len(err.strip().splitlines()) == 2
        assert not target.exists()
    finally:
        proc.send_signal(signal.SIGCONT)
    _, err_first = proc.communicate(timeout=120)
    assert proc.returncode == 0, err_first
    assert store_state(target) == store_state(store)
    assert [p.name for p in target.parent.iterdir()] == ["target"]  # no work left behind
