"""The examples at the end of `seal --help` and `unseal --help` run as written
(placeholders filled in): the admin copies them. The passphrase pair asked for a
--volume-size above the 3G limit, sealed without the required --sign-key, and
unsealed without the --trust that a passphrase bundle needs."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from pstkit.cli.examples import EXAMPLES
from tests.helpers import cli
from tests.seal.conftest import Keys, build_store, store_state


def _filled(example: str, values: dict[str, str]) -> list[str]:
    words = shlex.split(example)
    assert words[0] == "pstkit"
    out = []
    for word in words[1:]:
        filled = word
        for placeholder, value in values.items():
            filled = filled.replace(placeholder, value)
        out.append(filled)
    return out


@pytest.mark.parametrize("which", [0, 1])
def test_the_seal_and_unseal_examples_run_as_written(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, which: int
) -> None:
    store = build_store(tmp_path, per_folder=1)
    (tmp_path / "pw").write_text("correct horse battery\n")
    monkeypatch.setenv("PSTKIT_PASSPHRASE", "correct horse battery")  # the prompt's stand-in
    values = {"/media/usb/anna": str(tmp_path / "bundle"), "KEYS": str(keys.dir),
              "PW": str(tmp_path / "pw")}  # fmt: skip
    code, _, err = cli(*_filled(EXAMPLES["seal"][which], {"STORE": str(store), **values}))
    assert code == 0, err
    target = tmp_path / "unsealed"
    code, _, err = cli(*_filled(EXAMPLES["unseal"][which], {"STORE": str(target), **values}))
    assert code == 0, err
    assert store_state(target) == store_state(store)
