"""The age v1 file format (age-encryption.org/v1), streaming, on `cryptography`.

Why not pyrage (rage's bindings): on this machine it encrypts 3-5x slower than
Go's `age` (portable ChaCha20 without the vector code OpenSSL has), and sealing
must keep up with `tar | age`. `cryptography`'s ChaCha20-Poly1305, X25519,
HKDF, HMAC and scrypt are OpenSSL's; this module only frames them as the age
spec says, and the tests hold it to Debian's `age` in both directions.

    header:  "age-encryption.org/v1\\n", one stanza per recipient
             ("-> X25519 <share>\\n<wrapped file key>\\n" or "-> scrypt <salt> <logN>"),
             "--- <HMAC-SHA256 of the header>\\n"
    payload: a 16-byte nonce, then 64 KiB chunks of ChaCha20-Poly1305 under
             HKDF(file key, nonce, "payload"); the last chunk's nonce ends in 01.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

try:  # the `seal` extra; without it the commands say so (pstkit.seal.require)
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # pragma: no cover
    pass

from pstkit.seal import bech32

INTRO = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024
TAG = 16
X25519_INFO = b"age-encryption.org/v1/X25519"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
SCRYPT_LOG_N = 18  # age's own default work factor (~256 MiB, about a second)
SCRYPT_MAX_LOG_N = 22  # refuse files that would make us spend minutes (as age does)
MAX_HEADER = 1 << 20
ZERO_NONCE = bytes(12)


class AgeError(ValueError):
    """A malformed or altered age file."""


class NoIdentityMatch(AgeError):
    """None of the given identities opens the file (wrong key or passphrase)."""


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class Source(Protocol):
    def read(self, n: int, /) -> bytes: ...


@dataclass(frozen=True)
class Stanza:
    type: str
    args: tuple[str, ...]
    body: bytes


# --- base64 as age writes it: standard alphabet, no padding, canonical --------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError as e:
        raise AgeError(f"bad base64 {text[:20]!r}") from e
    if b64(data) != text:
        raise AgeError("non-canonical base64")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


# --- recipients and identities -------------------------------------------------


class Recipient(Protocol):
    def wrap(self, file_key: bytes) -> Stanza: ...


class Identity(Protocol):
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None: ...


@dataclass(frozen=True)
class X25519Recipient:
    public: bytes

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        try:
            hrp, data = bech32.decode(text.strip())
        except bech32.Bech32Error as e:
            raise AgeError(f"not an age recipient ({e})") from e
        if hrp != "age" or len(data) != 32 or not text.strip().startswith("age1"):
            raise AgeError("not an age X25519 recipient (age1…)")
        return cls(data)

    def text(self) -> str:
        return bech32.encode("age", self.public)

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public))
        key = _hkdf(shared, share + self.public, X25519_INFO)
        body = ChaCha20Poly1305(key).encrypt(ZERO_NONCE, file_key, None)
        return Stanza("X25519", (b64(share),), body)


@dataclass(frozen=True)
class X25519Identity:
    secret: bytes

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        try:
            hrp, data = bech32.decode(text.strip())
        except bech32.Bech32Error as e:
            raise AgeError(f"not an age identity ({e})") from e
        if hrp != "age-secret-key-" or len(data) != 32:
            raise AgeError("not an age X25519 identity (AGE-SECRET-KEY-1…)")
        return cls(data)

    def text(self) -> str:
        return bech32.encode("age-secret-key-", self.secret).upper()

    def recipient(self) -> X25519Recipient:
        key = X25519PrivateKey.from_private_bytes(self.secret)
        return X25519Recipient(key.public_key().public_bytes_raw())

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        key = X25519PrivateKey.from_private_bytes(self.secret)
        mine = self.recipient().public
        for s in stanzas:
            if s.type != "X25519":
                continue
            if len(s.args) != 1 or len(s.body) != 32:
                raise AgeError("malformed X25519 stanza")
            share = unb64(s.args[0])
            if len(share) != 32:
                raise AgeError("malformed X25519 share")
            try:
                shared = key.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError as e:  # a low-order point: all-zero shared secret
                raise AgeError("X25519 share is a low-order point") from e
            wrap_key = _hkdf(shared, share + mine, X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(ZERO_NONCE, s.body, None)
            except InvalidTag:
                continue
        return None


@dataclass(frozen=True)
class ScryptRecipient:
    passphrase: str
    log_n: int = SCRYPT_LOG_N

    def wrap(self, file_key: bytes) -> Stanza:
        salt = os.urandom(16)
        key = _scrypt(self.passphrase, salt, self.log_n)
        body = ChaCha20Poly1305(key).encrypt(ZERO_NONCE, file_key, None)
        return Stanza("scrypt", (b64(salt), str(self.log_n)), body)


@dataclass(frozen=True)
class ScryptIdentity:
    passphrase: str

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        found = [s for s in stanzas if s.type == "scrypt"]
        if not found:
            return None
        if len(stanzas) != 1:
            raise AgeError("an scrypt stanza must be the only one")
        s = found[0]
        if len(s.args) != 2 or len(s.body) != 32 or not s.args[1].isdigit():
            raise AgeError("malformed scrypt stanza")
        salt, log_n = unb64(s.args[0]), int(s.args[1])
        if len(salt) != 16 or str(log_n) != s.args[1] or not 1 <= log_n <= SCRYPT_MAX_LOG_N:
            raise AgeError(f"scrypt work factor {s.args[1]} refused")
        try:
            key = _scrypt(self.passphrase, salt, log_n)
            return ChaCha20Poly1305(key).decrypt(ZERO_NONCE, s.body, None)
        except InvalidTag:
            return None


def _scrypt(passphrase: str, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase.encode("utf-8"))


# --- header ----------------------------------------------------------------------


def _stanza_text(s: Stanza) -> bytes:
    body = b64(s.body)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    if len(body) % 64 == 0:
        lines.append("")  # the body ends at the first line shorter than 64
    return ("-> " + " ".join((s.type, *s.args)) + "\n" + "\n".join(lines) + "\n").encode()


def header_bytes(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    head = INTRO + b"".join(_stanza_text(s) for s in stanzas) + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), head, "sha256").digest()
    return head + b" " + b64(mac).encode() + b"\n"


def parse_header(data: bytes) -> tuple[list[Stanza], bytes, bytes, int]:
    """(stanzas, the MAC'd header bytes, the MAC, length of the header)."""
    if not data.startswith(INTRO):
        raise AgeError("not an age file (no age-encryption.org/v1 header)")
    pos, stanzas = len(INTRO), list[Stanza]()
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise AgeError("truncated header")
        line = data[pos:end].decode("ascii", "replace")
        if line.startswith("--- "):
            return stanzas, data[: pos + 3], unb64(line[4:]), end + 1
        if not line.startswith("-> "):
            raise AgeError("malformed header line")
        args = line[3:].split(" ")
        if not all(args):
            raise AgeError("empty stanza argument")
        body, pos = _read_body(data, end + 1)
        stanzas.append(Stanza(args[0], tuple(args[1:]), body))


def _read_body(data: bytes, pos: int) -> tuple[bytes, int]:
    text = ""
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise AgeError("truncated stanza")
        line = data[pos:end].decode("ascii", "replace")
        if len(line) > 64:
            raise AgeError("stanza body line too long")
        text += line
        pos = end + 1
        if len(line) < 64:
            return unb64(text), pos


# --- payload ---------------------------------------------------------------------


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Encryptor:
    """Writes one age file to `out`: header now, payload as `write` is called.

    The last chunk must be flagged, so one chunk is always held back until more
    data arrives or `close` says there is no more.
    """

    def __init__(self, out: Sink, recipients: Sequence[Recipient]) -> None:
        if not recipients:
            raise AgeError("no recipients")
        file_key = os.urandom(16)
        stanzas = [r.wrap(file_key) for r in recipients]
        if any(s.type == "scrypt" for s in stanzas) and len(stanzas) > 1:
            raise AgeError("a passphrase cannot be combined with other recipients")
        nonce = os.urandom(16)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._out = out
        self._counter = 0
        self._pending = bytearray()
        out.write(header_bytes(stanzas, file_key) + nonce)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt `data`; what is held back is copied, so the caller may reuse
        its buffer at once. Full chunks are encrypted straight from `data`."""
        view = memoryview(data)
        if self._pending:
            need = CHUNK - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if not view:
                return
            self._emit(self._pending, last=False)
            self._pending = bytearray()
        while len(view) > CHUNK:
            self._emit(view[:CHUNK], last=False)
            view = view[CHUNK:]
        self._pending += view

    def _emit(self, chunk: bytes | bytearray | memoryview, last: bool) -> None:
        self._out.write(self._aead.encrypt(_nonce(self._counter, last), chunk, None))
        self._counter += 1

    def close(self) -> None:
        self._emit(self._pending, last=True)
        self._pending = bytearray()


class Decryptor:
    """Reads the plaintext of one age file from `src` (a `read(n)` source)."""

    def __init__(self, src: Source, identities: Sequence[Identity]) -> None:
        head = b""
        while not _header_complete(head):
            more = src.read(4096)
            if not more or len(head) > MAX_HEADER:
                raise AgeError("truncated or oversized header")
            head += more
        stanzas, mac_input, mac, length = parse_header(head)
        file_key = _unwrap(stanzas, identities)
        expected = hmac.new(_hkdf(file_key, b"", b"header"), mac_input, "sha256").digest()
        if not hmac.compare_digest(expected, mac):
            raise AgeError("header MAC mismatch (header altered)")
        rest = head[length:]
        while len(rest) < 16:
            more = src.read(16)
            if not more:
                raise AgeError("truncated payload nonce")
            rest += more
        self._aead = ChaCha20Poly1305(_hkdf(file_key, rest[:16], b"payload"))
        self._src = src
        self._ahead = rest[16:]  # ciphertext read with the header
        self._next: bytes | None = None
        self._counter = 0
        self._done = False
        self._buf, self._pos = b"", 0

    def _read_chunk(self) -> bytes:
        """The next ciphertext chunk, in pieces as the source gives them (no big copies)."""
        size = CHUNK + TAG
        parts = []
        if self._ahead:
            parts.append(self._ahead)
            self._ahead = b""
        have = sum(map(len, parts))
        while have < size:
            more = self._src.read(size - have)
            if not more:
                break
            parts.append(more)
            have += len(more)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if len(data) > size:  # only the header's read can overshoot
            self._ahead = data[size:]
            data = data[:size]
        return data

    def _next_chunk(self) -> None:
        chunk = self._next if self._next is not None else self._read_chunk()
        self._next = self._read_chunk()  # one chunk ahead tells if this one is the last
        last = not self._next
        if len(chunk) < TAG or (last and len(chunk) == TAG and self._counter):
            raise AgeError("truncated payload")
        try:
            self._buf = self._aead.decrypt(_nonce(self._counter, last), chunk, None)
        except InvalidTag as e:
            raise AgeError(f"payload chunk {self._counter} fails authentication") from e
        self._pos = 0
        self._counter += 1
        self._done = last

    def chunks(self) -> Iterator[bytes]:
        """The rest of the plaintext, one decrypted chunk at a time (no copies)."""
        if self._pos < len(self._buf):
            yield self._buf[self._pos :]
        self._pos = len(self._buf)
        while not self._done:
            self._next_chunk()
            self._pos = len(self._buf)
            yield self._buf

    def read(self, n: int = -1) -> bytes:
        parts = []
        while n != 0:
            if self._pos >= len(self._buf):
                if self._done:
                    break
                self._next_chunk()
                continue
            end = len(self._buf) if n < 0 else min(len(self._buf), self._pos + n)
            parts.append(self._buf[self._pos : end])
            n -= 0 if n < 0 else end - self._pos
            self._pos = end
        return b"".join(parts)


def _header_complete(head: bytes) -> bool:
    mac_at = head.find(b"\n--- ")
    return mac_at >= 0 and head.find(b"\n", mac_at + 1) >= 0


def _unwrap(stanzas: Sequence[Stanza], identities: Sequence[Identity]) -> bytes:
    for identity in identities:
        key = identity.unwrap(stanzas)
        if key is not None:
            if len(key) != 16:
                raise AgeError("wrapped file key has the wrong length")
            return key
    raise NoIdentityMatch("no identity matches this file")
