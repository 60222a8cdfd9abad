"""`seal --read-data` refuses a damaged store (exit 4) once a message's bytes
fail its SHA-256 — but those bytes are in the stream by then, and the volumes
that hold them may be finished and in the run's journal. The admin restores the
message (the catalog is unchanged) and seals again: the re-run used to keep
those volumes ("resuming … volumes kept"), exit 0, and the bundle held the
damaged bytes: `check --identity` and `unseal` refused it (exit 4) on the far
side. After a damaged message the journal vouches for nothing."""

from __future__ import annotations

from pathlib import Path

from pstkit.store import Store
from tests.helpers import cli
from tests.seal.conftest import Keys, build_store, seal, store_state


def test_a_seal_refused_for_damage_then_repaired_gives_a_bundle_that_unseals(
    tmp_path: Path, keys: Keys
) -> None:
    store = build_store(tmp_path, per_folder=1, size=6_000_000)  # 4 messages of ~6 volumes
    with Store.open(store) as st:
        victim = st.mail / list(st.catalog.files())[1][0]  # spans volumes ~7-12
    good = victim.read_bytes()
    damaged = bytearray(good)
    damaged[100] ^= 0x20  # in the first of its volumes; found at its end, 6 MB on
    victim.write_bytes(bytes(damaged))
    bundle = tmp_path / "b"
    code, _, err = seal(store, bundle, keys, "--volume-size", "1M", "--read-data")
    assert code == 4, err
    victim.write_bytes(good)  # restored from a backup: the catalog never changed
    code, _, err = seal(store, bundle, keys, "--volume-size", "1M", "--read-data")
    assert code == 0, err
    code, out, _ = cli("check", str(bundle), "--trust", str(keys.sign_pub),
                       "--identity", str(keys.identity))  # fmt: skip
    assert code == 0, out
    code, _, err = cli("unseal", str(bundle), str(tmp_path / "u"), "--identity", str(keys.identity))
    assert code == 0, err
    assert store_state(tmp_path / "u") == store_state(store)
