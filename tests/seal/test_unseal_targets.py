"""Where `unseal` may write its store: a new or empty directory. What it refuses
is named for what it is (a re-run into the store an unseal already made was
called "not a pstkit store", which reads like damage), and a target given by a
symlink to an empty directory, or as ".", is written, not refused after the
whole bundle was decrypted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.seal.conftest import Keys, build_store, seal, store_state


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sealed")
    store = build_store(root, per_folder=2)
    assert seal(store, root / "b", keys)[0] == 0
    return store, root / "b"


def _unseal(bundle: Path, target: Path | str, keys: Keys) -> tuple[int, str, str]:
    return cli("unseal", str(bundle), str(target), "--identity", str(keys.identity))


def test_a_second_unseal_into_the_store_the_first_made_says_it_is_a_store(
    tmp_path: Path, sealed: tuple[Path, Path], keys: Keys
) -> None:
    store, bundle = sealed
    target = tmp_path / "st"
    assert _unseal(bundle, target, keys)[0] == 0
    code, _, err = _unseal(bundle, target, keys)
    assert code == 3, err
    assert "not a pstkit store" not in err
    assert "already holds a pstkit store" in err
    assert len(err.strip().splitlines()) == 2  # the error and its hint
    assert store_state(target) == store_state(store)  # nothing added or duplicated


def test_a_symlink_to_an_empty_directory_is_a_target(
    tmp_path: Path, sealed: tuple[Path, Path], keys: Keys
) -> None:
    store, bundle = sealed
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    code, _, err = _unseal(bundle, tmp_path / "link", keys)
    assert code == 0, err
    assert (tmp_path / "link").is_symlink()
    assert store_state(tmp_path / "real") == store_state(store)


def test_the_current_directory_empty_is_a_target(
    tmp_path: Path, sealed: tuple[Path, Path], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, bundle = sealed
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    code, _, err = _unseal(bundle, ".", keys)
    assert code == 0, err
    assert store_state(tmp_path / "here") == store_state(store)
    assert not [n for n in os.listdir(tmp_path) if "unseal" in n]
