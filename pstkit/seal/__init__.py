"""Sealed stores: a store packed for removable media, encrypted and signed.

A bundle is checkable without any decryption key (the signed manifest binds
every ciphertext's SHA-256) and openable with standard tools: every data file
is an age file, the manifest's signature is a minisign signature. Format in
README.md ("Sealed stores").

    bech32.py    the Bech32 text form of age keys
    age.py       the age v1 file format (X25519 and scrypt recipients), streaming
    minisign.py  minisign keys and signatures (Ed25519, BLAKE2b-prehashed)
    keys.py      key files: keygen, loading identities, recipients, signing keys
    bundle.py    the bundle's layout and its signed manifest
    pack.py      the store as one tar stream (headers, index), cut into bounded age volumes
    unpack.py    the stream read back: volumes decrypted, tar members held to the index
    child.py     the second process: encrypting (seal) or decrypting (unseal) beside this one
    hashing.py   SHA-256 in a thread beside the streaming (ciphertext; each unsealed file)
    seal.py      store -> bundle
    opening.py   check a bundle, read its index, unseal it into a store
    errors.py    the errors a bundle or a key can raise
"""

from __future__ import annotations

import importlib

from pstkit.errors import MissingDependency


def require() -> None:
    """Sealing needs `cryptography` (the `seal` extra); say so in one line if it is missing."""
    try:
        importlib.import_module("cryptography.hazmat.primitives.ciphers.aead")
    except ImportError as e:
        raise MissingDependency("sealed bundles", "cryptography", "seal") from e
