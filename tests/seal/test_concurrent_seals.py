"""Two seals into one bundle directory at once (a second terminal, a script
retried while the first run goes on): the second is refused in one line and
touches nothing; the first completes a bundle that checks clean. Each used to
take the other's volumes for an interrupted seal's and clear them: one ended in
an internal error, the other reported exit 0 for a bundle with volumes missing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, _stopped_when, cli
from tests.seal.conftest import Keys, build_store, seal, store_state


def _volumes(root: Path) -> set[tuple[str, int]]:
    """The finished volumes (the first run's encrypting child may finish one more
    meanwhile: only its parent is stopped)."""
    return {(p.name, p.stat().st_size) for p in (root / "data").glob("0*.age")}


def test_a_second_seal_into_a_directory_being_sealed_is_refused(
    tmp_path: Path, keys: Keys
) -> None:
    first = build_store(tmp_path / "a", per_folder=10, size=200_000)  # ~8 MB: 8 volumes
    other = build_store(tmp_path / "b", per_folder=1)  # another store: its own lock
    bundle = tmp_path / "bundle"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pstkit", "seal", str(first), str(bundle), "--recipient",
         keys.recipient, "--sign-key", str(keys.sign_key), "--volume-size", "1M"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert _stopped_when(proc, (bundle / "data" / "00002.age").exists, timeout=120)
        before = _volumes(bundle)
        code, _, err = seal(other, bundle, keys, "--volume-size", "1M")
        assert code == 3, err
        assert "being sealed" in err and len(err.strip().splitlines()) == 2
        assert before <= _volumes(bundle)  # nothing of the first run's removed
    finally:
        proc.send_signal(signal.SIGCONT)
    _, err_first = proc.communicate(timeout=120)
    assert proc.returncode == 0, err_first
    code, out, _ = cli("check", str(bundle), "--trust", str(keys.sign_pub))
    assert code == 0, out
    code, _, err = cli("unseal", str(bundle), str(tmp_path / "u"), "--identity", str(keys.identity))
    assert code == 0, err
    assert store_state(tmp_path / "u") == store_state(first)
