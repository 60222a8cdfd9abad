"""Bundles in real runs: a seal killed mid-way starts again cleanly, and an
import straight from a bundle into a real IMAP server (Dovecot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, kill_when
from tests.seal.conftest import Keys, build_store, seal, store_state
from tests.servers.dovecot import Dovecot, unique_user

pytest_plugins = ["tests.servers.dovecot"]


def test_a_killed_seal_without_its_journal_starts_again_cleanly(
    tmp_path: Path, keys: Keys, cache_home: Path
) -> None:
    """The local journal lost (another machine, a wiped cache): nothing of the
    killed run is trusted, the bundle is cleared and sealed anew."""
    store = build_store(tmp_path, per_folder=20, size=300_000)  # ~18 MB
    bundle = tmp_path / "bundle"
    args = [
        sys.executable,
        "-m",
        "pstkit",
        "seal",
        str(store),
        str(bundle),
        "--recipient",
        keys.recipient,
        "--sign-key",
        str(keys.sign_key),
        "--volume-size",
        "1M",
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not kill_when(proc, (bundle / "data" / "00003.age").exists, timeout=60):
        pytest.fail("the seal finished before it could be killed; make the store larger")
    assert not (bundle / "manifest.json").exists()  # an unfinished bundle never looks finished
    code, _, err = cli("check", str(bundle), "--trust", str(keys.sign_pub))
    assert code == 4, err
    journals = list((cache_home / "pstkit" / "seal-journal").glob("*.jsonl"))
    assert len(journals) == 1
    journals[0].unlink()
    code, _, err = seal(store, bundle, keys, "--volume-size", "1M")
    assert code == 0, err
    assert "clearing an interrupted seal" in err
    assert cli("check", str(bundle), "--trust", str(keys.sign_pub))[0] == 0
    bundle_id = json.loads((bundle / "manifest.json").read_text())["bundle"]
    leftover = tmp_path / f".unsealed.unseal-{bundle_id[:8]}"  # as a killed unseal leaves it
    leftover.mkdir()
    (leftover / "junk").write_text("half a store")
    assert (
        cli("unseal", str(bundle), str(tmp_path / "unsealed"), "--identity", str(keys.identity))[0]
        == 0
    )
    assert store_state(tmp_path / "unsealed") == store_state(store)
    assert not (tmp_path / "unsealed" / "junk").exists() and not leftover.exists()


def test_import_straight_from_a_bundle_into_dovecot(
    dovecot: Dovecot,
    tmp_path: Path,
    keys: Keys,
    cache_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PSTKIT_PASSWORD", "pw")
    user = dovecot.add_user(unique_user("seal"), "pw")
    store = build_store(tmp_path, per_folder=3)
    bundle = tmp_path / "bundle"
    assert seal(store, bundle, keys)[0] == 0
    target = [
        f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}",
        "--ca-file",
        str(dovecot.ca_file),
    ]
    code, out, err = cli("--json", "import", str(bundle), *target, "--identity", str(keys.identity),
                         "--keep-cache")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["stats"]["delivered"] == 12
    bundle_id = json.loads((bundle / "manifest.json").read_text())["bundle"]
    work = cache_home / "pstkit" / "bundles" / bundle_id
    code, out, err = cli("verify", "--all", str(work), *target)  # every message read back
    assert code == 0, out + err
    assert [ln[:1] for ln in out.splitlines()].count("=") >= 12
    assert "12 matching, 0 missing, 0 extra, 0 differing" in out + err
    with dovecot.client(user) as c:
        total = sum(
            c.select_folder(name, readonly=True)[b"EXISTS"]
            for flags, _, name in c.list_folders()
            if b"\\Noselect" not in flags
        )
    assert total == 12
    assert os.listdir(work)  # --keep-cache: the work store stays
    code, out, err = cli("--json", "import", str(bundle), *target, "--identity", str(keys.identity))
    assert code == 0, err
    assert json.loads(out)["stats"].get("delivered", 0) == 0, out  # its ledger: nothing twice
    assert not work.exists()  # complete, no --keep-cache: the plaintext is gone
