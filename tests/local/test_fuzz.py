"""Mutated corpus files through the local sources: every outcome is a stored
message or a reported skip, never a crash, and the store always checks clean."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.helpers import cli, cli_json

SEEDS = range(12)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.choice(("flip", "cut", "insert", "dup"))
        pos = rng.randrange(len(buf)) if buf else 0
        if op == "flip" and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == "cut":
            del buf[pos : pos + rng.randint(1, 400)]
        elif op == "insert":
            buf[pos:pos] = rng.choice(
                [b"\nFrom x Mon Jan  1 00:00:00 2024\n", b"\x00\xff", b"\r", b"\n\n", b">From "]
            )
        else:
            buf[pos:pos] = buf[max(0, pos - 200) : pos]
    return bytes(buf)


def _export_ok(source: str, store: Path) -> None:
    code, out, err = cli("export", source, store)
    assert code in (0, 1), f"exit {code}: {err}"
    assert "Traceback" not in err and "internal error" not in err
    code, out, _ = cli("check", "--read-data", store)
    assert code == 0, out


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_mbox_files(corpus: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    src = tmp_path / "in"
    src.mkdir()
    for path in sorted((corpus / "mbox").iterdir()):
        (src / path.name).write_bytes(_mutate(path.read_bytes(), rng))
    _export_ok(f"mbox:{src}", tmp_path / "store")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_eml_and_maildir_files(corpus: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(1000 + seed)
    eml = tmp_path / "eml"
    eml.mkdir()
    for path in rng.sample(sorted((corpus / "eml").iterdir()), 15):
        (eml / path.name).write_bytes(_mutate(path.read_bytes(), rng))
    _export_ok(f"eml:{eml}", tmp_path / "store")
    md = tmp_path / "md"
    for sub in ("cur", "new"):
        (md / sub).mkdir(parents=True)
    for n, path in enumerate(sorted((eml).iterdir())):
        name = f"{n}.fuzz:2,{rng.choice(['S', 'FS', 'Rx', '', 'ZZ!'])}"
        (md / "cur" / name).write_bytes(path.read_bytes())
    _export_ok(f"maildir:{md}", tmp_path / "store2")
    _, res = cli_json("ls", tmp_path / "store2")
    assert sum(f["messages"] for f in res["folders"]) == 15  # type: ignore[index]
