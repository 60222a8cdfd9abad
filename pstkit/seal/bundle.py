"""The bundle on disk and its signed manifest (format in README.md).

    BUNDLE/manifest.json          what is in the bundle: every data file's name, size
                                  and SHA-256 of its ciphertext, bundle id, creation
                                  time, source description, signer key id
    BUNDLE/manifest.json.minisig  minisign signature of manifest.json
    BUNDLE/data/index.age         the encrypted index: store marker, folders, members
    BUNDLE/data/00001.age …       the store as one tar stream, cut into bounded volumes

Everything here works without a decryption key: the manifest and the files'
ciphertexts are all `check --trust` needs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pstkit.check import Finding
from pstkit.fsutil import fsync_path, write_error
from pstkit.seal.errors import BundleDamaged, BundleVersionError, UntrustedSigner

if TYPE_CHECKING:  # minisign imports cryptography: only read_manifest needs it (pstkit
    # import asks whether a path is a bundle, through MANIFEST, on every run)
    from pstkit.seal.minisign import PublicKey

FORMAT_NAME = "pstkit-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.minisig"
DATA = "data"
INDEX = "data/index.age"
TMP_SUFFIX = ".tmp"
READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    name: str  # relative to the bundle, e.g. "data/00001.age"
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    bundle: str
    created: str
    source: str
    signer: str
    encryption: str  # "x25519" or "scrypt"
    files: tuple[DataFile, ...]

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "bundle": self.bundle,
            "created": self.created,
            "source": self.source,
            "signer": self.signer,
            "encryption": self.encryption,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT_NAME:
                raise BundleDamaged("manifest.json is not a pstkit bundle manifest")
            version = data.get("version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise BundleVersionError(version, FORMAT_VERSION)
            files = tuple(
                DataFile(str(f["name"]), int(f["size"]), str(f["sha256"])) for f in data["files"]
            )
            return cls(
                str(data["bundle"]), str(data["created"]), str(data["source"]),
                str(data["signer"]), str(data["encryption"]), files,
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BundleDamaged(f"manifest.json is malformed ({e})") from e

    @property
    def volumes(self) -> list[DataFile]:
        return [f for f in self.files if f.name != INDEX]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def trusted_comment(manifest: Manifest, timestamp: int) -> str:
    return f"timestamp:{timestamp}\tfile:{MANIFEST}\thashed\tbundle:{manifest.bundle}"


def read_manifest(bundle: Path, trusted: PublicKey) -> Manifest:
    """The manifest, only if its signature is by `trusted` (else one clear error)."""
    from pstkit.seal.minisign import MinisignError, key_id_text  # noqa: PLC0415
    try:
        raw = (bundle / MANIFEST).read_bytes()
        signature = (bundle / SIGNATURE).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        what = "manifest" if str(e.filename).endswith(MANIFEST) else "signature"
        raise BundleDamaged(f"{bundle} has no {what} ({Path(e.filename).name})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise BundleDamaged(f"cannot read the manifest of {bundle}: {e}") from e
    try:
        comment = trusted.verify(raw, signature)
    except MinisignError as e:
        raise UntrustedSigner(f"{MANIFEST}: {e}") from e
    manifest = Manifest.from_json(raw)
    if manifest.signer != key_id_text(trusted.key_id):
        raise UntrustedSigner(f"{MANIFEST} names signer {manifest.signer}, signed by another key")
    if f"bundle:{manifest.bundle}" not in comment.split("\t"):
        raise UntrustedSigner(f"{MANIFEST}: the signed comment is for another bundle")
    return manifest


def check_files(
    bundle: Path, manifest: Manifest, read_data: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Finding]:  # fmt: skip
    """Every file of the manifest present, of its size and SHA-256; nothing else."""
    listed = {f.name for f in manifest.files}
    for name in _present(bundle):
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            yield Finding("unknown", name, "not in the signed manifest", True)
    for f in manifest.files:
        path = bundle / f.name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            yield Finding("missing", f.name, "listed in the manifest, not on disk", True)
            continue
        if size != f.size:
            yield Finding("size", f.name, f"{size} bytes, the manifest says {f.size}", True)
            continue
        if read_data and file_sha256(path, progress) != f.sha256:
            yield Finding("digest", f.name, "SHA-256 differs from the signed manifest", True)


def _present(bundle: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(bundle):
        rel = Path(root).relative_to(bundle)
        dirs.sort()
        out += [(rel / name).as_posix() for name in sorted(files)]
    return out


def file_sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """temp -> fsync -> rename -> fsync of the directory."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from e
    fsync_path(path.parent)
