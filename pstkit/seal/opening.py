"""Open a bundle: check it (with or without a key), read its index, unseal it.

Nothing is decrypted before the manifest's signature is verified against the
trusted key. Every volume's ciphertext is hashed while it is read and compared
with the signed manifest before the next one is used; the tar stream must hold
exactly the index's members, in order, with their sizes and SHA-256. An unseal
writes into a hidden sibling directory and renames it into place at the end,
so a store that appears is complete.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pstkit.catalog import Catalog
from pstkit.check import Finding
from pstkit.check import check as check_store
from pstkit.fsutil import fsync_path, sync_tree, try_lock, write_error
from pstkit.runs import NullProgress, Progress
from pstkit.seal import spliced
from pstkit.seal.age import AgeError, Identity
from pstkit.seal.bundle import INDEX, Manifest, check_files, read_manifest
from pstkit.seal.child import can_fork, keep_freed_heap, writev_all
from pstkit.seal.errors import BundleDamaged, UnsealTarget
from pstkit.seal.hashing import BATCH, MemberHashes
from pstkit.seal.minisign import PublicKey
from pstkit.seal.pack import Index, Member
from pstkit.seal.unpack import open_age, walk
from pstkit.store import CATALOG, MAIL, MARKER, Store

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class BundleReport:
    manifest: Manifest
    findings: list[Finding]
    index: Index | None  # with an identity: what the bundle holds


def read_index(bundle: Path, manifest: Manifest, identities: Sequence[Identity]) -> Index:
    entry = next((f for f in manifest.files if f.name == INDEX), None)
    if entry is None:
        raise BundleDamaged(f"the manifest lists no {INDEX}")
    reader, dec = open_age(bundle, entry, identities)
    try:
        raw = dec.read()
    except AgeError as e:
        reader.close()
        raise BundleDamaged(f"{INDEX}: {e}") from e
    reader.finish(entry)
    index = Index.from_json(raw)
    if index.bundle != manifest.bundle:
        raise BundleDamaged(f"{INDEX} belongs to bundle {index.bundle}, not {manifest.bundle}")
    if list(index.volumes) != [f.name for f in manifest.volumes]:
        raise BundleDamaged("the index and the manifest list different volumes")
    return index


def _digest(member: Member, pieces: Iterator[memoryview]) -> None:
    digest, size = hashlib.sha256(), 0
    for piece in pieces:
        digest.update(piece)
        size += len(piece)
    if size != member.size or digest.hexdigest() != member.sha256:
        raise BundleDamaged(f"{member.path}: content differs from the index")


# --- check -------------------------------------------------------------------------


def check_bundle(
    bundle: Path, trusted: PublicKey, identities: Sequence[Identity] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BundleReport:  # fmt: skip
    manifest = read_manifest(bundle, trusted)
    findings = list(check_files(bundle, manifest, True, progress))
    if identities is None or any(f.damage for f in findings):
        return BundleReport(manifest, findings, None)
    index = read_index(bundle, manifest, identities)
    findings += _check_contents(bundle, manifest, index, identities)
    return BundleReport(manifest, findings, index)


def _check_contents(
    bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity]
) -> list[Finding]:
    with tempfile.TemporaryDirectory(prefix="pstkit-check-") as tmp:
        catalog = Path(tmp) / CATALOG

        def visit(member: Member, pieces: Iterator[memoryview] | None) -> None:
            if pieces is None:
                return
            if member.path == CATALOG:
                held = list(pieces)
                with open(os.open(catalog, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                    out.writelines(held)
                pieces = iter(held)
            _digest(member, pieces)

        try:
            walk(bundle, manifest, index, identities, visit)
        except BundleDamaged as e:
            return [Finding("content", "data", e.message.removeprefix("bundle damaged: "), True)]
        return list(_cross_check(catalog, index))


def _cross_check(catalog_path: Path, index: Index) -> Iterator[Finding]:
    """The catalog inside agrees with the files inside (the store's own check)."""
    files = {m.path: m for m in index.members if m.kind == "file"}
    catalog = Catalog(catalog_path)
    try:
        if catalog.integrity_check() != "ok":
            yield Finding("catalog", CATALOG, "SQLite integrity check failed", True)
            return
        referenced = set()
        mbox = index.store.get("layout") == "mbox"
        for file, size, sha256, _ in catalog.files():
            path = f"{MAIL}/{file}"
            referenced.add(path)
            m = files.get(path)
            if m is None:
                yield Finding("missing", path, "a catalog message not in the bundle", True)
            elif not mbox and (m.size != size or m.sha256 != sha256):
                yield Finding("digest", path, "differs from the catalog inside", True)
        for path in files:
            if path.startswith(f"{MAIL}/") and path not in referenced and not mbox:
                yield Finding("orphan", path, "file not in the catalog inside", True)
    finally:
        catalog.close()


# --- unseal --------------------------------------------------------------------------


def unseal(
    bundle: Path, target: Path, trusted: PublicKey, identities: Sequence[Identity],
    progress: Progress | None = None,
) -> Index:  # fmt: skip
    """Write the store inside `bundle` to `target` (new or empty)."""
    progress = progress or NullProgress()
    keep_freed_heap()
    # The store is renamed into place from a sibling: a symlink to an empty
    # directory, or ".", has no sibling to rename over (the rename failed only
    # after the whole bundle was decrypted); the directory it names has.
    target = Path(os.path.realpath(target))
    manifest = read_manifest(bundle, trusted)
    damage = [f for f in check_files(bundle, manifest, read_data=False) if f.damage]
    if damage:
        raise BundleDamaged(f"{damage[0].where}: {damage[0].detail}")
    _refuse_occupied(target)
    index = read_index(bundle, manifest, identities)
    work, lock = _claim_work(target, manifest.bundle)
    try:
        _extract(bundle, manifest, index, identities, work, progress)
        if target.exists():
            target.rmdir()
        os.replace(work, target)
        fsync_path(target.parent)
    except OSError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise write_error(target, e) from e
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        os.close(lock)
    damage = _check_unsealed(target, index)
    if damage:
        raise BundleDamaged(f"the unsealed store: {damage[0].code} {damage[0].where}")
    return index


def _claim_work(target: Path, bundle_id: str) -> tuple[Path, int]:
    """This run's hidden sibling of `target` (its own name) and the fd of its
    flock, held until the run ends. With one shared name, a second unseal into
    the same target removed the first's sibling and wrote its own there, and the
    first then renamed that half-written one into place and exited 0. A sibling
    nobody holds is what a killed run left: removed; one held is a run going on."""
    prefix = f".{target.name}.unseal-{bundle_id[:8]}"
    for old in target.parent.glob(glob.escape(prefix) + "*"):
        try:
            fd = os.open(old, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:  # gone meanwhile, or not a directory: not a run's sibling
            continue
        try:
            if not try_lock(fd):
                raise UnsealTarget(target, "is being unsealed by another pstkit run")
        finally:
            os.close(fd)
        shutil.rmtree(old, ignore_errors=True)
    work = target.parent / f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        work.mkdir(parents=True)
    except OSError as e:
        raise write_error(target, e) from e
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try_lock(fd)  # new and ours: nobody else holds it
    return work, fd


def _refuse_occupied(target: Path) -> None:
    """Named for what is there: a re-run into the store an unseal made is common
    (after a kill just after the rename), and "not a pstkit store" reads as damage."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    if not target.is_dir():
        raise UnsealTarget(target, "is a file, not a directory")
    if (target / MARKER).exists():
        raise UnsealTarget(target, "already holds a pstkit store; unseal writes a new one")
    raise UnsealTarget(target, "is not empty")


def _check_unsealed(target: Path, index: Index) -> list[Finding]:
    """The store's own check, where the extraction did not already do it: every
    file written is one of the index's, of its size and SHA-256, so for a Maildir
    store the catalog held to the index is the catalog held to the disk (without a
    stat and a row object per message). mbox rows (offsets) get the full check."""
    if index.store.get("layout") == "mbox":
        with Store.open(target) as store:
            return [f for f in check_store(store) if f.damage]
    with Store.open(target):  # the marker and the catalog's format
        pass
    return list(_cross_check(target / CATALOG, index))


def _extract(
    bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity],
    work: Path, progress: Progress,
) -> None:  # fmt: skip
    # One process by default: on the shared 2-core machine the two-process way
    # (a child decrypts and checks, this one splices files: spliced.py) was slower
    # in two benchmark runs out of two (issue note 20-unseal.md); it stays, opt-in,
    # for a machine with idle cores.
    if os.environ.get("PSTKIT_UNSEAL_FORK") and can_fork() and hasattr(os, "splice"):
        files, dirs = spliced.extract(bundle, manifest, index, identities, str(work), progress)
    else:
        files, dirs = _extract_here(bundle, manifest, index, identities, work, progress)
    sync_tree(work, files, dirs)


def _extract_here(
    bundle: Path, manifest: Manifest, index: Index, identities: Sequence[Identity],
    work: Path, progress: Progress,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """One process: decrypt, parse and write here, each file's SHA-256 in a thread."""
    writer = _FileWriter()
    dirs: list[str] = [str(work)]
    started: list[bool] = []

    def visit(member: Member, pieces: Iterator[memoryview] | None) -> None:
        if not started:  # after the fork: a progress bar may start a thread
            progress.start("unsealing", len(index.members))
            started.append(True)
        path = f"{work}/{member.path}"  # checked by the index: no "..", not absolute
        if pieces is None:
            os.makedirs(path, exist_ok=True)
            dirs.append(path)
        else:
            writer.write(path, member, pieces)
        progress.advance(1, member.size)

    try:
        walk(bundle, manifest, index, identities, visit, hashed=False, fork=False)  # see walk
    finally:
        failed = writer.hashes.failures()  # every file's SHA-256, before it counts
    if failed:
        raise BundleDamaged(f"{failed[0]}: content differs from the index")
    progress.done()
    return writer.files, dirs


class _FileWriter:
    """Writes the members' files, one writev per megabyte; each file's SHA-256
    is computed in a thread (hashing.py) and held to the index."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.hashes = MemberHashes()

    def write(self, path: str, member: Member, pieces: Iterator[memoryview]) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.files.append(path)
        self.hashes.start()
        try:
            batch: list[memoryview] = []
            size = 0
            for piece in pieces:  # views into immutable bytes: safe in the thread
                batch.append(piece)
                size += len(piece)
                if size >= BATCH:
                    self._put(fd, batch)
                    batch, size = [], 0
            self._put(fd, batch)
        finally:
            os.close(fd)
        self.hashes.end(member.path, member.size, member.sha256)

    def _put(self, fd: int, batch: list[memoryview]) -> None:
        if batch:
            writev_all(fd, batch)
            self.hashes.feed(batch)
