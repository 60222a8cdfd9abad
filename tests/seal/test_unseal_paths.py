"""The two ways an unseal writes files: one process (the default) and two
(PSTKIT_UNSEAL_FORK=1: a child checks and sends only the files' bytes, the
parent splices them into files; spliced.py). A file whose bytes differ from the
index is refused by both; the child sends no byte of it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pstkit.seal.bundle import read_manifest
from pstkit.seal.errors import BundleDamaged
from pstkit.seal.keys import load_identities, load_trusted
from pstkit.seal.opening import read_index
from pstkit.seal.spliced import _fill, forward_files
from pstkit.store import Store
from tests.helpers import cli
from tests.seal.conftest import Keys, build_store, seal, store_state


def _damaged_bundle(tmp_path: Path, keys: Keys) -> tuple[Path, Path, Path]:
    """(store, bundle, victim): one message altered after the catalog, same size."""
    store = build_store(tmp_path, per_folder=2)
    with Store.open(store) as st:
        victim = st.mail / list(st.catalog.files())[-1][0]  # the last in the stream
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))
    assert seal(store, tmp_path / "b", keys)[0] == 0  # sizes only: sealed as it is
    return store, tmp_path / "b", victim


def test_the_child_sends_no_byte_of_a_file_that_fails_its_hash(
    tmp_path: Path, keys: Keys
) -> None:
    store, bundle, victim = _damaged_bundle(tmp_path, keys)
    manifest = read_manifest(bundle, load_trusted(keys.sign_pub))
    identities = load_identities(keys.identity)
    index = read_index(bundle, manifest, identities)
    r, w = os.pipe()
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.extend(iter(lambda: os.read(r, 1 << 16), b""))
    )
    reader.start()
    try:
        with pytest.raises(BundleDamaged, match=victim.name):
            forward_files(bundle, manifest, index, identities, w)
    finally:
        os.close(w)
        reader.join()
        os.close(r)
    files = [m for m in index.members if m.kind == "file"]
    at = next(i for i, m in enumerate(files) if store / m.path == victim)
    assert at > 2  # messages before it were sent
    got = b"".join(received)
    assert len(got) == sum(m.size for m in files[:at])  # every file before it; nothing of it
    messages = b"".join((store / m.path).read_bytes() for m in files[2:at])
    assert got.endswith(messages)  # (the catalog is the one sealed; the seal's lock moved on)


@pytest.mark.parametrize("fork", [False, True])
def test_both_ways_refuse_a_file_that_differs_from_the_index(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    if fork:
        monkeypatch.setenv("PSTKIT_UNSEAL_FORK", "1")
    _, bundle, victim = _damaged_bundle(tmp_path, keys)
    target = tmp_path / "u"
    code, _, err = cli("unseal", str(bundle), str(target), "--identity", str(keys.identity))
    assert code == 4, err
    assert victim.name in err and "differs from the index" in err
    assert not target.exists() and not list(tmp_path.glob(".u.unseal-*"))


def test_fill_copies_where_the_kernel_refuses_to_splice(tmp_path: Path) -> None:
    """splice(2) refuses a file opened for appending (EINVAL): read and write instead."""
    payload = os.urandom(300_000)
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, payload), os.close(w)))
    writer.start()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        assert _fill(r, fd, 200_000) == 200_000
        assert _fill(r, fd, 200_000) == 100_000  # the stream ends first: fewer
    finally:
        os.close(fd)
        writer.join()
        os.close(r)
    assert (tmp_path / "f").read_bytes() == payload


def test_both_ways_unseal_the_same_store(tmp_path: Path, keys: Keys) -> None:
    store = build_store(tmp_path, per_folder=10, size=100_000)  # ~4 volumes
    assert seal(store, tmp_path / "b", keys, "--volume-size", "1M")[0] == 0
    args = ["unseal", str(tmp_path / "b")]
    assert cli(*args, str(tmp_path / "u1"), "--identity", str(keys.identity))[0] == 0
    os.environ["PSTKIT_UNSEAL_FORK"] = "1"
    try:
        assert cli(*args, str(tmp_path / "u2"), "--identity", str(keys.identity))[0] == 0
    finally:
        del os.environ["PSTKIT_UNSEAL_FORK"]
    assert store_state(tmp_path / "u1") == store_state(tmp_path / "u2") == store_state(store)
