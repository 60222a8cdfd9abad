"""`seal` and `unseal` SIGKILLed at seeded moments: each re-run resumes (seal:
the volumes its journal vouches for) or starts again cleanly (nothing stale
left, nothing written after the kill), and the last run's bundle passes
`check --trust` and unseals to an identical store."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import REPO, cli, kill_when
from tests.seal.conftest import Keys, build_store, secret_message, store_state

SEED = int(os.environ.get("PSTKIT_KILL_SEED", "20"))
KILLS = 4


def _listing(root: Path) -> list[tuple[str, int]]:
    """Files under `root` with sizes (a file the run removes meanwhile is left out)."""
    out = []
    for top, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                out.append((os.path.join(top, name), os.stat(os.path.join(top, name)).st_size))
    return sorted(out)


def _killed(args: list[str], ready: Callable[[], bool], delay: float) -> bool:
    """Start `args`, SIGKILL it `delay` seconds after `ready()` holds; False if it
    finished first. Moments are events of the run (a load-proof seed), not clock times."""
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return kill_when(proc, ready, delay, timeout=120)


def _bundle_id(bundle: Path) -> str:
    return str(json.loads((bundle / "manifest.json").read_text())["bundle"])


def _quiet_after_kill(root: Path) -> None:
    """Nothing of the killed run writes on. Its encrypting child dies by
    PR_SET_PDEATHSIG when the parent does, but a write(2) it is inside then still
    completes (seen once under load: a 1 MiB write landing just after the parent was
    reaped); `kill_when` returned only once that child was gone too."""
    before = _listing(root)
    time.sleep(0.5)
    assert _listing(root) == before, "files changed after the seal was killed"


def test_a_seal_killed_at_seeded_moments_restarts_cleanly(
    tmp_path: Path, keys: Keys, cache_home: Path
) -> None:
    store = build_store(tmp_path, per_folder=20, size=300_000)  # ~18 MB, ~18 volumes
    bundle = tmp_path / "bundle"
    args = [sys.executable, "-m", "pstkit", "seal", str(store), str(bundle),
            "--recipient", keys.recipient, "--sign-key", str(keys.sign_key),
            "--volume-size", "1M"]  # fmt: skip
    rng = random.Random(SEED)
    data = bundle / "data"
    events = [data / f"{n:05d}.age" for n in sorted(rng.sample(range(1, 22), KILLS - 2))]
    events += [data / "index.age.tmp", bundle / "manifest.json.minisig"]
    killed = 0
    for event in events:
        if not _killed(args, event.exists, rng.uniform(0, 0.02)):
            break  # it finished: the loop's last run is the complete one
        killed += 1
        _quiet_after_kill(bundle)
        if (bundle / "manifest.json").exists():
            break  # killed after its last write: the bundle is whole (checked below)
        assert cli("check", str(bundle), "--trust", str(keys.sign_pub))[0] == 4
    assert killed >= 2, f"only {killed} of {KILLS} seals were killed before finishing"
    if not (bundle / "manifest.json").exists():
        code, _, err = cli("seal", *args[4:])
        assert code == 0, err
    code, out, err = cli("check", str(bundle), "--trust", str(keys.sign_pub))
    assert code == 0, out + err  # exactly the listed files: no stale volume of a killed run
    assert not [p for p in bundle.rglob("*.tmp")]
    target = tmp_path / "unsealed"
    code, _, err = cli("unseal", str(bundle), str(target), "--identity", str(keys.identity))
    assert code == 0, err
    assert store_state(target) == store_state(store)


def test_an_unseal_killed_at_seeded_moments_restarts_cleanly(tmp_path: Path, keys: Keys) -> None:
    store = build_store(tmp_path, per_folder=20, size=300_000)
    bundle = tmp_path / "bundle"
    code, _, err = cli("seal", str(store), str(bundle), "--recipient", keys.recipient,
                       "--sign-key", str(keys.sign_key), "--volume-size", "1M")  # fmt: skip
    assert code == 0, err
    target = tmp_path / "unsealed"
    args = [sys.executable, "-m", "pstkit", "unseal", str(bundle), str(target),
            "--identity", str(keys.identity)]  # fmt: skip
    rng = random.Random(SEED + 1)
    work = f".unsealed.unseal-{_bundle_id(bundle)[:8]}*"  # each run's own hidden sibling
    killed = 0
    for files in sorted(rng.sample(range(1, 84), KILLS)):
        ready = lambda n=files: sum(len(_listing(w)) for w in tmp_path.glob(work)) >= n  # noqa: E731
        if not _killed(args, ready, rng.uniform(0, 0.02)):
            break
        killed += 1
        if target.exists():  # killed after the rename, in the store check: it is whole
            break
    assert killed >= 2, f"only {killed} of {KILLS} unseals were killed before finishing"
    if not target.exists():
        code, _, err = cli(*args[3:])
        assert code == 0, err
    else:  # a re-run refuses to write over it, and what is there is the store
        assert cli(*args[3:])[0] != 0
    assert store_state(target) == store_state(store)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _journaled(cache: Path) -> set[str]:
    """The volumes the seal's journal vouches for."""
    (journal,) = (cache / "pstkit" / "seal-journal").glob("*.jsonl")
    out = set()
    for line in journal.read_text().splitlines()[1:]:
        with contextlib.suppress(ValueError):  # a line torn by the kill
            out.add(str(json.loads(line)["name"]))
    return out


def _inodes(bundle: Path) -> dict[str, int]:
    return {f"data/{p.name}": p.stat().st_ino for p in (bundle / "data").glob("0*.age")}


def _digests(bundle: Path) -> dict[str, str]:
    return {f"data/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (bundle / "data").glob("0*.age")}  # fmt: skip


def _seal_args(store: Path, bundle: Path, keys: Keys) -> list[str]:
    return [sys.executable, "-m", "pstkit", "seal", str(store), str(bundle),
            "--recipient", keys.recipient, "--sign-key", str(keys.sign_key),
            "--volume-size", "1M"]  # fmt: skip


def test_a_killed_seal_resumes_its_finished_volumes(
    tmp_path: Path, keys: Keys, cache_home: Path
) -> None:
    """Killed after seeded volumes, three times: each re-run keeps every volume the
    journal lists (same file, same inode), the journal names nothing but opaque
    volume names, and the finished bundle checks clean and unseals identically."""
    store = build_store(tmp_path, per_folder=20, size=300_000)  # ~18 volumes of 1 MiB
    bundle = tmp_path / "bundle"
    args = _seal_args(store, bundle, keys)
    rng = random.Random(SEED + 2)
    kept: dict[str, int] = {}
    for k in sorted(rng.sample(range(2, 17), 3)):
        volume = bundle / "data" / f"{k:05d}.age"
        assert _killed(args, volume.exists, rng.uniform(0, 0.02)), f"finished before volume {k}"
        _quiet_after_kill(bundle)
        journal = next((cache_home / "pstkit" / "seal-journal").glob("*.jsonl")).read_bytes()
        for secret in [b"Zephyr", b"acme-holdings", "Überweisungen".encode(), b"7-31-4159",
                       b"cur/"]:  # fmt: skip
            assert secret not in journal
        assert all(_inodes(bundle).get(n) == ino for n, ino in kept.items()), "a kept volume redone"
        listed = set(_journaled(cache_home))
        assert len(listed) >= k - 2  # at most the volume being journaled at the kill is missing
        kept = {n: ino for n, ino in _inodes(bundle).items() if n in listed}
    code, _, err = cli("seal", *args[4:])
    assert code == 0, err
    assert "resuming an interrupted seal" in err
    now = _inodes(bundle)
    assert all(now[n] == ino for n, ino in kept.items()), "a journaled volume was not reused"
    assert not list((cache_home / "pstkit" / "seal-journal").glob("*.jsonl"))  # removed at the end
    code, out, err = cli("check", str(bundle), "--trust", str(keys.sign_pub), "--identity",
                         str(keys.identity))  # fmt: skip
    assert code == 0, out + err
    target = tmp_path / "unsealed"
    code, _, err = cli("unseal", str(bundle), str(target), "--identity", str(keys.identity))
    assert code == 0, err
    assert store_state(target) == store_state(store)


def test_a_killed_seal_of_a_store_changed_meanwhile_reuses_nothing(
    tmp_path: Path, keys: Keys, cache_home: Path
) -> None:
    """One message added to the store between the kill and the re-run: the plan
    differs, every volume is written anew, and the bundle holds the new store."""
    store = build_store(tmp_path, per_folder=20, size=300_000)
    bundle = tmp_path / "bundle"
    args = _seal_args(store, bundle, keys)
    k = random.Random(SEED + 3).randrange(3, 12)
    assert _killed(args, (bundle / "data" / f"{k:05d}.age").exists, 0.0)
    before = _digests(bundle)
    assert len(before) >= k - 1
    new = tmp_path / "src" / "new" / "added.eml"
    new.write_bytes(secret_message(999, 1000))
    code, _, err = cli("export", f"maildir:{tmp_path / 'src'}", str(store))
    assert code == 0, err
    code, _, err = cli("seal", *args[4:])
    assert code == 0, err
    assert "clearing an interrupted seal and starting again" in err
    after = _digests(bundle)  # new age file keys: any volume written anew differs
    assert not [n for n, d in before.items() if after.get(n) == d], "a volume was reused"
    assert cli("check", str(bundle), "--trust", str(keys.sign_pub))[0] == 0
    target = tmp_path / "unsealed"
    code, _, err = cli("unseal", str(bundle), str(target), "--identity", str(keys.identity))
    assert code == 0, err
    assert store_state(target) == store_state(store)
    assert len(store_state(target)[1]) == 4 * 20 + 1
