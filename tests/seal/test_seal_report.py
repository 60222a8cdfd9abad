"""What `seal` reports is what it sealed: an mbox store's messages were counted
from the catalog's per-file SHA-256 (which mbox rows do not carry through the
seal), so an mbox store of N messages was reported as "sealed 0 messages"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.seal.conftest import Keys, build_store, seal, store_state


@pytest.mark.parametrize("layout", ["maildir", "mbox"])
def test_seal_reports_the_number_of_messages_sealed(
    tmp_path: Path, keys: Keys, layout: str
) -> None:
    store = build_store(tmp_path, per_folder=2, layout=layout)  # 4 folders
    code, out, err = seal(store, tmp_path / "b", keys)
    assert code == 0, err
    assert "sealed 8 messages" in out
    code, out, err = cli("--json", "seal", str(store), str(tmp_path / "b2"), "--recipient",
                         keys.recipient, "--sign-key", str(keys.sign_key))  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["messages"] == 8
    code, _, err = cli("unseal", str(tmp_path / "b"), str(tmp_path / "u"),
                       "--identity", str(keys.identity))  # fmt: skip
    assert code == 0, err
    assert len(store_state(tmp_path / "u")[1]) == 8
