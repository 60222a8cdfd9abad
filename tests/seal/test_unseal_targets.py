"""Where `unseal` may write its store: a new or empty directory. What it refuses
is named for what it is (a re-run into the store an unseal already made was
called "not a pstkit store", which reads like damage)."""

from __future__ import annotations

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
