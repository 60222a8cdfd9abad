"""The verbs: folders, export, ls, check, plan, import, verify, unlock."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from pstkit import lock
from pstkit.bwlimit import limiter
from pstkit.cli.app import app, env_of
from pstkit.cli.env import TqdmProgress
from pstkit.cli.opts import (
    Auth,
    CaFile,
    ExportConnections,
    ImportConnections,
    Insecure,
    Opt,
    PasswordCommand,
    PasswordEnv,
    PasswordFile,
    TargetAuth,
    TokenCommand,
    TokenFile,
    connect_options,
    fetch_filter,
    mapping_options,
    pick_connect,
    server_connections,
)
from pstkit.cli.optypes import (
    Broker,
    BwLimit,
    ByRole,
    ClientCert,
    ClientId,
    ClientSecretEnv,
    ClientSecretFile,
    Codepage,
    DeleteAfter,
    Detach,
    Duplicates,
    Engine,
    Exclude,
    Gmail,
    Impersonate,
    Include,
    KeyFile,
    Mailbox,
    Parallel,
    Root,
    Select,
    Subfolders,
    Tenant,
)
from pstkit.cli.pstfiles import (
    MaxSize,
    PurviewCsv,
    print_written,
    pst_opts,
    warn_large,
    written_data,
)
from pstkit.cli.railopts import AddSource, RedeliverMissing, Repair
from pstkit.cli.report import print_folders, print_ls, print_plan, print_run
from pstkit.cli.sealopts import (
    Description,
    IdentityOpt,
    KeepCache,
    PassphraseFile,
    PassphraseFlag,
    RecipientOpt,
    SignKeyOpt,
    SignPassphraseFile,
    TrustOpt,
    VolumeSize,
)
from pstkit.converters import open_sink, open_source
from pstkit.errors import EXIT_INTEGRITY, EXIT_OK, BadLocation, UsageError
from pstkit.location import parse_location, require_user
from pstkit.options import ConnectOptions
from pstkit.pipeline import export as run_export
from pstkit.protocols import KindCounter
from pstkit.rails import removed_if_empty
from pstkit.runs import RunResult
from pstkit.store import LOCK, Layout, Store, read_marker


def _store(text: str, writable: bool = False, command: str = "") -> Store:
    return Store.open(Path(text.removeprefix("store:")).expanduser(), writable, command)


def _source(text: str, options: ConnectOptions) -> Any:
    return open_source(require_user(parse_location(text)), options)


def _sink(text: str, options: ConnectOptions) -> Any:
    try:
        loc = require_user(parse_location(text))
    except BadLocation:
        if Path(text).suffix.lower() == ".pst" and not Path(text).exists():
            # the admin's first try at a new PST: say the one thing that is missing
            raise UsageError(f"{text} does not exist: to write a new PST, "
                             f"name the target pst:{text}") from None
        raise
    if loc.scheme == "store":
        raise UsageError(f"{text} is a pstkit store, not an import target")
    return open_sink(loc, options)


@app.command()
def folders(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="e.g. file.pst, maildir:DIR, imaps://user@host")],
    password_env: PasswordEnv = "PSTKIT_PASSWORD", password_file: PasswordFile = None,
    password_command: PasswordCommand = None, token_file: TokenFile = None,
    token_command: TokenCommand = None, auth: Auth = "auto", ca_file: CaFile = None,
    insecure: Insecure = False, opt: Opt = None, codepage: Codepage = None, gmail: Gmail = None,
    include: Include = None, exclude: Exclude = None,
) -> int:  # fmt: skip
    """List a source's folders with their roles and message counts (per item kind for PSTs).
    With --folder/--exclude: the folders `export` would take with the same options."""
    from pstkit.cli.dryrun import chosen  # noqa: PLC0415 - export needs dryrun only with --dry-run

    env = env_of(ctx)
    src = _source(source, connect_options(**pick_connect(locals())))
    try:
        infos = chosen(src.folders(), include or (), exclude or (), src.key)
        kinds = ({i.path: dict(src.kinds(i)) for i in infos if i.message_count}
                 if isinstance(src, KindCounter) else {})  # fmt: skip
    finally:
        src.close()
    print_folders(env, infos, kinds)
    return EXIT_OK


@app.command()
def export(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="e.g. file.pst, maildir:DIR, mbox:FILE, imaps://user@host (with --batch: the STORE_DIR)")],
    store: Annotated[str | None, typer.Argument(help="Store directory (created if new).")] = None,
    batch: Annotated[Path | None, typer.Option(help="CSV of mailboxes (EmailAddress,UserName,Password[,Server,Port,Security]): one store each under STORE_DIR.")] = None,
    server: Annotated[str | None, typer.Option(help="With --batch: imaps://host[:port] for rows without a Server column.")] = None,
    parallel: Parallel = 2, engine: Engine = "local", broker: Broker = None,
    secret_key_file: KeyFile = None, detach: Detach = False,
    fmt: Annotated[Layout, typer.Option("--format", help="Mail layout of a new store.")] = Layout.MAILDIR,
    include: Include = None, exclude: Exclude = None,
    since: Annotated[str | None, typer.Option(help="Only mail received on/after YYYY-MM-DD.")] = None,
    before: Annotated[str | None, typer.Option(help="Only mail received before YYYY-MM-DD.")] = None,
    max_size: Annotated[str | None, typer.Option(help="Skip (and report) larger messages, e.g. 35MB.")] = None,
    newest_first: Annotated[bool, typer.Option(help="Fetch newest messages first.")] = False,
    password_env: PasswordEnv = "PSTKIT_PASSWORD", password_file: PasswordFile = None,
    password_command: PasswordCommand = None, token_file: TokenFile = None,
    token_command: TokenCommand = None, auth: Auth = "auto", ca_file: CaFile = None,
    insecure: Insecure = False, connections: ExportConnections = None, opt: Opt = None,
    codepage: Codepage = None, gmail: Gmail = None, delete_after_export: DeleteAfter = False,
    bwlimit: BwLimit = None,
    seal: Annotated[bool, typer.Option("--seal", help="STORE is a bundle to seal into: the plain store is staged on local disk (in ~/.cache/pstkit/seal/, or --work-store) and removed after sealing, so only ciphertext reaches STORE's disk.", rich_help_panel="Sealing")] = False,
    recipient: RecipientOpt = None, passphrase: PassphraseFlag = False,
    passphrase_file: PassphraseFile = None, sign_key: SignKeyOpt = None,
    sign_passphrase_file: SignPassphraseFile = None, description: Description = "",
    volume_size: VolumeSize = "1G",
    work_store: Annotated[Path | None, typer.Option(help="With --seal: where to stage the plain store (local disk).", rich_help_panel="Sealing")] = None,
    add_source: AddSource = False, repair: Repair = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the folders and message counts that would be fetched; write nothing, create no store.")] = False,
) -> int:  # fmt: skip
    """Copy mail from SOURCE into STORE (resumable; a re-run fetches only what is new)."""
    env = env_of(ctx)
    connections = server_connections(connections, None if batch is not None else source)
    filt = fetch_filter(include, exclude, since, before, max_size, newest_first)
    limit = limiter(bwlimit)
    if batch is not None and limit is not None:
        raise UsageError("--bwlimit does not apply to --batch runs (yet): limit each mailbox's run")
    if batch is not None and dry_run:
        raise UsageError("--dry-run does not apply to --batch runs (yet): try `pstkit folders`")
    if batch is not None:
        if store is not None:
            raise UsageError("with --batch, give only the directory for the stores")
        from pstkit.batch.csvfiles import export_jobs, read_users  # noqa: PLC0415 - batch only
        from pstkit.batch.engine import new_batch_id  # noqa: PLC0415 - batch runs only
        from pstkit.cli.batchcmds import run_batch_command  # noqa: PLC0415 - batch runs only

        default = parse_location(server) if server else None
        jobs, secrets = export_jobs(read_users(batch, default), Path(source), new_batch_id(),
                                    connect_options(**pick_connect(locals())), filt)  # fmt: skip
        return run_batch_command(env, jobs, secrets, engine, broker, secret_key_file,
                                 parallel, detach)  # fmt: skip
    if store is None:
        raise UsageError("export needs SOURCE and STORE")
    if dry_run:
        from pstkit.cli.dryrun import dry_run as dry_run_export  # noqa: PLC0415 - --dry-run only

        dry_run_export(env, _source(source, connect_options(**pick_connect(locals()))), filt, store)
        return EXIT_OK
    if seal:
        from pstkit.cli.seal import export_sealed, seal_plan  # noqa: PLC0415 - --seal only

        plan = seal_plan(recipient, passphrase, passphrase_file, sign_key, sign_passphrase_file,
                         description, volume_size)  # fmt: skip
        src = _source(source, connect_options(**pick_connect(locals())))
        try:
            return export_sealed(env, src.key, Path(store).expanduser(), plan, work_store,
                                 lambda p: Store.create(p, fmt, command=f"export {src.key}"),
                                 lambda st: run_export(src, st, filt, TqdmProgress(env), connections, limit))  # fmt: skip
        finally:
            src.close()
    src = _source(source, connect_options(**pick_connect(locals())))
    try:
        with removed_if_empty(Path(store).expanduser()), \
                Store.create(Path(store).expanduser(), fmt, command=f"export {src.key}") as st:
            result = run_export(src, st, filt, TqdmProgress(env), connections, limit,
                                add_source, repair)  # fmt: skip
    finally:
        src.close()
    print_run(env, result, f"exported from {src.key} into {store}")
    return result.exit_code


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Argument(help="A store, or a PST/mbox/Maildir to import directly.")] = None,
    target: Annotated[str | None, typer.Argument(help="e.g. maildir:DIR, imaps://user@host, ews://host/EWS/Exchange.asmx")] = None,
    batch: Annotated[Path | None, typer.Option(help="Mapping CSV, one row per mailbox (Source,Target[,Store,UserName,Password,TargetPassword,Root,Duplicates]); see the README.")] = None,
    parallel: Parallel = 2, engine: Engine = "local", broker: Broker = None,
    secret_key_file: KeyFile = None, detach: Detach = False,
    root: Root = None, select: Select = None, subfolders: Subfolders = True,
    exclude: Exclude = None, duplicates: Duplicates = "skip", by_role: ByRole = True,
    work_store: Annotated[Path | None, typer.Option(help="Direct import: the store to stage into (default: a cache folder).")] = None,
    password_env: PasswordEnv = "PSTKIT_PASSWORD", password_file: PasswordFile = None,
    password_command: PasswordCommand = None, token_file: TokenFile = None,
    token_command: TokenCommand = None, auth: Auth = "auto", ca_file: CaFile = None,
    insecure: Insecure = False, connections: ImportConnections = None, opt: Opt = None,
    mailbox: Mailbox = None, impersonate: Impersonate = False, tenant: Tenant = None,
    client_id: ClientId = None, client_secret_env: ClientSecretEnv = None,
    client_secret_file: ClientSecretFile = None, client_cert: ClientCert = None,
    codepage: Codepage = None, identity: IdentityOpt = None, trust: TrustOpt = None,
    passphrase_file: PassphraseFile = None, bwlimit: BwLimit = None,
    max_size: MaxSize = None, purview_csv: PurviewCsv = None,
    redeliver_missing: RedeliverMissing = False, keep_cache: KeepCache = False,
) -> int:  # fmt: skip
    """Deliver a store's mail to TARGET, each folder into its counterpart (STORE may
    also be a PST, mbox or Maildir, or a sealed bundle with --identity/--trust)."""
    env = env_of(ctx)
    connections = server_connections(connections, None if batch is not None else target)
    mopts = mapping_options(root, select, subfolders, exclude, duplicates, by_role)
    opt = pst_opts(opt, max_size, purview_csv)
    limit = limiter(bwlimit)
    if batch is not None and limit is not None:
        raise UsageError("--bwlimit does not apply to --batch runs (yet): limit each mailbox's run")
    if batch is not None:
        if store is not None or target is not None:
            raise UsageError("with --batch, the CSV names every source and target")
        from pstkit.batch.engine import new_batch_id  # noqa: PLC0415 - batch runs only
        from pstkit.batch.mapping_csv import read_mapping  # noqa: PLC0415 - batch runs only
        from pstkit.cli.batchcmds import run_batch_command  # noqa: PLC0415 - batch runs only

        options = connect_options(**pick_connect(locals()))
        jobs, secrets = read_mapping(batch, new_batch_id(), options, options, mopts)
        return run_batch_command(env, jobs, secrets, engine, broker, secret_key_file,
                                 parallel, detach)  # fmt: skip
    if store is None or target is None:
        raise UsageError("import needs STORE and TARGET (or --batch mapping.csv)")
    from pstkit.cli.seal import drop_bundle_work_store, is_bundle, stage_bundle  # noqa: PLC0415

    sink = _sink(target, connect_options(**pick_connect(locals())))
    cached: Path | None = None  # a bundle's plain work store pstkit chose itself
    try:
        if is_bundle(store):
            store_dir, staged = stage_bundle(env, store, identity, trust, passphrase_file,
                                             work_store), None  # fmt: skip
            cached = store_dir if work_store is None else None
        else:
            store_dir, staged = _stage_direct(env, store, target, work_store,
                                              connect_options(**pick_connect(locals())))
        with Store.open(store_dir, writable=True, command=f"import {sink.key}") as st:
            warn_large(env, st, sink)
            from pstkit.importing import import_ as run_import  # noqa: PLC0415 - import only

            result = run_import(st, sink, mopts, TqdmProgress(env), connections, limit,
                                redeliver_missing)  # fmt: skip
    finally:
        sink.close()
    pst = written_data(sink)
    print_run(env, result, f"imported from {store_dir} into {sink.key}", staged,
              None if pst is None else {"pst": pst})
    print_written(env, sink)
    code = max(result.exit_code, staged.exit_code if staged else 0)
    if cached is not None:
        drop_bundle_work_store(cached, keep_cache, code)
    return code


def _stage_direct(
    env: Any, text: str, target: str, work_store: Path | None, options: ConnectOptions
) -> tuple[Path, RunResult | None]:
    """A source given to `import` instead of a store (a PST, mbox, Maildir, or a server
    when the target is a file: `import imaps://… pst:OUT.pst`): export it into a work
    store first, so the direct path resumes and de-duplicates like any other. The
    connection options are the source's then; a server target needs them itself, so
    server to server stays two commands."""
    loc = parse_location(text)
    if loc.scheme == "store":
        return Path(loc.path), None
    if loc.is_url and parse_location(target).is_url:
        raise UsageError("import from a server into a server: export to a store first "
                         "(import's connection options are the target's)")
    if loc.is_url:
        options = dataclasses.replace(options, connections=server_connections(None, text))
    src = _source(text, options)
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pstkit" / "direct"
    path = work_store or default / hashlib.sha256(src.key.encode()).hexdigest()[:16]
    try:
        with Store.create(path, command=f"export {src.key}") as st:
            result = run_export(src, st, None, TqdmProgress(env))
    finally:
        src.close()
    return path, result


@app.command()
def plan(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(help="The store.")],
    target: Annotated[str, typer.Argument(help="The import target.")],
    root: Root = None, select: Select = None, subfolders: Subfolders = True,
    exclude: Exclude = None, duplicates: Duplicates = "skip", by_role: ByRole = True,
    password_env: PasswordEnv = "PSTKIT_PASSWORD", password_file: PasswordFile = None,
    password_command: PasswordCommand = None, token_file: TokenFile = None,
    token_command: TokenCommand = None, auth: TargetAuth = "auto", ca_file: CaFile = None,
    insecure: Insecure = False, opt: Opt = None, mailbox: Mailbox = None,
    impersonate: Impersonate = False, tenant: Tenant = None, client_id: ClientId = None,
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    client_cert: ClientCert = None,
) -> int:  # fmt: skip
    """Show where each store folder would go and how many messages; writes nothing."""
    env = env_of(ctx)
    mopts = mapping_options(root, select, subfolders, exclude, duplicates, by_role)
    with _store(store) as st:
        options = connect_options(**pick_connect(locals()))
        sink = _sink(target, dataclasses.replace(options, only_read=True))
        try:
            from pstkit.importing import make_plan  # noqa: PLC0415 - plan only

            entries = make_plan(st, sink, mopts)
        finally:
            sink.close()
        pending = {e.source.id: st.catalog.undelivered_count(e.source.id, sink.key)
                   for e in entries}  # fmt: skip
    print_plan(env, entries, pending)
    return EXIT_OK


@app.command()
def ls(ctx: typer.Context, store: Annotated[str, typer.Argument(help="The store.")]) -> int:
    """Folder tree with counts, runs and problems of a store."""
    with _store(store) as st:
        print_ls(env_of(ctx), st)
    return EXIT_OK


@app.command()
def check(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(help="The store, a sealed bundle, or pst:FILE.pst (a split set: each part; a directory: each .pst).")],
    read_data: Annotated[
        bool, typer.Option(help="Also read every message and compare its SHA-256.")
    ] = False,
    trust: TrustOpt = None,
    identity: IdentityOpt = None,
    passphrase_file: PassphraseFile = None,
) -> int:
    """Verify a store (after copying it, say): every file, size and digest. A sealed
    bundle: its signature (--trust) and every file's SHA-256, with no key; with
    --identity (or --passphrase-file) also the store inside. A PST (pst:OUT.pst, a split
    set's parts, or a directory of .pst files): its structure, before it is shipped."""
    env = env_of(ctx)
    from pstkit.cli.pstcheck import check_pst_cmd, is_pst  # noqa: PLC0415 - not for export
    from pstkit.cli.seal import check_bundle_cmd, is_bundle  # noqa: PLC0415 - not for export

    if is_pst(store) and trust is None:
        return check_pst_cmd(env, store)
    if is_bundle(store) or trust is not None:
        decrypt = identity is not None or passphrase_file is not None
        return check_bundle_cmd(env, store, trust, identity, passphrase_file, decrypt)
    from pstkit.cli.checkreport import print_check, run_check  # noqa: PLC0415 - check only
    from pstkit.hints import check_hints  # noqa: PLC0415 - check only (it imports pstkit.check)

    with _store(store) as st:
        findings, files, nbytes, seconds = run_check(env, st, read_data)
        hints = check_hints(findings, st.catalog.source_keys(), store)
    print_check(env, findings, files, nbytes, seconds, read_data, hints)
    return EXIT_INTEGRITY if any(f.damage for f in findings) else EXIT_OK


@app.command()
def unlock(ctx: typer.Context, store: Annotated[str, typer.Argument(help="The store.")]) -> int:
    """Remove a store's lock left by a process that is gone."""
    root = Path(store).expanduser()
    read_marker(root)
    held = lock.read_lock(root / LOCK)
    if held is None:
        env_of(ctx).out("not locked")
        return EXIT_OK
    if not held.is_stale() and held.host == os.uname().nodename:
        raise UsageError(f"{held.describe()} is still running; stop it first")
    (root / LOCK).unlink(missing_ok=True)
    env_of(ctx).out(f"removed lock of {held.describe()}")
    return EXIT_OK
