"""minisign keys and signatures (Ed25519), as Debian's `minisign` reads them.

    public key:  "untrusted comment: …\\n" base64("Ed" key_id[8] public_key[32])
    secret key:  "untrusted comment: …\\n" base64("Ed" kdf[2] "B2" salt[32]
                 opslimit[8 LE] memlimit[8 LE] (key_id[8] secret[64] checksum[32])),
                 the last 104 bytes XORed with scrypt(passphrase) when kdf is "Sc";
                 checksum = BLAKE2b-256("Ed" key_id secret)
    signature:   "untrusted comment: …\\n" base64("ED" key_id[8] Ed25519(BLAKE2b-512(file)))
                 "trusted comment: …\\n" base64(Ed25519(signature || trusted comment))

The key id is shown as the hex of its little-endian integer, as minisign does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

try:  # the `seal` extra; without it the commands say so (pstkit.seal.require)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # pragma: no cover
    pass

SIG_ALG = b"Ed"
SIG_ALG_HASHED = b"ED"
KDF_SCRYPT = b"Sc"
KDF_NONE = b"\0\0"
CHK_ALG = b"B2"
# libsodium's scryptsalsa208sha256 "sensitive" limits, minisign's defaults (N=2^20, 1 GiB)
OPSLIMIT = 33554432
MEMLIMIT = 1073741824
MAX_MEMLIMIT = 1 << 31


class MinisignError(ValueError):
    """A malformed key or signature, or one that does not verify."""


class WrongPassphrase(MinisignError):
    """The secret key's checksum fails after decryption."""


def key_id_text(key_id: bytes) -> str:
    return key_id[::-1].hex().upper()


def _b64line(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise MinisignError(f"{what}: bad base64") from e


def _two_lines(text: str, what: str) -> tuple[str, bytes]:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("untrusted comment:"):
        raise MinisignError(f"{what}: not in minisign format")
    return lines[0], _b64line(lines[1], what)


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        _, raw = _two_lines(text, "public key")
        if len(raw) != 42 or raw[:2] != SIG_ALG:
            raise MinisignError("public key: not an Ed25519 minisign key")
        return cls(raw[2:10], raw[10:])

    def text(self) -> str:
        return (
            f"untrusted comment: minisign public key {key_id_text(self.key_id)}\n{self.base64()}\n"
        )

    def base64(self) -> str:
        return base64.b64encode(SIG_ALG + self.key_id + self.public).decode()

    def verify(self, data: bytes, signature_text: str) -> str:
        """The trusted comment, if `signature_text` signs `data` with this key."""
        sig = Signature.parse(signature_text)
        if sig.key_id != self.key_id:
            raise MinisignError(
                f"signed by key {key_id_text(sig.key_id)}, "
                f"not by the trusted key {key_id_text(self.key_id)}"
            )
        message = hashlib.blake2b(data).digest() if sig.algorithm == SIG_ALG_HASHED else data
        key = Ed25519PublicKey.from_public_bytes(self.public)
        try:
            key.verify(sig.signature, message)
            key.verify(sig.global_signature, sig.signature + sig.trusted_comment.encode())
        except InvalidSignature as e:
            raise MinisignError("signature does not match (content or comment altered)") from e
        return sig.trusted_comment


@dataclass(frozen=True)
class Signature:
    algorithm: bytes
    key_id: bytes
    signature: bytes
    trusted_comment: str
    global_signature: bytes

    @classmethod
    def parse(cls, text: str) -> Signature:
        lines = text.splitlines()
        if len(lines) < 4 or not lines[2].startswith("trusted comment: "):
            raise MinisignError("signature: not in minisign format")
        _, raw = _two_lines("\n".join(lines[:2]), "signature")
        glob = _b64line(lines[3], "signature")
        if len(raw) != 74 or raw[:2] not in (SIG_ALG, SIG_ALG_HASHED) or len(glob) != 64:
            raise MinisignError("signature: not an Ed25519 minisign signature")
        comment = lines[2][len("trusted comment: ") :]
        return cls(raw[:2], raw[2:10], raw[10:], comment, glob)

    def text(self) -> str:
        raw = base64.b64encode(self.algorithm + self.key_id + self.signature).decode()
        glob = base64.b64encode(self.global_signature).decode()
        return (
            "untrusted comment: signature from pstkit secret key\n"
            f"{raw}\ntrusted comment: {self.trusted_comment}\n{glob}\n"
        )


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes  # the Ed25519 private key; libsodium's 64-byte form is seed || public

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(os.urandom(8), Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def public_key(self) -> PublicKey:
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        return PublicKey(self.key_id, key.public_key().public_bytes_raw())

    def sign(self, data: bytes, trusted_comment: str) -> Signature:
        if "\n" in trusted_comment or "\r" in trusted_comment:
            raise MinisignError("a trusted comment is one line")
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        signature = key.sign(hashlib.blake2b(data).digest())
        glob = key.sign(signature + trusted_comment.encode())
        return Signature(SIG_ALG_HASHED, self.key_id, signature, trusted_comment, glob)

    def text(self, passphrase: str | None = None) -> str:
        secret = self.seed + self.public_key.public
        checksum = hashlib.blake2b(SIG_ALG + self.key_id + secret, digest_size=32).digest()
        keynum = self.key_id + secret + checksum
        salt = os.urandom(32)
        kdf = KDF_NONE
        if passphrase is not None:
            kdf = KDF_SCRYPT
            keynum = _xor(keynum, _kdf_stream(passphrase, salt, OPSLIMIT, MEMLIMIT))
        limits = OPSLIMIT.to_bytes(8, "little") + MEMLIMIT.to_bytes(8, "little")
        raw = SIG_ALG + kdf + CHK_ALG + salt + limits + keynum
        comment = "minisign encrypted secret key" if passphrase else "minisign secret key"
        return f"untrusted comment: {comment}\n{base64.b64encode(raw).decode()}\n"

    @staticmethod
    def is_encrypted(text: str) -> bool:
        _, raw = _two_lines(text, "secret key")
        return raw[2:4] == KDF_SCRYPT

    @classmethod
    def parse(cls, text: str, passphrase: str | None = None) -> SecretKey:
        _, raw = _two_lines(text, "secret key")
        if len(raw) != 158 or raw[:2] != SIG_ALG or raw[4:6] != CHK_ALG:
            raise MinisignError("secret key: not an Ed25519 minisign secret key")
        kdf, salt, keynum = raw[2:4], raw[6:38], raw[54:]
        if kdf == KDF_SCRYPT:
            if passphrase is None:
                raise MinisignError("secret key is encrypted and no passphrase was given")
            ops, mem = int.from_bytes(raw[38:46], "little"), int.from_bytes(raw[46:54], "little")
            keynum = _xor(keynum, _kdf_stream(passphrase, salt, ops, mem))
        elif kdf != KDF_NONE:
            raise MinisignError("secret key: unknown key derivation")
        key_id, secret, checksum = keynum[:8], keynum[8:72], keynum[72:]
        expected = hashlib.blake2b(SIG_ALG + key_id + secret, digest_size=32).digest()
        # minisign -W leaves the checksum of an unencrypted key all zero.
        unchecked = kdf == KDF_NONE and checksum == bytes(32)
        if not unchecked and not hmac.compare_digest(expected, checksum):
            if kdf == KDF_SCRYPT:
                raise WrongPassphrase("wrong passphrase for the secret key")
            raise MinisignError("secret key: checksum mismatch (damaged)")
        key = cls(key_id, secret[:32])
        if key.public_key.public != secret[32:]:
            raise MinisignError("secret key: public half does not match")
        return key


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def scrypt_params(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """(log2 N, r, p) for libsodium's scryptsalsa208sha256 limits (its pickparams)."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p = 1
        max_n = opslimit // (r * 4)
        log_n = next(n for n in range(1, 63) if (1 << n) > max_n // 2)
    else:
        max_n = memlimit // (r * 128)
        log_n = next(n for n in range(1, 63) if (1 << n) > max_n // 2)
        max_rp = min((opslimit // 4) // (1 << log_n), 0x3FFFFFFF)
        p = max(max_rp // r, 1)
    return log_n, r, p


def _kdf_stream(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    if memlimit > MAX_MEMLIMIT:
        raise MinisignError("secret key: scrypt memory limit too large")
    log_n, r, p = scrypt_params(opslimit, memlimit)
    return Scrypt(salt=salt, length=104, n=1 << log_n, r=r, p=p).derive(passphrase.encode())
