"""Batches on the terminal: `export/import --batch` running and following a
batch, `pstkit worker`, `pstkit batch status` and `pstkit batch key`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pstkit.batch import secretbox, state
from pstkit.batch.jobs import BatchResult, Job, JobSecrets
from pstkit.cli.app import app, env_of
from pstkit.cli.batchreport import (
    duration_text,
    eta_seconds,
    print_table,
    report_base,
    write_reports,
)
from pstkit.cli.env import Env, print_json
from pstkit.cli.opts import between
from pstkit.cli.optypes import Broker, KeyFile
from pstkit.converters import open_sink, open_source
from pstkit.errors import EXIT_OK, EXIT_PROBLEMS, Interrupted, MissingDependency, UsageError
from pstkit.location import Location
from pstkit.options import ConnectOptions
from pstkit.protocols import Sink, Source

if TYPE_CHECKING:
    from tqdm import tqdm


batch_app = typer.Typer(no_args_is_help=True, help="Batches on the celery engine: status, keys.")
app.add_typer(batch_app, name="batch")


class ConverterOpeners:
    """jobs.Openers on the converter registry (picklable: no state)."""

    def open_source(self, loc: Location, options: ConnectOptions) -> Source:
        return open_source(loc, options)

    def open_sink(self, loc: Location, options: ConnectOptions) -> Sink:
        return open_sink(loc, options)


def run_batch_command(
    env: Env, jobs: Sequence[Job], secrets: Mapping[str, JobSecrets], engine: str,
    broker: str | None, key_file: Path | None, parallel: int, detach: bool,
) -> int:  # fmt: skip
    """`export --batch` / `import --batch`: run (local) or submit and follow (celery)."""
    # the engine (multiprocessing, futures) only for batch runs, not every command
    from pstkit.batch.engine import Batch, run_local  # noqa: PLC0415

    if engine == "local":
        if broker or detach:
            raise UsageError("--broker and --detach need --engine celery")
        results = run_local(jobs, secrets, ConverterOpeners(), parallel, Watcher(env, len(jobs)))
        return _print_results(env, results, jobs)
    if engine != "celery":
        raise UsageError(f"--engine must be local or celery, not {engine!r}")
    if not broker:
        raise UsageError("--engine celery needs --broker redis://HOST:6379/0")
    celery = _celery_engine(broker, secretbox.read_key(key_file) if key_file else None)
    try:
        batch_id = celery.submit(Batch(jobs[0].batch, jobs, secrets)) if jobs else ""
        try:
            env.err(f"batch {batch_id}: {len(jobs)} mailboxes queued on {celery.display}")
            if detach or not jobs:
                env.out(batch_id)
                return EXIT_OK
            return _follow_and_print(env, celery, batch_id, len(jobs), jobs)
        except KeyboardInterrupt as e:  # from the moment the batch is queued: it goes on
            raise Interrupted(hint=(
                "the batch goes on on the workers; follow it again with: "
                f"pstkit batch status --broker {celery.display} {batch_id} --follow")) from e
    finally:
        celery.close()


def _celery_engine(broker: str, key: bytes | None) -> Any:
    """The celery engine, imported only now: celery and redis are an optional extra."""
    try:
        from pstkit.batch.celery_engine import CeleryEngine  # noqa: PLC0415
    except ImportError as e:
        raise MissingDependency("the celery engine", e.name or "celery", "celery") from e
    return CeleryEngine(broker, key)


def _follow_and_print(env: Env, engine: Any, batch_id: str, total: int,
                      jobs: Sequence[Job] = ()) -> int:  # fmt: skip
    from pstkit.batch.engine import follow  # noqa: PLC0415 - see run_batch_command

    watcher = Watcher(env, total)
    try:
        records = follow(engine, batch_id, watcher)
    finally:
        watcher.close()
    return _print_results(env, [state.as_result(r) for r in records], jobs)


def _print_results(env: Env, results: Sequence[BatchResult], jobs: Sequence[Job] = ()) -> int:
    """The table; with the jobs at hand (this run submitted them) also the report files."""
    print_table(env, results)
    if jobs and results:
        try:
            csv_path, json_path = write_reports(report_base(jobs), results)
            env.err(f"batch report: {csv_path} and {json_path}")
        except OSError as e:
            env.err(f"warning: batch report not written: {e}")
    return EXIT_OK if all(r.exit_code == 0 for r in results) else EXIT_PROBLEMS


class Watcher:
    """Live view of a batch on stderr: a line per mailbox state change, and
    (on a terminal) a bar of finished mailboxes with running message totals."""

    def __init__(self, env: Env, total: int) -> None:
        self.env = env
        self.seen: dict[str, str] = {}
        self.started = time.monotonic()
        self.bar: tqdm[Any] | None = None
        if env.progress_enabled:
            from tqdm import tqdm  # noqa: PLC0415 - only when a bar is shown

            self.bar = tqdm(total=total, desc="mailboxes", unit="mbx", file=env.stderr,
                            dynamic_ncols=True)  # fmt: skip

    def __call__(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            line = _change_line(r)
            if self.seen.get(str(r.get("key"))) != line:
                self.seen[str(r.get("key"))] = line
                self._say(f"{r.get('key')}: {state.describe(r)}")
        if self.bar is not None:
            t = state.totals(records)
            self.bar.n = t["done"] + t["failed"]
            running = ", ".join(f"{str(r.get('key')).split('@')[0]} {r.get('progress', 0)}"
                                + (f"/{r['total']}" if r.get("total") else "")
                                for r in records if r.get("state") == "running")  # fmt: skip
            eta = eta_seconds(records, time.monotonic() - self.started)
            self.bar.set_postfix_str(f"{t['messages']} messages, {t['failed']} failed; "
                                     f"running: {running or '-'}"
                                     + (f"; batch ETA {duration_text(eta)}" if eta else ""),
                                     refresh=True)  # fmt: skip

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.env.stderr)
        elif not self.env.quiet:
            print(line, file=self.env.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _change_line(r: Mapping[str, Any]) -> str:
    """What counts as news: a state, host or attempt change (not every message)."""
    return f"{r.get('state')}|{r.get('worker') or r.get('host')}|{r.get('pid')}|{r.get('attempt')}"


# --- commands -------------------------------------------------------------------


@app.command()
def worker(
    broker: Broker = None,
    concurrency: Annotated[int, typer.Option(metavar="N", callback=between(1, 64), help="Mailboxes this worker runs at once (processes), 1 to 64.")] = 1,
    secret_key_file: KeyFile = None,
    name: Annotated[str | None, typer.Option(help="Worker name shown in `batch status` (default pstkit-PID@HOST).")] = None,
    visibility_timeout: Annotated[float, typer.Option(help="Seconds after which a job of a vanished worker goes to another; above the longest mailbox.")] = 12 * 3600,
    max_attempts: Annotated[int, typer.Option(min=1, help="Tries of a mailbox whose connection fails before it is marked failed.")] = 3,
) -> int:  # fmt: skip
    """Run mailbox jobs of batches submitted with --engine celery (on any machine)."""
    if not broker:
        raise UsageError("worker needs --broker redis://HOST:6379/0")
    try:
        from pstkit.batch.celery_engine import WorkerConfig, run_worker  # noqa: PLC0415
    except ImportError as e:
        raise MissingDependency("pstkit worker", e.name or "celery", "celery") from e

    run_worker(WorkerConfig(broker, ConverterOpeners(), secret_key_file, concurrency,
                            name or "", visibility_timeout, max_attempts))  # fmt: skip
    return EXIT_OK


@batch_app.command()
def status(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="The batch (default: list the newest batches).")] = None,
    broker: Broker = None,
    follow_: Annotated[bool, typer.Option("--follow", help="Follow the batch live until it ends.")] = False,
) -> int:  # fmt: skip
    """Every mailbox of a batch: queued, running on host X, done with counts, failed with reason."""
    env = env_of(ctx)
    if not broker:
        raise UsageError("batch status needs --broker redis://HOST:6379/0")
    engine = _celery_engine(broker, None)
    try:
        if batch_id is None:
            return _list_batches(env, engine)
        if not engine.board.meta(batch_id):
            raise UsageError(f"no batch {batch_id!r} on this broker")
        if follow_:
            return _follow_and_print(env, engine, batch_id, len(engine.records(batch_id)))
        return _print_status(env, batch_id, engine.records(batch_id), engine.board.meta(batch_id))
    finally:
        engine.close()


def _list_batches(env: Env, engine: Any) -> int:
    rows = []
    for bid in engine.board.batches():
        rows.append({"batch": bid, **engine.board.meta(bid), **state.totals(engine.records(bid))})
    if env.json:
        print_json(env, rows)
        return EXIT_OK
    for r in rows:
        env.out(f"{r['batch']}  submitted {r.get('submitted', '?')}  {r['mailboxes']} mailboxes: "
                f"{r['done']} done, {r['failed']} failed, {r['running']} running, "
                f"{r['queued']} queued")  # fmt: skip
    return EXIT_OK


def _print_status(env: Env, batch_id: str, records: list[dict[str, Any]],
                  meta: Mapping[str, str]) -> int:  # fmt: skip
    totals = state.totals(records)
    if env.json:
        print_json(env, {"batch": batch_id, **meta, "totals": totals, "mailboxes": records})
    else:
        env.out(f"batch {batch_id} (submitted {meta.get('submitted', '?')} on {meta.get('by', '?')})")
        for r in records:
            env.out(f"  {r.get('key', ''):<32} {state.describe(r)}")
        env.out(f"{totals['mailboxes']} mailboxes: {totals['done']} done, {totals['failed']} failed, "
                f"{totals['running']} running, {totals['waiting'] + totals['retrying']} waiting, "
                f"{totals['queued']} queued; {totals['messages']} messages")  # fmt: skip
    return EXIT_PROBLEMS if totals["failed"] else EXIT_OK


@batch_app.command()
def key(ctx: typer.Context, path: Annotated[Path, typer.Argument(help="Where to write the new key (never overwritten).")]) -> int:
    """Make a key for --secret-key-file; copy it to every worker out of band."""
    secretbox.new_key_file(path)
    env_of(ctx).err(f"new batch key in {path}; give the same file to every `pstkit worker`")
    return EXIT_OK
