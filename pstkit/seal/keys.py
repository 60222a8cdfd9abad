"""Key files: `pstkit keygen` writes them, the other commands read them by path.

    identity.age    the age X25519 identity, as age-keygen writes it (0600)
    recipient.txt   its public recipient, age1…
    sign.key        the minisign secret key (0600; scrypt-encrypted with a passphrase)
    sign.pub        the minisign public key

Keys are never taken from argv: only a recipient (public) may be given there.
A passphrase comes through a `SecretSpec` (prompt, environment, file, command).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pstkit.errors import SecretError
from pstkit.options import SecretSpec
from pstkit.seal.age import AgeError, X25519Identity, X25519Recipient
from pstkit.seal.errors import DecryptionFailed, KeyFileError
from pstkit.seal.minisign import MinisignError, PublicKey, SecretKey, WrongPassphrase
from pstkit.secrets import resolve_secret

IDENTITY = "identity.age"
RECIPIENT = "recipient.txt"
SIGN_KEY = "sign.key"
SIGN_PUB = "sign.pub"


@dataclass(frozen=True)
class KeyPair:
    """What `keygen` made: the paths and the two public halves."""

    directory: Path
    recipient: str
    sign_pub: str  # base64, as `minisign -P` takes it
    key_id: str


def keygen(directory: Path, sign_passphrase: str | None = None) -> KeyPair:
    """Write the four key files; never overwrites an existing one."""
    names = (IDENTITY, RECIPIENT, SIGN_KEY, SIGN_PUB)
    for name in names:
        if (directory / name).exists():
            raise KeyFileError(directory / name, "exists; keygen never overwrites keys")
    identity = X25519Identity.generate()
    signer = SecretKey.generate()
    recipient = identity.recipient().text()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write(directory / IDENTITY, f"# created: {created}\n# public key: {recipient}\n"
               f"{identity.text()}\n", secret=True)  # fmt: skip
        _write(directory / RECIPIENT, recipient + "\n", secret=False)
        _write(directory / SIGN_KEY, signer.text(sign_passphrase), secret=True)
        _write(directory / SIGN_PUB, signer.public_key.text(), secret=False)
    except OSError as e:
        raise KeyFileError(directory, e.strerror or str(e)) from e
    pub = signer.public_key
    return KeyPair(directory, recipient, pub.base64(), pub.text().split()[-2])


def _write(path: Path, text: str, secret: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


# How a secret key's text begins: an age identity, a minisign secret key (its
# comment line, its base64 unencrypted or scrypt-encrypted), upper-cased.
SECRET_TEXT = ("AGE-SECRET-KEY-", "MINISIGN SECRET KEY", "RWQAAEIY", "RWRTY0IY")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFileError(_named(path), getattr(e, "strerror", None) or str(e)) from e


def _named(path: Path) -> str:
    """How an unreadable key file is named in the error: a key's text pasted where
    its path belongs is not repeated (stderr reaches scrollback, cron mail, CI logs)."""
    if any(mark in str(path).upper() for mark in SECRET_TEXT):
        return "(a secret key's text, given where its file's path belongs)"
    return str(path)


def load_identities(path: Path) -> list[X25519Identity]:
    """The identities of an age identity file (age-keygen's format)."""
    lines = [ln.strip() for ln in _read(path).splitlines()]
    keys = [ln for ln in lines if ln and not ln.startswith("#")]
    if not keys:
        raise KeyFileError(path, "holds no AGE-SECRET-KEY-1… line")
    try:
        return [X25519Identity.parse(k) for k in keys]
    except AgeError as e:
        raise KeyFileError(path, str(e)) from e


def parse_recipients(values: list[str]) -> list[X25519Recipient]:
    """`age1…` strings, or paths of files listing them (like `age -R`)."""
    out = []
    for value in values:
        if value.strip().startswith("age1"):
            texts, where = [value], "--recipient"
        else:
            lines = _read(Path(value)).splitlines()
            texts = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
            where = value
        for text in texts:
            try:
                out.append(X25519Recipient.parse(text))
            except AgeError as e:
                raise KeyFileError(where, str(e)) from e
    return out


def load_sign_key(path: Path, passphrase: SecretSpec) -> SecretKey:
    text = _read(path)
    where = f"${passphrase.env}" if passphrase.env else "the environment"
    hint = f"give sign.key's passphrase in {where}, a --sign-passphrase-file, or at a prompt"
    try:
        secret = resolve_secret(passphrase) if SecretKey.is_encrypted(text) else None
        return SecretKey.parse(text, secret)
    except SecretError as e:
        raise SecretError(e.args[0], hint=hint) from e
    except WrongPassphrase as e:
        raise DecryptionFailed(path, "wrong passphrase", hint=hint) from e
    except MinisignError as e:
        raise KeyFileError(path, str(e)) from e


def load_trusted(path: Path) -> PublicKey:
    try:
        return PublicKey.parse(_read(path))
    except MinisignError as e:
        raise KeyFileError(path, str(e)) from e
