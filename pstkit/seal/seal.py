"""`pstkit seal`: a store -> a bundle (encrypted volumes, index, signed manifest).

Writing order: volumes (each temp -> fsync -> rename), the index, the
signature, the manifest last. A directory without a manifest is an unfinished
seal: the next `seal` into it keeps the volumes its local journal vouches for
(resume.py) and clears the rest, or clears all and starts again. Only
ciphertext is written into the bundle; the store is read under its lock, every
message checked against the catalog's SHA-256 on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from pstkit.catalog import now_text
from pstkit.check import check as check_store
from pstkit.errors import IntegrityError
from pstkit.fsutil import fsync_path, try_lock, write_error
from pstkit.runs import NullProgress, Progress
from pstkit.seal import resume
from pstkit.seal.age import Recipient, ScryptRecipient, X25519Recipient
from pstkit.seal.bundle import (
    DATA,
    MANIFEST,
    SIGNATURE,
    TMP_SUFFIX,
    DataFile,
    Manifest,
    trusted_comment,
    write_atomic,
)
from pstkit.seal.child import Feeder, can_fork, keep_freed_heap
from pstkit.seal.errors import BundleError
from pstkit.seal.minisign import SecretKey, key_id_text
from pstkit.seal.pack import (
    DEFAULT_VOLUME,
    Index,
    Member,
    Record,
    TarWriter,
    VolumeWriter,
    encrypt_stream,
    write_age_file,
)
from pstkit.store import CATALOG, MAIL, MARKER, Layout, Store, read_marker

log = logging.getLogger("pstkit")
READ_BLOCK = 8 << 20
PARTIAL_TOP = {DATA, MANIFEST + TMP_SUFFIX, SIGNATURE, SIGNATURE + TMP_SUFFIX}
PARTIAL_DATA = re.compile(r"(\d{5}|index)\.age(\.tmp)?")


@dataclass(frozen=True)
class SealResult:
    manifest: Manifest
    messages: int
    plain_bytes: int  # the store's bytes that went into the bundle
    restarted: bool
    resumed: int = 0  # volumes kept from an interrupted run


class _Entry(NamedTuple):  # a tuple: 5,000 of them are made per 5,000 messages
    path: str
    source: str
    size: int
    sha256: str | None  # from the catalog: checked while streaming
    mtime: int


def seal(
    store: Store, bundle: Path, recipients: Sequence[Recipient], signer: SecretKey,
    description: str = "", volume_size: int = DEFAULT_VOLUME, progress: Progress | None = None,
    read_data: bool = False, *, journal: Path | None = None,
) -> SealResult:  # fmt: skip
    """Seal `store` into `bundle`. Messages go in as they are on disk, their size
    checked and their SHA-256 taken from the catalog (unseal, check --identity and
    import verify them); with `read_data` each is also hashed here first. With a
    `journal` path an interrupted seal into `bundle` resumes (see resume.py)."""
    progress = progress or NullProgress()
    keep_freed_heap()
    with _sealing(bundle):  # one seal at a time into a directory: see _sealing
        top, data = _unfinished(bundle)
        if store.layout is Layout.MBOX:
            _precheck_mbox(store)  # mbox rows are verified by the store's own reader
        if store.layout is not Layout.MAILDIR or not all(isinstance(r, X25519Recipient)
                                                         for r in recipients):  # fmt: skip
            journal = None  # no resume: see resume.py
        bundle_id, clock, kept = _resumable(store, bundle, recipients, volume_size, journal, top)
        restarted = _clear(bundle, top, data, {f.name.rsplit("/", 1)[-1] for f, _ in kept})
        dirs, entries = _plan(store, clock)
        volumes = _encryptor(bundle / DATA, recipients, volume_size, [f for f, _ in kept],
                             resume.recorder(journal))  # fmt: skip
        skip = sum(plain for _, plain in kept)
        try:
            out = resume.Skipping(volumes, skip) if skip else volumes
            members = _stream(TarWriter(out), dirs, entries, progress, read_data, clock)
        except BaseException as e:
            volumes.abort()
            if isinstance(e, IntegrityError):
                # A message is found damaged at its end, its bytes already in the
                # stream: volumes finished and journaled may hold them, and a re-run
                # after the repair (the catalog unchanged) would keep them.
                resume.remove(journal)
            raise
        files: list[DataFile] = volumes.close()
        index = Index(bundle_id, read_marker(store.root), tuple(f.name for f in files),
                      tuple(members), tuple(_folders(store)))  # fmt: skip
        index_file = write_age_file(bundle / DATA, "index.age", index.to_json(), recipients)
        fsync_path(bundle / DATA)
        encryption = "scrypt" if isinstance(recipients[0], ScryptRecipient) else "x25519"
        manifest = Manifest(
            bundle_id, now_text(), description or f"pstkit store {store.id}",
            key_id_text(signer.key_id), encryption, (index_file, *files),
        )  # fmt: skip
        _sign(bundle, manifest, signer)
        resume.remove(journal)
        plain = sum(e.size for e in entries)
        # The catalog's rows, not the entries: an mbox store's entries are its mbox
        # files (no per-message SHA-256), which counted as 0 messages sealed.
        messages = sum(n for n, _ in store.catalog.counts().values())
        return SealResult(manifest, messages, plain, restarted and not kept, len(kept))


@contextlib.contextmanager
def _sealing(bundle: Path) -> Iterator[None]:
    """An exclusive flock on the bundle directory for the run. Two seals into one
    directory at once (a second terminal, a retried script) each took the other's
    volumes for an interrupted seal's and cleared them: one crashed, the other
    reported a bundle with volumes missing, exit 0. A flock ends with its process
    (kill -9 too: no stale lock) and puts no file into the bundle."""
    if bundle.exists() and not bundle.is_dir():
        raise BundleError(f"{bundle} is not a directory")
    try:  # a write-protected stick, a path under a file: one line, not a traceback
        bundle.mkdir(parents=True, exist_ok=True)
        fd = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise write_error(bundle, e) from e
    try:
        if not try_lock(fd):
            raise BundleError(f"{bundle} is being sealed by another pstkit run")
        yield
    finally:
        os.close(fd)


def _resumable(
    store: Store, bundle: Path, recipients: Sequence[Recipient], limit: int,
    journal: Path | None, top: list[str],
) -> tuple[str, int, list[tuple[DataFile, int]]]:  # fmt: skip
    """(bundle id, clock, volumes kept) for this run; a new id and clock and no
    volumes unless the journal of an interrupted seal of the same plan vouches
    for them. A new journal is started either way."""
    previous = resume.load(journal) if journal is not None and top else None
    if journal is None:
        return str(uuid.uuid4()), int(time.time()), []
    dirs, entries = _plan(store, 0)  # the plan without the clock
    keys = sorted(r.text() for r in recipients if isinstance(r, X25519Recipient))
    parts = [limit, keys, dirs, [list(e) for e in entries]]
    plan = resume.plan_digest([store.root / MARKER, store.root / CATALOG], parts)
    kept = resume.reusable(bundle, previous, plan, limit)
    if previous is not None and kept:
        bundle_id, clock = previous.bundle, previous.clock
    else:
        bundle_id, clock = str(uuid.uuid4()), int(time.time())
    resume.start(journal, bundle_id, plan, clock, kept)
    return bundle_id, clock, kept


def _unfinished(bundle: Path) -> tuple[list[str], list[str]]:
    """What an unfinished seal left in `bundle` (top level, data/); refused if
    `bundle` is finished or holds anything else."""
    if (bundle / MANIFEST).exists():
        raise BundleError(f"{bundle} already holds a sealed bundle; seal into a new directory")
    if bundle.exists() and not bundle.is_dir():
        raise BundleError(f"{bundle} is not a directory")
    top = sorted(p.name for p in bundle.iterdir()) if bundle.exists() else []
    data = sorted(p.name for p in (bundle / DATA).iterdir()) if (bundle / DATA).is_dir() else []
    if not set(top) <= PARTIAL_TOP or not all(PARTIAL_DATA.fullmatch(n) for n in data):
        raise BundleError(f"{bundle} is not empty and not an unfinished bundle")
    return top, data


def _clear(bundle: Path, top: list[str], data: list[str], keep: set[str]) -> bool:
    """Remove what an unfinished seal left, except the volumes kept; True if
    there was such a seal."""
    if top:
        if keep:
            log.warning("%s: resuming an interrupted seal (%d volumes kept)", bundle, len(keep))
        else:
            log.warning("%s: clearing an interrupted seal and starting again", bundle)
    try:  # a stick turned read-only (FAT does on an error): one line, not a traceback
        for name in data if top else []:
            if name not in keep:
                (bundle / DATA / name).unlink()
        for name in top:
            if name != DATA:
                (bundle / name).unlink()
        (bundle / DATA).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(bundle, e) from e
    return bool(top)


def _precheck_mbox(store: Store) -> None:
    damage = [f for f in check_store(store, read_data=True) if f.damage]
    if damage:
        raise IntegrityError(f"{damage[0].where}: {damage[0].detail} (and {len(damage) - 1} more)")


def _plan(store: Store, now: int) -> tuple[list[str], list[_Entry]]:
    entries = [_Entry(name, str(store.root / name), (store.root / name).stat().st_size, None, now)
               for name in (MARKER, CATALOG)]  # fmt: skip
    dirs = {MAIL}
    for folder in store.folders():
        base = f"{MAIL}/{folder.dirname}" if folder.dirname else MAIL
        if store.layout is Layout.MAILDIR:
            dirs |= {base, *(f"{base}/{sub}" for sub in ("cur", "new", "tmp"))}
        else:
            source = store.mail / folder.dirname
            entries.append(_Entry(base, str(source), source.stat().st_size, None, now))
        dirs |= {"/".join(base.split("/")[:i]) for i in range(2, base.count("/") + 1)}
    if store.layout is Layout.MAILDIR:
        mail = str(store.mail)
        entries += [_Entry(f"{MAIL}/{file}", f"{mail}/{file}", size, sha, _mtime(received))
                    for file, size, sha, received in store.catalog.files()]  # fmt: skip
    return sorted(dirs), entries


def _mtime(received: str | None) -> int:
    return max(int(datetime.fromisoformat(received).timestamp()), 0) if received else 0


def _encryptor(
    directory: Path, recipients: Sequence[Recipient], limit: int, kept: list[DataFile],
    record: Record | None,
) -> Feeder | VolumeWriter:  # fmt: skip
    """Where the tar stream goes: a child process that encrypts and writes the
    volumes while this one reads and hashes the store (or this process alone)."""
    if can_fork():
        return Feeder(lambda read: encrypt_stream(read, directory, recipients, limit, kept, record))
    return VolumeWriter(directory, recipients, limit, kept, record)


def _stream(tar: TarWriter, dirs: list[str], entries: list[_Entry],
            progress: Progress, read_data: bool, clock: int) -> list[Member]:  # fmt: skip
    """The tar stream: directories, then every file, checked against the catalog."""
    members = [_dir(tar, d, clock) for d in dirs]
    progress.start("sealing", len(entries))
    for entry in entries:
        trusted = entry.sha256 is not None and not read_data
        members.append(_spliced(tar, entry) if trusted else _file(tar, entry))
        progress.advance(1, entry.size)
    progress.done()
    tar.close()
    return members


def _dir(tar: TarWriter, path: str, clock: int) -> Member:
    tar.header(path, "dir", 0, clock)
    return Member(path, "dir", 0, "")


def _file(tar: TarWriter, entry: _Entry) -> Member:
    tar.header(entry.path, "file", entry.size, entry.mtime)
    digest = hashlib.sha256()
    for block in _blocks(entry.source, entry.size):
        digest.update(block)
        tar.data(block)
    tar.end_member(entry.size)
    sha = digest.hexdigest()
    if entry.sha256 is not None and sha != entry.sha256:
        raise IntegrityError(f"{entry.path}: content does not match its SHA-256 in the catalog")
    return Member(entry.path, "file", entry.size, sha)


def _spliced(tar: TarWriter, entry: _Entry) -> Member:
    """A message as it is on disk, of the catalog's size, with the catalog's SHA-256."""
    try:
        fd = os.open(entry.source, os.O_RDONLY)
    except FileNotFoundError as e:
        raise IntegrityError(f"{entry.path}: missing") from e
    try:
        if os.fstat(fd).st_size != entry.size:
            raise IntegrityError(f"{entry.path}: size differs from the catalog")
        tar.header(entry.path, "file", entry.size, entry.mtime)
        if tar.splice(fd, entry.size) != entry.size:
            raise IntegrityError(f"{entry.path}: shorter than the catalog says")
    finally:
        os.close(fd)
    tar.end_member(entry.size)
    assert entry.sha256 is not None
    return Member(entry.path, "file", entry.size, entry.sha256)


def _blocks(path: str, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of `path` (a file that changed size is damage)."""
    try:
        with open(path, "rb") as f:
            left = size
            while left:
                block = f.read(min(left, READ_BLOCK))
                if not block:
                    break
                left -= len(block)
                yield block
            if left or f.read(1):
                raise IntegrityError(f"{path}: size differs from the catalog")
    except FileNotFoundError as e:
        raise IntegrityError(f"{path}: missing") from e


def _folders(store: Store) -> Iterator[dict[str, object]]:
    counts = store.catalog.counts()
    for f in store.folders():
        n, size = counts.get(f.id, (0, 0))
        role = f.info.role.value if f.info.role else None
        yield {"path": list(f.info.path), "role": role, "messages": n, "bytes": size}


def _sign(bundle: Path, manifest: Manifest, signer: SecretKey) -> None:
    raw = manifest.to_json()
    signature = signer.sign(raw, trusted_comment(manifest, int(time.time())))
    write_atomic(bundle / SIGNATURE, signature.text().encode("ascii"))
    write_atomic(bundle / MANIFEST, raw)  # last: its presence means the bundle is complete
