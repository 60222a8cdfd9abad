"""Passwords of a batch CSV, sealed for the workers (AES-256-GCM).

A broker is read by more people and tools than the CSV (`redis-cli
MONITOR`, backups of its append-only file), so a password crosses it only
sealed with a key the workers get out of band: the same key file on every
machine (`pstkit batch key FILE` makes one; give it to `pstkit worker
--secret-key-file`). Each password is bound to its batch and mailbox
(associated data), so a sealed value cannot be replayed into another row or
batch. The key file holds 32 random bytes, base64-encoded, one line.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from pstkit.errors import MissingDependency, SecretError, UsageError

PREFIX = "aesgcm1:"


def new_key_file(path: Path) -> None:
    """Write a fresh key, readable by its owner only; never overwrite one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists; a key is never overwritten") from None
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(os.urandom(32)).decode("ascii") + "\n")


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        key = base64.b64decode(text, validate=True)
    except (OSError, ValueError) as e:
        raise SecretError(f"secret key file {path}: {getattr(e, 'strerror', None) or e}") from e
    if len(key) != 32:
        raise SecretError(f"secret key file {path}: not a key made by `pstkit batch key`")
    return key


def _aead(key: bytes) -> object:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415
    except ImportError as e:
        raise MissingDependency("sealing batch passwords", "cryptography", "celery") from e
    return AESGCM(key)


def seal(key: bytes, secret: str, context: str) -> str:
    """`secret` -> "aesgcm1:<base64 nonce+ciphertext>", bound to `context`."""
    nonce = os.urandom(12)
    box = _aead(key).encrypt(nonce, secret.encode("utf-8"), context.encode("utf-8"))  # type: ignore[attr-defined]
    return PREFIX + base64.b64encode(nonce + box).decode("ascii")


def unseal(key: bytes, sealed: str, context: str) -> str:
    if not sealed.startswith(PREFIX):
        raise SecretError("a job's password is not sealed (refused: it crossed the broker)")
    try:
        raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
        plain = _aead(key).decrypt(raw[:12], raw[12:], context.encode("utf-8"))  # type: ignore[attr-defined]
    except MissingDependency:
        raise
    except Exception as e:  # InvalidTag and friends: never echo the data
        raise SecretError(
            "cannot unseal a job's password: the worker's --secret-key-file differs "
            "from the submitter's"
        ) from e
    return bytes(plain).decode("utf-8")
