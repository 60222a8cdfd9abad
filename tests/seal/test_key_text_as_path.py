"""A key's text pasted where its file's path belongs (`-i AGE-SECRET-KEY-1…`,
`--sign-key "$(cat sign.key)"`, a secret key as `--recipient`) is refused in one
line that does not repeat it: stderr goes to terminals' scrollback, cron mail
and CI logs. The error used to be `key file <the whole secret key>: No such file`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli
from tests.seal.conftest import Keys, build_store, seal


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sealed")
    store = build_store(root, per_folder=1)
    assert seal(store, root / "b", keys)[0] == 0
    return store, root / "b"


def _secret_texts(keys: Keys) -> tuple[str, str, str]:
    """The identity line, sign.key's key line, and all of sign.key."""
    identity = next(ln for ln in keys.identity.read_text().splitlines()
                    if ln.startswith("AGE-SECRET-KEY-"))  # fmt: skip
    whole = keys.sign_key.read_text()
    return identity, whole.splitlines()[1], whole


def _refused_quietly(result: tuple[int, str, str], secret: str) -> None:
    code, out, err = result
    assert code == 2, err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err
    for text in (err, out):
        assert secret.strip() not in text
        assert secret.strip()[20:40] not in text  # no part of it either


def test_an_identity_given_as_its_text(
    tmp_path: Path, sealed: tuple[Path, Path], keys: Keys
) -> None:
    identity, _, _ = _secret_texts(keys)
    _, bundle = sealed
    result = cli("unseal", str(bundle), str(tmp_path / "u"), "--identity", identity,
                 "--trust", str(keys.sign_pub))  # fmt: skip
    _refused_quietly(result, identity)
    assert not (tmp_path / "u").exists()


def test_a_secret_key_given_as_a_recipient(
    tmp_path: Path, sealed: tuple[Path, Path], keys: Keys
) -> None:
    identity, _, _ = _secret_texts(keys)
    store, _ = sealed
    result = cli("seal", str(store), str(tmp_path / "b"), "--recipient", identity,
                 "--sign-key", str(keys.sign_key))  # fmt: skip
    _refused_quietly(result, identity)


@pytest.mark.parametrize("which", [1, 2])
def test_a_sign_key_given_as_its_text(
    tmp_path: Path, sealed: tuple[Path, Path], keys: Keys, which: int
) -> None:
    secret = _secret_texts(keys)[which]
    store, _ = sealed
    result = cli("seal", str(store), str(tmp_path / "b"), "--recipient", keys.recipient,
                 "--sign-key", secret)  # fmt: skip
    _refused_quietly(result, secret.splitlines()[1] if which == 2 else secret)
