"""Sealed bundles on the command line: keygen, seal, unseal, and the bundle
paths of check, import and export (`--seal`).

Keys are read from files given by path; passphrases from an environment
variable, a file or a prompt, never from argv.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pstkit.cli.app import app, env_of
from pstkit.cli.env import Env, TqdmProgress, print_json
from pstkit.cli.opts import parse_size
from pstkit.cli.report import print_run, run_dict
from pstkit.cli.sealopts import (  # the commands' option types (typer reads these globals)
    Description,
    IdentityOpt,
    PassphraseFile,
    PassphraseFlag,
    RecipientOpt,
    SignKeyOpt,
    SignPassphraseFile,
    TrustOpt,
    VolumeSize,
)
from pstkit.errors import EXIT_INTEGRITY, EXIT_OK, SecretError, UsageError
from pstkit.options import SecretSpec
from pstkit.runs import RunResult
from pstkit.seal import require
from pstkit.secrets import resolve_secret
from pstkit.store import Store

if TYPE_CHECKING:  # the commands import pstkit.seal (and cryptography) when they run
    from pstkit.seal.age import Identity, Recipient
    from pstkit.seal.minisign import PublicKey, SecretKey
    from pstkit.seal.opening import BundleReport
    from pstkit.seal.pack import Index
    from pstkit.seal.seal import SealResult

log = logging.getLogger("pstkit")
PASSPHRASE_ENV = "PSTKIT_PASSPHRASE"
SIGN_PASSPHRASE_ENV = "PSTKIT_SIGN_PASSPHRASE"


def is_bundle(text: str) -> bool:
    from pstkit.seal.bundle import MANIFEST
    return (Path(text).expanduser() / MANIFEST).is_file()


def _secret(env_name: str, file: Path | None, label: str) -> str:
    spec = SecretSpec(env=env_name, file=file, prompt=True, label=label)
    try:
        return resolve_secret(spec)
    except SecretError as e:
        raise SecretError(
            e.args[0], hint=f"set ${env_name}, give a --…-file, or run on a terminal"
        ) from e


def _new_secret(env_name: str, file: Path | None, label: str) -> str:
    """A passphrase that protects something new (a bundle, a sign.key): an empty
    one protects nothing (anyone can try it), and an empty variable or file is
    mostly a mistake (a misspelt `$PW` in a script), so it is refused. Reading
    keeps accepting it: what was made with it must still open."""
    secret = _secret(env_name, file, label)
    if not secret:
        raise SecretError(f"the {label} is empty",
                          hint=f"set ${env_name} or give a --…-file that holds a passphrase")  # fmt: skip
    return secret


# --- keygen -------------------------------------------------------------------------


@app.command("keygen")
def keygen_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory for identity.age, recipient.txt, sign.key, sign.pub.")],
    passphrase: Annotated[bool, typer.Option("--passphrase", help="Encrypt sign.key with a passphrase ($PSTKIT_SIGN_PASSPHRASE, --passphrase-file or a prompt).")] = False,
    passphrase_file: Annotated[Path | None, typer.Option(help="File holding sign.key's new passphrase.")] = None,
) -> int:  # fmt: skip
    """Make an age identity (encryption) and a minisign key (signing); print the public halves."""
    from pstkit.seal.keys import keygen

    require()
    env = env_of(ctx)
    secret = (
        _new_secret(SIGN_PASSPHRASE_ENV, passphrase_file, "sign.key passphrase")
        if passphrase
        else None
    )
    pair = keygen(out.expanduser(), secret)
    if env.json:
        print_json(env, {"directory": str(pair.directory), "recipient": pair.recipient,
                         "sign_pub": pair.sign_pub, "key_id": pair.key_id})  # fmt: skip
    else:
        env.out(f"recipient (give to whoever seals for you): {pair.recipient}")
        env.out(f"signing key {pair.key_id} (give sign.pub to whoever checks): {pair.sign_pub}")
        env.out(f"keys in {pair.directory}: identity.age and sign.key are secret (0600)")
    return EXIT_OK


# --- seal ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SealPlan:
    recipients: list[Recipient]
    signer: SecretKey
    description: str
    volume_size: int


def seal_plan(
    recipient: list[str] | None, passphrase: bool, passphrase_file: Path | None,
    sign_key: Path | None, sign_passphrase_file: Path | None, description: str,
    volume_size: str,
) -> SealPlan:  # fmt: skip
    """Recipients, signer and sizes, loaded before anything is read or written."""
    from pstkit.seal.age import ScryptRecipient
    from pstkit.seal.keys import load_sign_key, parse_recipients

    require()
    size = volume_bytes(volume_size)
    if sign_key is None:
        raise UsageError("sealing needs --sign-key sign.key (the manifest is always signed)")
    if passphrase and recipient:
        raise UsageError("age allows a passphrase or recipients in a file, not both")
    if not passphrase and not recipient:
        raise UsageError("sealing needs --recipient age1… (or --passphrase)")
    signer = load_sign_key(sign_key.expanduser(), SecretSpec(
        env=SIGN_PASSPHRASE_ENV, file=sign_passphrase_file, label="sign.key passphrase"))  # fmt: skip
    if passphrase:
        secret = _new_secret(PASSPHRASE_ENV, passphrase_file, "bundle passphrase")
        return SealPlan([ScryptRecipient(secret)], signer, description, size)
    return SealPlan(list(parse_recipients(recipient or [])), signer, description, size)


def volume_bytes(text: str) -> int:
    from pstkit.seal.pack import DEFAULT_VOLUME, MAX_VOLUME, MIN_VOLUME
    size = parse_size(text)
    if size is None:  # not `or`: 0 is a size out of range, not the default
        size = DEFAULT_VOLUME
    if not MIN_VOLUME <= size <= MAX_VOLUME:
        raise UsageError(f"--volume-size must be between 1M and 3G, not {text}")
    return size


def sealed_dict(result: SealResult, bundle: Path) -> dict[str, object]:
    m = result.manifest
    return {"bundle": m.bundle, "path": str(bundle), "messages": result.messages,
            "bytes": result.plain_bytes, "files": len(m.files), "signer": m.signer,
            "encryption": m.encryption, "size": m.size}  # fmt: skip


def print_sealed(env: Env, result: SealResult, bundle: Path) -> None:
    m = result.manifest
    if env.json:
        print_json(env, sealed_dict(result, bundle))
        return
    env.out(f"sealed {result.messages} messages ({result.plain_bytes / 1e6:.1f} MB) into "
            f"{bundle}: {len(m.files)} data files, {m.size / 1e6:.1f} MB, "
            f"bundle {m.bundle}, signed by {m.signer}")  # fmt: skip


@app.command("seal")
def seal_cmd(
    ctx: typer.Context,
    store: Annotated[Path, typer.Argument(help="The store to seal.")],
    bundle: Annotated[Path, typer.Argument(help="New (or empty) directory for the bundle, e.g. on a USB disk.")],
    recipient: RecipientOpt = None, passphrase: PassphraseFlag = False,
    passphrase_file: PassphraseFile = None, sign_key: SignKeyOpt = None,
    sign_passphrase_file: SignPassphraseFile = None, description: Description = "",
    volume_size: VolumeSize = "1G",
    read_data: Annotated[bool, typer.Option(help="Also hash every message against the catalog while sealing (else sizes are checked here and SHA-256 at unseal/import).")] = False,
) -> int:  # fmt: skip
    """Encrypt and sign a store into a bundle for removable media (only ciphertext is written)."""
    from pstkit.seal.resume import default_journal
    from pstkit.seal.seal import seal

    env = env_of(ctx)
    plan = seal_plan(recipient, passphrase, passphrase_file, sign_key, sign_passphrase_file,
                     description, volume_size)  # fmt: skip
    with Store.open(store.expanduser(), writable=True, command="seal") as st:
        result = seal(st, bundle.expanduser(), plan.recipients, plan.signer, plan.description,
                      plan.volume_size, TqdmProgress(env), read_data,
                      journal=default_journal(bundle.expanduser()))  # fmt: skip
    print_sealed(env, result, bundle)
    return EXIT_OK


# --- opening ------------------------------------------------------------------------


def _trusted(trust: Path | None, identity: Path | None) -> PublicKey:
    from pstkit.seal.keys import SIGN_PUB, load_trusted

    require()  # every way into a bundle starts here
    if trust is None and identity is not None and (identity.parent / SIGN_PUB).is_file():
        trust = identity.parent / SIGN_PUB
    if trust is None:
        raise UsageError("give --trust sign.pub: pstkit opens only bundles it can verify")
    return load_trusted(trust.expanduser())


def _unverified_encryption(bundle: Path) -> str:
    """Which key to ask for; read before verification, but only to choose a prompt."""
    from pstkit.seal.bundle import MANIFEST
    try:
        return str(json.loads((bundle / MANIFEST).read_bytes()).get("encryption", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def bundle_identities(
    bundle: Path, identity: Path | None, passphrase_file: Path | None
) -> list[Identity]:
    from pstkit.seal.age import ScryptIdentity
    from pstkit.seal.keys import load_identities
    if _unverified_encryption(bundle) == "scrypt":
        return [ScryptIdentity(_secret(PASSPHRASE_ENV, passphrase_file, "bundle passphrase"))]
    if identity is None:
        raise UsageError("this bundle is sealed to age recipients: give --identity identity.age")
    return list(load_identities(identity.expanduser()))


@app.command("unseal")
def unseal_cmd(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="The bundle (a directory with manifest.json).")],
    store: Annotated[Path, typer.Argument(help="New (or empty) directory for the store.")],
    identity: IdentityOpt = None, trust: TrustOpt = None,
    passphrase_file: PassphraseFile = None,
) -> int:  # fmt: skip
    """Verify a bundle's signature and every file, then decrypt it into a store."""
    from pstkit.seal.opening import unseal

    require()
    env = env_of(ctx)
    bundle = bundle.expanduser()
    trusted = _trusted(trust, identity)
    index = unseal(bundle, store.expanduser(), trusted,
                   bundle_identities(bundle, identity, passphrase_file), TqdmProgress(env))  # fmt: skip
    messages = sum(int(str(f.get("messages", 0))) for f in index.folders)
    if env.json:
        print_json(env, {"bundle": index.bundle, "store": str(store), "messages": messages})
    else:
        env.out(f"unsealed bundle {index.bundle} into {store}: {len(index.folders)} folders, "
                f"{messages} messages")  # fmt: skip
    return EXIT_OK


def check_bundle_cmd(env: Env, bundle_text: str, trust: Path | None, identity: Path | None,
                     passphrase_file: Path | None, decrypt: bool) -> int:  # fmt: skip
    """`pstkit check BUNDLE --trust sign.pub [--identity identity.age]`."""
    from pstkit.seal.opening import check_bundle
    bundle = Path(bundle_text).expanduser()
    trusted = _trusted(trust, identity)
    identities = bundle_identities(bundle, identity, passphrase_file) if decrypt else None
    report = check_bundle(bundle, trusted, identities)
    _print_report(env, report)
    return EXIT_INTEGRITY if any(f.damage for f in report.findings) else EXIT_OK


def _print_report(env: Env, report: BundleReport) -> None:
    m, idx = report.manifest, report.index
    if env.json:
        print_json(env, {"bundle": m.bundle, "created": m.created, "source": m.source,
                         "signer": m.signer, "files": len(m.files), "size": m.size,
                         "decrypted": idx is not None,
                         "findings": [f.__dict__ for f in report.findings]})  # fmt: skip
        return
    env.out(f"bundle {m.bundle}, created {m.created}, signed by {m.signer}: {m.source}")
    env.out(f"{len(m.files)} files, {m.size / 1e6:.1f} MB, encryption {m.encryption}")
    if idx is not None:
        env.out(_contents_line(idx))
    for f in report.findings:
        env.out(f"{'DAMAGE' if f.damage else 'warn'}  {f.code:<10} {f.where}  {f.detail}")
    env.out(f"{sum(f.damage for f in report.findings)} damaged")


def _contents_line(index: Index) -> str:
    messages = sum(int(str(f.get("messages", 0))) for f in index.folders)
    return f"holds store {index.store.get('id')}: {len(index.folders)} folders, {messages} messages"


def stage_bundle(env: Env, bundle_text: str, identity: Path | None, trust: Path | None,
                 passphrase_file: Path | None, work_store: Path | None) -> Path:  # fmt: skip
    """`import BUNDLE TARGET`: unseal into a work store on local disk (kept, so the
    import's ledger lets a re-run resume), unless that was done already."""
    from pstkit.seal.opening import check_bundle, unseal
    bundle = Path(bundle_text).expanduser()
    trusted = _trusted(trust, identity)
    manifest_id = _bundle_id(bundle)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pstkit" / "bundles"
    path = work_store or cache / manifest_id
    if (path / "pstkit-store.json").is_file():
        check_bundle(bundle, trusted)  # still refuse a bundle that no longer verifies
        log.info("using the store unsealed before at %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    unseal(bundle, path, trusted, bundle_identities(bundle, identity, passphrase_file),
           TqdmProgress(env))  # fmt: skip
    log.warning("unsealed %s into the work store %s (local disk)", bundle, path)
    return path


def drop_bundle_work_store(path: Path, keep: bool, exit_code: int) -> None:
    """After `import BUNDLE`: the plaintext cache goes once the import is complete
    (exit 0). After problems it stays, its ledger lets the re-run resume."""
    if keep or exit_code != 0:
        log.warning("the plain work store stays at %s (delete it when done)", path)
        return
    shutil.rmtree(path)
    log.warning("removed the plain work store %s (--keep-cache keeps it)", path)


def _bundle_id(bundle: Path) -> str:
    from pstkit.seal.bundle import MANIFEST, Manifest
    try:
        return Manifest.from_json((bundle / MANIFEST).read_bytes()).bundle
    except OSError as e:
        raise UsageError(f"cannot read {bundle / MANIFEST}: {e.strerror}") from e


def seal_work_store(source_key: str, work_store: Path | None) -> Path:
    """Where `export --seal` stages the plain store: local disk, never the bundle's."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pstkit" / "seal"
    return work_store or cache / hashlib.sha256(source_key.encode()).hexdigest()[:16]


def export_sealed(
    env: Env, source_key: str, bundle: Path, plan: SealPlan, work_store: Path | None,
    create: Callable[[Path], Store], run: Callable[[Store], RunResult],
) -> int:  # fmt: skip
    """`export SOURCE BUNDLE --seal`: export into a work store on local disk (a
    killed run resumes there), seal it into BUNDLE, then remove the work store."""
    from pstkit.seal.resume import default_journal
    from pstkit.seal.seal import seal
    work = seal_work_store(source_key, work_store)
    log.warning("staging the plain store on local disk in %s; only ciphertext goes to %s",
                work, bundle)  # fmt: skip
    with create(work) as st:
        result = run(st)
        sealed = seal(st, bundle, plan.recipients, plan.signer, plan.description,
                      plan.volume_size, TqdmProgress(env), journal=default_journal(bundle))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    if env.json:
        print_json(env, {**run_dict(result, f"exported from {source_key}"),
                         "sealed": sealed_dict(sealed, bundle)})  # fmt: skip
    else:
        print_run(env, result, f"exported from {source_key} into the work store (removed)")
        print_sealed(env, sealed, bundle)
    return result.exit_code
