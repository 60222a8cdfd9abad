"""A passphrase that protects something new (a bundle sealed with --passphrase, a
sign.key made by keygen --passphrase) must not be empty: an empty environment
variable (a typo'd `$PW` in a script) or an empty file sealed the mail under
the empty passphrase, which anyone can try, with exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli
from tests.seal.conftest import Keys, build_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("store"), per_folder=1)


def _refused(code: int, err: str) -> None:
    assert code == 2, err
    assert "empty" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # the error and its hint


def test_seal_refuses_an_empty_bundle_passphrase_from_the_environment(
    tmp_path: Path, store: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSPHRASE", "")
    bundle = tmp_path / "b"
    code, _, err = cli("seal", str(store), str(bundle), "--passphrase",
                       "--sign-key", str(keys.sign_key))  # fmt: skip
    _refused(code, err)
    assert not (bundle / "manifest.json").exists()
    assert not list(bundle.rglob("*.age"))


def test_seal_refuses_an_empty_passphrase_file(tmp_path: Path, store: Path, keys: Keys) -> None:
    empty = tmp_path / "pw"
    empty.write_text("\n")
    bundle = tmp_path / "b"
    code, _, err = cli("seal", str(store), str(bundle), "--passphrase", "--passphrase-file",
                       str(empty), "--sign-key", str(keys.sign_key))  # fmt: skip
    _refused(code, err)
    assert not (bundle / "manifest.json").exists()


def test_keygen_refuses_an_empty_sign_key_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_SIGN_PASSPHRASE", "")
    code, _, err = cli("keygen", "--out", str(tmp_path / "k"), "--passphrase")
    _refused(code, err)
    assert not (tmp_path / "k" / "sign.key").exists()
