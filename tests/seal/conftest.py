"""Fixtures of the seal room: keys, a store with known secrets, bundle helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pstkit.store import Store
from tests.helpers import cli, make_message, write_maildir

# What must never be readable in a bundle.
SUBJECTS = ["Quarterly merger plan Zephyr", "Übernahme der Firma Möwe", "会議の議事録"]
ADDRESSES = ["ceo.secret@acme-holdings.example", "whistle.blower@press.example"]
MAILDIRS = [".Projekt Zephyr", ".Vertraulich.Personalakten", ".Überweisungen 東京"]
FOLDER_NAMES = ["Projekt Zephyr", "Vertraulich", "Personalakten", "Überweisungen 東京"]
BODY_PHRASE = "the vault combination is 7-31-4159"


@dataclass(frozen=True)
class Keys:
    dir: Path
    identity: Path
    recipient: str
    sign_key: Path
    sign_pub: Path


def make_keys(directory: Path) -> Keys:
    code, _, err = cli("keygen", "--out", str(directory))
    assert code == 0, err
    return Keys(
        directory,
        directory / "identity.age",
        (directory / "recipient.txt").read_text().strip(),
        directory / "sign.key",
        directory / "sign.pub",
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("other-keys"))


def secret_message(i: int, size: int = 0) -> bytes:
    subject = SUBJECTS[i % len(SUBJECTS)]
    raw = make_message(i, subject=subject, size=size)
    raw = raw.replace(b"rcpt@example.com", ADDRESSES[i % len(ADDRESSES)].encode())
    return raw.replace(f"Body {i}\n".encode(), f"Body {i}: {BODY_PHRASE}\n".encode())


def build_store(root: Path, per_folder: int = 3, size: int = 0, layout: str = "maildir") -> Path:
    src = root / "src"
    folders: dict[str, list[tuple[bytes, str]]] = {"": [], **{d: [] for d in MAILDIRS}}
    n = 0
    for messages in folders.values():
        for _ in range(per_folder):
            messages.append((secret_message(n, size), "S" if n % 2 else "RF"))
            n += 1
    write_maildir(src, folders)
    store = root / "store"
    code, _, err = cli("export", "--format", layout, f"maildir:{src}", str(store))
    assert code == 0, err
    return store


def store_state(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Folders and every message row with its verified bytes' digest."""
    with Store.open(path) as st:
        folders = sorted((f.info.path, f.info.role, f.dirname) for f in st.folders())
        rows = sorted(
            (
                r.msg.folder,
                r.msg.sha256,
                r.msg.size,
                sorted(r.msg.flags),
                r.msg.subject,
                r.msg.received,
                r.file,
                st.read(r) is not None,
            )
            for r in st.rows()
        )
    return folders, rows  # type: ignore[return-value]


def seal(store: Path, bundle: Path, keys: Keys, *extra: str) -> tuple[int, str, str]:
    return cli(
        "seal",
        str(store),
        str(bundle),
        "--recipient",
        keys.recipient,
        "--sign-key",
        str(keys.sign_key),
        *extra,
    )


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path) -> Iterator[Path]:
    """Work stores of `import BUNDLE` / `export --seal` and the journals of `seal`
    go under the test's directory (every test here: a refused seal keeps its journal)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    yield tmp_path / "cache"
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


