"""age and minisign as Debian's reference tools read and write them, and the
parsers' behaviour on damaged input (only their own errors, never a crash)."""

from __future__ import annotations

import io
import os
import pty
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.seal import bech32
from pstkit.seal.age import (
    CHUNK,
    AgeError,
    Decryptor,
    Encryptor,
    NoIdentityMatch,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    X25519Recipient,
    parse_header,
)
from pstkit.seal.minisign import MinisignError, PublicKey, SecretKey, WrongPassphrase
from pstkit.seal.pack import tar_header

needs_age = pytest.mark.skipif(shutil.which("age") is None, reason="Debian's age not installed")
needs_minisign = pytest.mark.skipif(
    shutil.which("minisign") is None, reason="minisign not installed"
)
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5, 1_000_003]


def encrypt(data: bytes, recipients: list[object], piece: int = 7777) -> bytes:
    out = io.BytesIO()
    enc = Encryptor(out, recipients)  # type: ignore[arg-type]
    view = memoryview(data)
    for i in range(0, len(data), piece):  # odd write sizes cross chunk borders
        enc.write(view[i : i + piece])
    enc.close()
    return out.getvalue()


def decrypt(blob: bytes, identities: list[object]) -> bytes:
    dec = Decryptor(io.BytesIO(blob), identities)  # type: ignore[arg-type]
    parts = []
    while part := dec.read(10240):
        parts.append(part)
    return b"".join(parts)


@pytest.fixture(scope="module")
def identity() -> X25519Identity:
    return X25519Identity.generate()


@needs_age
@pytest.mark.parametrize("size", SIZES)
def test_debian_age_decrypts_ours_and_we_decrypt_its(
    tmp_path: Path, identity: X25519Identity, size: int
) -> None:
    data = random.Random(size).randbytes(size)
    (tmp_path / "id").write_text(identity.text() + "\n")
    (tmp_path / "ours.age").write_bytes(encrypt(data, [identity.recipient()]))
    done = subprocess.run(
        ["age", "-d", "-i", tmp_path / "id", tmp_path / "ours.age"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == data
    theirs = subprocess.run(
        ["age", "-e", "-r", identity.recipient().text()],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    assert decrypt(theirs, [identity]) == data


@needs_age
def test_age_keygen_identity_and_recipient_read_as_age_writes_them(tmp_path: Path) -> None:
    subprocess.run(["age-keygen", "-o", tmp_path / "k"], capture_output=True, check=True)
    secret = next(ln for ln in (tmp_path / "k").read_text().splitlines() if ln.startswith("AGE-"))
    public = subprocess.run(
        ["age-keygen", "-y", tmp_path / "k"], capture_output=True, text=True, check=True
    ).stdout.strip()
    ident = X25519Identity.parse(secret)
    assert ident.recipient().text() == public
    assert ident.text() == secret
    assert X25519Recipient.parse(public).public == ident.recipient().public


def _age_with_passphrase(args: list[str], passphrase: str) -> tuple[int, bytes]:
    """age reads passphrases from its terminal only: give it one."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvp(args[0], args)
    out = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"passphrase" in out.lower():
            os.write(fd, passphrase.encode() + b"\n")
            sent = True
    return os.waitpid(pid, 0)[1], out


@needs_age
def test_debian_age_decrypts_our_passphrase_file(tmp_path: Path) -> None:
    data = b"sealed with a passphrase\n" * 100
    (tmp_path / "p.age").write_bytes(encrypt(data, [ScryptRecipient("correct horse", 12)]))
    status, _ = _age_with_passphrase(
        ["age", "-d", "-o", str(tmp_path / "out"), str(tmp_path / "p.age")], "correct horse"
    )
    assert status == 0
    assert (tmp_path / "out").read_bytes() == data


def test_wrong_key_or_passphrase_is_no_match_not_damage(identity: X25519Identity) -> None:
    blob = encrypt(b"x" * 100, [identity.recipient()])
    with pytest.raises(NoIdentityMatch):
        decrypt(blob, [X25519Identity.generate()])
    blob = encrypt(b"x" * 100, [ScryptRecipient("right", 10)])
    with pytest.raises(NoIdentityMatch):
        decrypt(blob, [ScryptIdentity("wrong")])
    assert decrypt(blob, [ScryptIdentity("right")]) == b"x" * 100


def test_passphrase_cannot_join_other_recipients(identity: X25519Identity) -> None:
    with pytest.raises(AgeError, match="passphrase"):
        Encryptor(io.BytesIO(), [identity.recipient(), ScryptRecipient("pw", 10)])


@pytest.mark.parametrize("where", ["header", "mac", "nonce", "first", "last", "truncate", "append"])
def test_any_change_to_a_file_fails_authentication(identity: X25519Identity, where: str) -> None:
    data = random.Random(1).randbytes(3 * CHUNK + 100)
    blob = bytearray(encrypt(data, [identity.recipient()]))
    head = blob.index(b"\n--- ") + 1
    body = blob.index(b"\n", head) + 1
    if where == "truncate":
        del blob[-1]
    elif where == "append":
        blob += b"\0"
    else:
        pos = {
            "header": 30,
            "mac": head + 6,
            "nonce": body + 3,
            "first": body + 40,
            "last": len(blob) - 5,
        }[where]
        blob[pos] ^= 0x01
    with pytest.raises(AgeError):
        decrypt(bytes(blob), [identity])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 399))
def test_header_parser_raises_only_its_own_error(noise: bytes, cut: int) -> None:
    stanza = b"-> X25519 " + noise[:43].hex().encode()[:43] + b"\n" + noise[43:] + b"\n--- x\n"
    for text in (noise, b"age-encryption.org/v1\n" + noise, b"age-encryption.org/v1\n" + stanza):
        data = text[: cut or None]
        try:
            stanzas, mac_input, _, length = parse_header(data)
        except AgeError:
            continue
        assert mac_input.endswith(b"---") and length <= len(data)
        assert all(s.type for s in stanzas)


def test_seeded_mutations_of_a_real_file_fail_cleanly(identity: X25519Identity) -> None:
    rng = random.Random(20)
    blob = encrypt(rng.randbytes(2 * CHUNK + 10), [identity.recipient()])
    for _ in range(200):
        mutated = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if mutated == blob:
            continue
        with pytest.raises(AgeError):
            decrypt(bytes(mutated), [identity])


@given(st.binary(min_size=1, max_size=64))
def test_bech32_round_trip(data: bytes) -> None:
    assert bech32.decode(bech32.encode("age", data)) == ("age", data)


@given(st.text(max_size=80))
def test_bech32_decode_raises_only_its_own_error(text: str) -> None:
    try:
        hrp, data = bech32.decode(text)
    except bech32.Bech32Error:
        return
    assert bech32.encode(hrp, data) == text.lower()


# --- minisign ---------------------------------------------------------------------


@needs_minisign
def test_debian_minisign_verifies_our_signature_and_we_verify_its(tmp_path: Path) -> None:
    key = SecretKey.generate()
    (tmp_path / "sign.pub").write_text(key.public_key.text())
    (tmp_path / "sign.key").write_text(key.text())
    (tmp_path / "m").write_bytes(b"the manifest\n")
    (tmp_path / "m.minisig").write_text(key.sign(b"the manifest\n", "bundle:1").text())
    done = subprocess.run(
        ["minisign", "-V", "-p", tmp_path / "sign.pub", "-m", tmp_path / "m"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Trusted comment: bundle:1" in done.stdout
    subprocess.run(
        [
            "minisign",
            "-S",
            "-s",
            tmp_path / "sign.key",
            "-m",
            tmp_path / "m",
            "-x",
            tmp_path / "theirs.minisig",
            "-t",
            "from minisign",
        ],
        capture_output=True,
        check=True,
        input=b"",
    )
    comment = key.public_key.verify(b"the manifest\n", (tmp_path / "theirs.minisig").read_text())
    assert comment == "from minisign"


@needs_minisign
def test_minisign_generated_unencrypted_key_signs_for_us(tmp_path: Path) -> None:
    subprocess.run(
        ["minisign", "-G", "-W", "-p", tmp_path / "g.pub", "-s", tmp_path / "g.key"],
        capture_output=True,
        check=True,
    )
    key = SecretKey.parse((tmp_path / "g.key").read_text())
    assert key.public_key == PublicKey.parse((tmp_path / "g.pub").read_text())
    (tmp_path / "m").write_bytes(b"data")
    (tmp_path / "m.minisig").write_text(key.sign(b"data", "x").text())
    subprocess.run(
        ["minisign", "-V", "-p", tmp_path / "g.pub", "-m", tmp_path / "m"],
        capture_output=True,
        check=True,
    )


@needs_minisign
def test_our_passphrase_key_opens_in_minisign_and_refuses_a_wrong_passphrase(
    tmp_path: Path,
) -> None:
    key = SecretKey.generate()
    text = key.text("s3cret")
    (tmp_path / "e.key").write_text(text)
    (tmp_path / "e.pub").write_text(key.public_key.text())
    (tmp_path / "m").write_bytes(b"data")
    subprocess.run(
        ["minisign", "-S", "-s", tmp_path / "e.key", "-m", tmp_path / "m"],
        input=b"s3cret\n",
        capture_output=True,
        check=True,
    )
    key.public_key.verify(b"data", (tmp_path / "m.minisig").read_text())
    with pytest.raises(WrongPassphrase):
        SecretKey.parse(text, "wrong")
    assert SecretKey.parse(text, "s3cret") == key


def test_signature_by_another_key_or_of_other_data_is_refused() -> None:
    key, other = SecretKey.generate(), SecretKey.generate()
    sig = key.sign(b"data", "c").text()
    with pytest.raises(MinisignError, match="not by the trusted key"):
        other.public_key.verify(b"data", sig)
    with pytest.raises(MinisignError, match="does not match"):
        key.public_key.verify(b"datA", sig)
    forged = sig.replace("trusted comment: c", "trusted comment: d")
    with pytest.raises(MinisignError, match="does not match"):
        key.public_key.verify(b"data", forged)


@pytest.mark.parametrize("length", [1, 40, 98, 99, 100, 101, 150, 160, 250, 251, 300])
@pytest.mark.parametrize("char", ["a", "é", "日"])
def test_tar_headers_read_back_by_tarfile(length: int, char: str) -> None:
    name = "mail/" + "/".join(char * 60 for _ in range(3))[:length] + "/cur/" + "f" * 32 + "!2,S"
    data = b"message\n" * 7
    stream = tar_header(name, "file", len(data), 1_700_000_000) + data
    stream += bytes(-len(stream) % 512) + tar_header("mail/.x", "dir", 0, 0) + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
        first, second = tar.getmembers()
        assert (first.name, first.size, first.mtime, first.isfile()) == (
            name,
            len(data),
            1_700_000_000,
            True,
        )
        assert tar.extractfile(first).read() == data  # type: ignore[union-attr]
        assert (second.name, second.isdir()) == ("mail/.x", True)
