"""Sealed bundles through the CLI: round trip over a FAT32 image, recovery with
age + tar alone, every tamper case (exit 4), keys and passphrases, confidentiality."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pstkit.seal.minisign import SecretKey
from tests.helpers import cli, maildir_content
from tests.seal.conftest import (
    ADDRESSES,
    BODY_PHRASE,
    FOLDER_NAMES,
    SUBJECTS,
    Keys,
    build_store,
    seal,
    store_state,
)

MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("age", "minisign", "mcopy")),
    reason="needs Debian's age, minisign and mtools (scripts/setup.sh --dev)",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("store"), per_folder=4)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, store: Path, keys: Keys) -> Path:
    path = tmp_path_factory.mktemp("b") / "bundle"
    code, out, err = seal(store, path, keys)
    assert code == 0, err
    assert "sealed 16 messages" in out
    return path


def copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def check(bundle: Path, keys: Keys, *extra: str) -> tuple[int, str, str]:
    return cli("check", str(bundle), "--trust", str(keys.sign_pub), *extra)


def test_keygen_writes_secret_files_0600_and_never_overwrites(keys: Keys) -> None:
    assert keys.recipient.startswith("age1")
    for name in ("identity.age", "sign.key"):
        assert stat.S_IMODE((keys.dir / name).stat().st_mode) == 0o600
    assert (keys.dir / "sign.pub").read_text().startswith("untrusted comment: minisign public key")
    code, _, err = cli("keygen", "--out", str(keys.dir))
    assert code == 2
    assert "never overwrites" in err
    assert len(err.strip().splitlines()) == 2  # the error and its hint


@needs_tools
def test_round_trip_through_a_fat32_image(
    tmp_path: Path, store: Path, bundle: Path, keys: Keys
) -> None:
    image = tmp_path / "fat32.img"
    with open(image, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    for args in (
        ["mformat", "-i", image, "-F", "::"],
        ["mcopy", "-i", image, "-s", "-Q", bundle, "::/"],
    ):
        subprocess.run(args, check=True, env=MTOOLS_ENV, capture_output=True)
    (tmp_path / "back").mkdir()
    subprocess.run(
        ["mcopy", "-i", image, "-s", "-Q", "::/bundle", tmp_path / "back"],
        check=True,
        env=MTOOLS_ENV,
        capture_output=True,
    )
    carried = tmp_path / "back" / "bundle"
    code, out, _ = check(carried, keys)  # no decryption key needed
    assert code == 0, out
    assert out.strip().endswith("0 damaged")
    code, out, _ = check(carried, keys, "--identity", str(keys.identity))
    assert code == 0, out
    assert "16 messages" in out
    code, out, err = cli(
        "unseal",
        str(carried),
        str(tmp_path / "unsealed"),
        "--identity",
        str(keys.identity),
        "--trust",
        str(keys.sign_pub),
    )
    assert code == 0, err
    assert store_state(tmp_path / "unsealed") == store_state(store)
    assert cli("check", "--read-data", str(tmp_path / "unsealed"))[0] == 0


@needs_tools
def test_standard_tools_alone_verify_and_recover_the_store(
    tmp_path: Path, store: Path, bundle: Path, keys: Keys
) -> None:
    done = subprocess.run(
        ["minisign", "-V", "-p", keys.sign_pub, "-m", bundle / "manifest.json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stream = b"".join(
        subprocess.run(
            ["age", "-d", "-i", keys.identity, f], capture_output=True, check=True
        ).stdout
        for f in sorted((bundle / "data").glob("0*.age"))
    )
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-x", "-C", tmp_path / "x"], input=stream, check=True)
    assert store_state(tmp_path / "x") == store_state(store)
    index = subprocess.run(
        ["age", "-d", "-i", keys.identity, bundle / "data" / "index.age"],
        capture_output=True,
        check=True,
    ).stdout
    assert (
        json.loads(index)["bundle"] == json.loads((bundle / "manifest.json").read_text())["bundle"]
    )


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x40
    path.write_bytes(bytes(data))


def _resign(bundle: Path, key: SecretKey) -> None:
    """An attacker's manifest: same bundle id, own signature."""
    raw = (bundle / "manifest.json").read_bytes()
    sig = key.sign(raw, f"bundle:{json.loads(raw)['bundle']}")
    (bundle / "manifest.json.minisig").write_text(sig.text())


def test_each_tamper_is_caught_without_a_key(
    tmp_path: Path, store: Path, bundle: Path, keys: Keys
) -> None:
    older = tmp_path / "older"
    assert seal(store, older, keys)[0] == 0  # the same store sealed again: a valid older copy
    other = SecretKey.generate()
    cases = {
        "flip data": lambda b: _flip(b / "data" / "00001.age", 5000),
        "flip index": lambda b: _flip(b / "data" / "index.age", 200),
        "flip manifest": lambda b: _flip(b / "manifest.json", 40),
        "flip signature": lambda b: _flip(b / "manifest.json.minisig", 70),
        "delete": lambda b: (b / "data" / "00001.age").unlink(),
        "add data": lambda b: (b / "data" / "00002.age").write_bytes(b"x"),
        "add top": lambda b: (b / "notes.txt").write_text("hi"),
        "re-signed": lambda b: _resign(b, other),
        "rollback": lambda b: shutil.copy(older / "data" / "00001.age", b / "data" / "00001.age"),
        "swap index": lambda b: shutil.copy(older / "data" / "index.age", b / "data" / "index.age"),
    }
    for name, tamper in cases.items():
        work = tmp_path / name.replace(" ", "-")
        shutil.copytree(bundle, work)
        tamper(work)
        code, out, err = check(work, keys)
        assert code == 4, (name, out, err)
        lines = [ln for ln in out.splitlines() if ln.startswith("DAMAGE")] or err.splitlines()[:1]
        assert len(lines) == 1, (name, out, err)
        if name in ("delete", "add data", "rollback", "flip data", "swap index"):
            assert "data/" in lines[0], (name, lines)


def test_untrusted_signer_is_refused_before_decryption(
    tmp_path: Path, bundle: Path, keys: Keys, other_keys: Keys
) -> None:
    target = tmp_path / "store"
    code, _, err = cli(
        "unseal",
        str(bundle),
        str(target),
        "--identity",
        str(keys.identity),
        "--trust",
        str(other_keys.sign_pub),
    )
    assert code == 4
    assert "not by the trusted key" in err
    assert len(err.strip().splitlines()) == 2
    assert not target.exists() and not list(tmp_path.glob(".store*"))


def test_wrong_identity_is_one_line(
    tmp_path: Path, bundle: Path, keys: Keys, other_keys: Keys
) -> None:
    code, _, err = cli(
        "unseal",
        str(bundle),
        str(tmp_path / "s"),
        "--identity",
        str(other_keys.identity),
        "--trust",
        str(keys.sign_pub),
    )
    assert code == 6
    assert err.startswith("pstkit: error: cannot decrypt data/index.age")
    assert len(err.strip().splitlines()) == 2
    code, _, err = cli(
        "check", str(bundle), "--trust", str(keys.sign_pub), "--identity", str(other_keys.identity)
    )
    assert code == 6


def test_nothing_readable_in_the_bundle(bundle: Path) -> None:
    blob = b"".join(p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file())
    names = " ".join(p.name for p in bundle.rglob("*"))
    secrets = [*SUBJECTS, *ADDRESSES, *FOLDER_NAMES, BODY_PHRASE, "Zephyr", "acme-holdings"]
    for secret in secrets:
        for form in {secret.encode(), secret.encode("utf-16-le"), secret.lower().encode()}:
            assert form not in blob, secret
        assert secret not in names


def test_unseal_refuses_a_non_empty_target_and_seal_a_finished_bundle(
    tmp_path: Path, store: Path, bundle: Path, keys: Keys
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, _, err = cli(
        "unseal", str(bundle), str(tmp_path / "full"), "--identity", str(keys.identity)
    )
    assert code == 3, err
    code, _, err = seal(store, bundle, keys)
    assert code == 3
    assert "already holds a sealed bundle" in err


def test_a_damaged_store_is_caught_at_seal_or_at_unseal(tmp_path: Path, keys: Keys) -> None:
    store = build_store(tmp_path, per_folder=1)
    victim = next(p for p in (store / "mail").rglob("cur/*") if p.is_file())
    _flip(victim, 10)  # same size: only a hash finds it
    code, _, err = seal(store, tmp_path / "b", keys, "--read-data")
    assert code == 4
    assert "does not match its SHA-256" in err
    assert not (tmp_path / "b" / "manifest.json").exists()
    assert seal(store, tmp_path / "b2", keys)[0] == 0  # sizes only: sealed as it is …
    code, _, err = cli(
        "unseal", str(tmp_path / "b2"), str(tmp_path / "u"), "--identity", str(keys.identity)
    )
    assert code == 4  # … and refused where it is opened
    assert victim.name in err
    assert not (tmp_path / "u").exists()
    victim.write_bytes(victim.read_bytes()[:-5])  # a size change is found at once
    code, _, err = seal(store, tmp_path / "b3", keys)
    assert code == 4
    assert "size differs" in err


def test_small_volumes_and_a_member_across_two(tmp_path: Path, keys: Keys) -> None:
    store = build_store(tmp_path, per_folder=3, size=400_000)  # ~3.6 MB
    code, _, err = seal(store, tmp_path / "b", keys, "--volume-size", "1M")
    assert code == 0, err
    files = sorted((tmp_path / "b" / "data").glob("0*.age"))
    assert len(files) >= 4
    assert all(f.stat().st_size <= (1 << 20) + 1024 for f in files)
    code, _, err = cli(
        "unseal", str(tmp_path / "b"), str(tmp_path / "u"), "--identity", str(keys.identity)
    )
    assert code == 0, err
    assert store_state(tmp_path / "u") == store_state(store)


def test_mbox_store_round_trip(tmp_path: Path, keys: Keys) -> None:
    store = build_store(tmp_path, per_folder=2, layout="mbox")
    assert seal(store, tmp_path / "b", keys)[0] == 0
    code, out, _ = check(tmp_path / "b", keys, "--identity", str(keys.identity))
    assert code == 0, out
    assert (
        cli("unseal", str(tmp_path / "b"), str(tmp_path / "u"), "--identity", str(keys.identity))[0]
        == 0
    )
    assert store_state(tmp_path / "u") == store_state(store)


def test_passphrase_bundle(
    tmp_path: Path, store: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_PASSPHRASE", "correct horse battery")
    code, _, err = cli(
        "seal", str(store), str(tmp_path / "b"), "--passphrase", "--sign-key", str(keys.sign_key)
    )
    assert code == 0, err
    assert "correct horse" not in " ".join(map(str, (tmp_path / "b").rglob("*")))
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["encryption"] == "scrypt"
    code, _, err = cli(
        "unseal", str(tmp_path / "b"), str(tmp_path / "u"), "--trust", str(keys.sign_pub)
    )
    assert code == 0, err
    assert store_state(tmp_path / "u") == store_state(store)
    monkeypatch.setenv("PSTKIT_PASSPHRASE", "wrong")
    code, _, err = cli(
        "unseal", str(tmp_path / "b"), str(tmp_path / "u2"), "--trust", str(keys.sign_pub)
    )
    assert code == 6
    assert len(err.strip().splitlines()) == 2


def test_recipient_and_passphrase_are_exclusive_and_keys_come_from_files(
    tmp_path: Path, store: Path, keys: Keys
) -> None:
    code, _, err = seal(store, tmp_path / "b", keys, "--passphrase")
    assert code == 2
    assert "not both" in err
    code, _, err = cli(
        "seal",
        str(store),
        str(tmp_path / "b"),
        "--recipient",
        "age1nonsense",
        "--sign-key",
        str(keys.sign_key),
    )
    assert code == 2
    code, _, err = cli(
        "seal",
        str(store),
        str(tmp_path / "b"),
        "--recipient",
        str(keys.dir / "recipient.txt"),
        "--sign-key",
        str(keys.sign_pub),
    )
    assert code == 2
    assert "sign.pub" in err


def test_import_straight_from_a_bundle_into_maildir(
    tmp_path: Path, store: Path, bundle: Path, keys: Keys, cache_home: Path
) -> None:
    out = tmp_path / "out"
    code, text, err = cli(
        "import",
        str(bundle),
        f"maildir:{out}",
        "--identity",
        str(keys.identity),
        "--trust",
        str(keys.sign_pub),
    )
    assert code == 0, err
    assert "16 new, 0 already delivered" in text
    reference = tmp_path / "ref"
    assert cli("import", str(store), f"maildir:{reference}")[0] == 0
    assert maildir_content(out) == maildir_content(reference)
    assert not list(cache_home.glob("pstkit/bundles/*"))  # complete: the plaintext cache is gone
    before = maildir_content(out)
    code, text, _ = cli("import", str(bundle), f"maildir:{out}", "--identity", str(keys.identity),
                        "--keep-cache")  # fmt: skip
    assert code == 0
    assert "0 new" in text, text  # unsealed again, the target's copies are found: nothing twice
    assert maildir_content(out) == before
    assert list(cache_home.glob("pstkit/bundles/*"))  # --keep-cache
    code, text, _ = cli("import", str(bundle), f"maildir:{out}", "--identity", str(keys.identity))
    assert code == 0
    assert "0 new, 16 already delivered" in text  # the kept work store's ledger
    assert not list(cache_home.glob("pstkit/bundles/*"))


def test_export_seal_puts_only_ciphertext_on_the_bundle_disk(
    tmp_path: Path, keys: Keys, cache_home: Path
) -> None:
    store = build_store(tmp_path, per_folder=2)
    src = tmp_path / "src"
    code, out, err = cli(
        "export",
        f"maildir:{src}",
        str(tmp_path / "b"),
        "--seal",
        "--recipient",
        keys.recipient,
        "--sign-key",
        str(keys.sign_key),
    )
    assert code == 0, err
    assert "staging the plain store on local disk" in err
    assert "sealed 8 messages" in out
    assert not list(cache_home.glob("pstkit/seal/*"))  # the work store is gone
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "data",
        "manifest.json",
        "manifest.json.minisig",
    ]
    assert (
        cli("unseal", str(tmp_path / "b"), str(tmp_path / "u"), "--identity", str(keys.identity))[0]
        == 0
    )
    assert store_state(tmp_path / "u") == store_state(store)  # same source, same rows


def test_unseal_of_an_altered_volume_stops_and_leaves_nothing(
    tmp_path: Path, bundle: Path, keys: Keys
) -> None:
    work = copy(bundle, tmp_path)
    _flip(work / "data" / "00001.age", 3000)  # same size: found while decrypting
    target = tmp_path / "store"
    code, _, err = cli("unseal", str(work), str(target), "--identity", str(keys.identity))
    assert code == 4, err
    assert "data/00001.age" in err.splitlines()[0]
    assert not target.exists() and not list(tmp_path.glob(".store*"))
    code, out, _ = check(work, keys, "--identity", str(keys.identity))
    assert code == 4
    assert "DAMAGE  digest     data/00001.age" in out


def test_one_process_mode_writes_and_reads_the_same_format(
    tmp_path: Path, store: Path, bundle: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PSTKIT_SEAL_ONE_PROCESS=1 (no fork): its bundle opens in two-process mode and back."""
    monkeypatch.setenv("PSTKIT_SEAL_ONE_PROCESS", "1")
    assert seal(store, tmp_path / "b", keys, "--volume-size", "1M")[0] == 0
    code, out, _ = check(tmp_path / "b", keys, "--identity", str(keys.identity))
    assert code == 0, out
    assert (
        cli("unseal", str(bundle), str(tmp_path / "u1"), "--identity", str(keys.identity))[0] == 0
    )
    monkeypatch.delenv("PSTKIT_SEAL_ONE_PROCESS")
    assert (
        cli("unseal", str(tmp_path / "b"), str(tmp_path / "u2"), "--identity", str(keys.identity))[
            0
        ]
        == 0
    )
    assert store_state(tmp_path / "u1") == store_state(tmp_path / "u2") == store_state(store)


def test_passphrase_protected_sign_key(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSTKIT_SIGN_PASSPHRASE", "sign-secret")
    code, _, err = cli("keygen", "--out", str(tmp_path / "k"), "--passphrase")
    assert code == 0, err
    assert "encrypted secret key" in (tmp_path / "k" / "sign.key").read_text()
    args = [
        "seal",
        str(store),
        str(tmp_path / "b"),
        "--recipient",
        str(tmp_path / "k" / "recipient.txt"),
        "--sign-key",
        str(tmp_path / "k" / "sign.key"),
    ]
    assert cli(*args)[0] == 0
    if shutil.which("minisign"):
        subprocess.run(
            [
                "minisign",
                "-V",
                "-p",
                tmp_path / "k" / "sign.pub",
                "-m",
                tmp_path / "b" / "manifest.json",
            ],
            check=True,
            capture_output=True,
        )
    monkeypatch.setenv("PSTKIT_SIGN_PASSPHRASE", "wrong")
    code, _, err = cli(*args[:2], str(tmp_path / "b2"), *args[3:])
    assert code == 6
    assert "wrong passphrase" in err and len(err.strip().splitlines()) == 2
    monkeypatch.delenv("PSTKIT_SIGN_PASSPHRASE")
    code, _, err = cli(*args[:2], str(tmp_path / "b3"), *args[3:])
    assert code == 2
    assert "$PSTKIT_SIGN_PASSPHRASE" in err
