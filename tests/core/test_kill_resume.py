"""kill -9 an export and an import at several points; re-runs finish exactly once."""

from __future__ import annotations

import contextlib
import mailbox
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import (
    REPO,
    cli,
    cli_json,
    kill_when,
    maildir_content,
    make_message,
    sha,
    write_maildir,
)

N = 1500
# Kill once this many message files exist: before the first commit, mid-run, near the end.
POINTS = [1, 300, 800, 1400]


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


def _files(root: Path) -> int:
    total = 0
    for cur in root.rglob("cur"):
        with contextlib.suppress(FileNotFoundError):
            total += len(os.listdir(cur))
    return total


def _mbox_bytes(root: Path) -> int:
    """Bytes under `root` in units of 2000. The mbox target's scratch files
    (`.NAME.pstkit-append`) come and go while this looks: one gone between the listing
    and its stat counts as nothing (a full run failed here on a vanished one)."""
    total = 0
    for p in root.rglob("*") if root.exists() else ():
        with contextlib.suppress(FileNotFoundError):
            if p.is_file():
                total += p.stat().st_size
    return total // 2000


def _kill_at(
    proc: subprocess.Popen[bytes], root: Path, point: int, count: Callable[[Path], int] = _files
) -> bool:
    """SIGKILL the process once `count(root)` reaches `point` (helpers.kill_when: the
    process is stopped while each look counts)."""
    return kill_when(proc, lambda: count(root) >= point)


def _multiset(root: Path) -> Counter[str]:
    return Counter(s for items in maildir_content(root).values() for s, _ in items)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_killed_export_resumes_exactly_once(source: Path, tmp_path: Path, point: int) -> None:
    store = tmp_path / "store"
    assert _kill_at(_start("export", source, store), store, point)
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
@pytest.mark.parametrize("point", POINTS)
def test_killed_import_resumes_exactly_once(source: Path, tmp_path: Path, point: int) -> None:
    store, out_dir = tmp_path / "store", tmp_path / "out"
    assert cli("export", source, store)[0] == 0
    assert _kill_at(_start("import", store, f"maildir:{out_dir}"), out_dir, point)
    code, _, err = cli("import", store, f"maildir:{out_dir}")
    assert code == 0, err
    assert _multiset(out_dir) == _multiset(source)
    assert maildir_content(out_dir)[("Sent",)] == maildir_content(source)[("Sent",)]
    assert cli("check", store)[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("point", [100, 600])
def test_killed_import_with_allow_duplicates_still_exactly_once(
    source: Path, tmp_path: Path, point: int
) -> None:
    """mbox targets are not idempotent: the in-flight mark in the ledger is what
    keeps a re-sent batch out, even when duplicates are allowed."""
    store, out_dir = tmp_path / "store", tmp_path / "out"
    assert cli("export", source, store)[0] == 0
    args = ("import", "--duplicates", "allow", store, f"mbox:{out_dir}")
    # Slowed to ~5 s (each batch of 50 waits for its bytes): unthrottled, the whole
    # 2.6 MB import could finish between two looks of a watcher starved on a loaded
    # machine, and the kill point was never reached (a failed run under load).
    assert _kill_at(_start(*args, "--bwlimit", "500K"), out_dir, point, _mbox_bytes)
    code, _, err = cli(*args)
    assert code == 0, err
    got = Counter(
        sha(box.get_bytes(k))
        for f in (out_dir / "INBOX", out_dir / "Sent")
        for box in [mailbox.mbox(str(f))]
        for k in box.keys()  # noqa: SIM118 - a mailbox iterates messages, not keys
    )
    assert got == _multiset(source)
