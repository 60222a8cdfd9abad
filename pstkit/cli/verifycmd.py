"""`pstkit verify` and the closing blocks of verify and check.

verify prints the differences only (`--all`: every item), then a closing
block like `rclone check`'s: `2000 matching, 0 missing, 0 extra, 0 differing`,
with per-folder counts where a folder is not clean. The run is recorded in the
store (kind "verify", its counts per folder) when the store can be written, so
`pstkit report` shows it; a read-only copy is verified all the same.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from pstkit.cli.app import app, env_of
from pstkit.cli.commands import _sink
from pstkit.cli.env import Env, TqdmProgress, print_json
from pstkit.cli.opts import (
    CaFile,
    Insecure,
    Opt,
    PasswordCommand,
    PasswordEnv,
    PasswordFile,
    TargetAuth,
    TokenCommand,
    TokenFile,
    connect_options,
    mapping_options,
    pick_connect,
)
from pstkit.cli.optypes import (
    ByRole,
    ClientCert,
    ClientId,
    ClientSecretEnv,
    ClientSecretFile,
    Exclude,
    Impersonate,
    Mailbox,
    Root,
    Select,
    Subfolders,
    Tenant,
)
from pstkit.errors import EXIT_OK, EXIT_PROBLEMS, StoreError, TargetNotFound
from pstkit.hints import verify_hints
from pstkit.mapping import path_text
from pstkit.model import Problem
from pstkit.options import MappingOptions
from pstkit.protocols import LocalTarget, Sink
from pstkit.runs import NullProgress, recorded_run
from pstkit.spool import Spool
from pstkit.store import Store
from pstkit.verify import MARK_NAMES, VerifyLine, VerifySummary, counts_text, verify

log = logging.getLogger("pstkit")
CSV_HEAD = ("mark", "target folder", "message-id", "size", "subject", "date", "item", "detail")


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(help="The store.")],
    target: Annotated[str, typer.Argument(help="The import target to compare with.")],
    all_lines: Annotated[bool, typer.Option("--all", help="List matching (=) items too, not only the differences.")] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write every item as CSV: mark, target folder, Message-ID, size, subject, date.", metavar="FILE")] = None,
    root: Root = None, select: Select = None, subfolders: Subfolders = True,
    exclude: Exclude = None, by_role: ByRole = True,
    password_env: PasswordEnv = "PSTKIT_PASSWORD", password_file: PasswordFile = None,
    password_command: PasswordCommand = None, token_file: TokenFile = None,
    token_command: TokenCommand = None, auth: TargetAuth = "auto", ca_file: CaFile = None,
    insecure: Insecure = False, opt: Opt = None, mailbox: Mailbox = None,
    impersonate: Impersonate = False, tenant: Tenant = None, client_id: ClientId = None,
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    client_cert: ClientCert = None,
) -> int:  # fmt: skip
    """Compare a store with a target: = same, - missing, + extra, * differs, ! unreadable.

    Prints the differences and a closing count; exit 0 when everything matches, 1 if not.

    \b
    Examples:
      pstkit verify STORE imaps://user@host
      pstkit verify STORE maildir:OUT --all
      pstkit verify STORE ews://user@host --csv verify.csv
    """
    env = env_of(ctx)
    mopts = mapping_options(root, select, subfolders, exclude, "skip", by_role)
    sink = _sink(target, replace(connect_options(**pick_connect(locals())), only_read=True))
    try:
        if isinstance(sink, LocalTarget) and not sink.exists():
            # A typo, surely: "all missing" (and the hint to deliver them again) is no answer.
            raise TargetNotFound(target)
        lines, summary, seconds = _run(env, Path(store.removeprefix("store:")).expanduser(),
                                       sink, mopts, all_lines or csv_file is not None)  # fmt: skip
    finally:
        sink.close()
    if csv_file:
        _write_csv(csv_file, lines)
    shown = (v for v in lines if all_lines or v.mark != "=")
    if env.json:  # one document: its lines are held to write it
        print_json(env, {**summary.as_dict(), "seconds": round(seconds, 3),
                         "lines": [_line_dict(v) for v in shown]})  # fmt: skip
    else:
        for v in shown:
            env.out(line_text(v))
        for text in closing_block(summary):
            env.out(text)
    for hint in verify_hints(summary.total, store, target):
        print(hint, file=env.stderr)
    total = sum(summary.total.values())
    print(f"verify finished in {seconds:.1f} s: {total} items compared "
          f"({total / max(seconds, 1e-6):.1f} items/s)", file=env.stderr)  # fmt: skip
    return EXIT_OK if summary.clean else EXIT_PROBLEMS


def _run(
    env: Env, root: Path, sink: Sink, mopts: MappingOptions, keep_all: bool
) -> tuple[Spool[VerifyLine], VerifySummary, float]:
    """Verify, recorded as a run of the store when it can be written. The lines kept
    are the differences, and the matches too only with `keep_all` (--all, --csv), in
    a `Spool`: a list of every difference grew with the mailbox (a verify against the
    wrong target: 100,000 missing took 106 MiB)."""
    try:
        st = Store.open(root, writable=True, command=f"verify {sink.key}")
    except StoreError as e:
        log.info("verifying without recording the run (%s)", e.message)
        started = time.monotonic()
        with Store.open(root) as ro:
            lines, summary = _compare(ro, sink, mopts, None, keep_all)
        return lines, summary, time.monotonic() - started
    with st:
        progress = TqdmProgress(env)
        with recorded_run(st.catalog, "verify", sink.key, progress) as result:
            lines, summary = _compare(st, sink, mopts, progress, keep_all)
            result.stats.update(summary.total)
            result.folders = dict(summary.folders)
            result.problems.extend(
                Problem("verify", v.folder, v.item, f"{MARK_NAMES[v.mark]}: {v.detail}".rstrip(": "),
                        subject=v.subject)
                for v in lines if v.mark != "="
            )  # fmt: skip
        return lines, summary, result.elapsed


def _compare(
    st: Store, sink: Sink, mopts: MappingOptions, progress: TqdmProgress | None, keep_all: bool
) -> tuple[Spool[VerifyLine], VerifySummary]:
    summary = VerifySummary()
    lines: Spool[VerifyLine] = Spool()
    bar = progress or NullProgress()
    bar.start("verify", sum(n for n, _ in st.catalog.counts().values()) or None)
    current = None
    for v in verify(st, sink, mopts):
        if progress is not None and v.folder != current:
            current = v.folder
            progress.folder(path_text(v.folder))
        summary.add(v)
        if keep_all or v.mark != "=":
            lines.append(v)
        bar.advance(1, v.size or 0)
    bar.done()
    return lines, summary


def line_text(v: VerifyLine) -> str:
    """`- Sent  2024-03-04  'Subject'  [5]  detail`: folder, date, subject, id."""
    date = v.date[:10]
    subject = repr(v.subject) if v.subject else "(no subject)"
    parts = [v.mark, path_text(v.folder) or "/", date, subject, f"[{v.item}]", v.detail]
    return "  ".join(p for p in parts if p)


def closing_block(summary: VerifySummary) -> list[str]:
    """`N matching, N missing, N extra, N differing`, notes on matches, unclean folders."""
    out = [counts_text(summary.total)]
    for note, n in sorted(summary.notes.items()):
        out.append(f"  {n} of the matching: {note}")
    for folder, counts in sorted(summary.unclean_folders().items()):
        out.append(f"  {folder or '/'}: {counts_text(counts)}")
    return out


def _line_dict(v: VerifyLine) -> dict[str, Any]:
    return {"mark": v.mark, "folder": path_text(v.folder), "item": v.item, "detail": v.detail,
            "subject": v.subject, "message_id": v.message_id, "size": v.size, "date": v.date}  # fmt: skip


def _write_csv(path: Path, lines: Iterable[VerifyLine]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEAD)
        for v in lines:
            w.writerow((v.mark, path_text(v.folder), v.message_id, "" if v.size is None else v.size,
                        v.subject, v.date, v.item, v.detail))  # fmt: skip
