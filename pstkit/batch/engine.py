"""The executor interface, and the local engine (a process pool).

A batch is a list of independent mailbox jobs; an engine runs them and
keeps one state record per mailbox (see `state`). Every engine runs the
same `jobs.run_job`; they differ only in where: `local` in processes of
this machine, `celery` (pstkit.batch.celery_engine, imported only when
chosen) on workers anywhere that reach one broker.

    engine.submit(batch)        -> the batch id; returns at once
    engine.records(batch_id)    -> the state records, one per mailbox
    follow(engine, id, watch)   -> polls records until every one is final
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import queue
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pstkit.batch import state
from pstkit.batch.jobs import BatchResult, Job, JobSecrets, Openers, retry_delay, run_job
from pstkit.errors import StoreLocked

LOCK_WAIT = 5.0  # seconds between looks at a store locked by another run


@dataclass(frozen=True)
class Batch:
    id: str
    jobs: Sequence[Job]
    secrets: Mapping[str, JobSecrets] = field(default_factory=dict, repr=False)


def new_batch_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Engine(Protocol):
    def submit(self, batch: Batch) -> str: ...
    def records(self, batch_id: str) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def follow(
    engine: Engine,
    batch_id: str,
    watch: Callable[[list[dict[str, Any]]], None],
    interval: float = 1.0,
) -> list[dict[str, Any]]:
    """Call `watch` with the records until all are final; returns the last.
    A KeyboardInterrupt goes to the caller (the batch itself goes on)."""
    while True:
        records = engine.records(batch_id)
        watch(records)
        if records and state.is_over(records):
            return records
        time.sleep(interval)


# --- local engine -------------------------------------------------------------


class LocalEngine:
    """`parallel` processes of this machine; what `--parallel` always was.
    Processes, not threads: PST parsing and MIME building hold the GIL."""

    def __init__(self, openers: Openers, parallel: int = 2, max_attempts: int = 3) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self._manager = ctx.Manager()
        self._events: Any = self._manager.Queue()
        self._pool = concurrent.futures.ProcessPoolExecutor(max(1, parallel), mp_context=ctx)
        self._openers, self._max_attempts = openers, max_attempts
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self._futures: dict[concurrent.futures.Future[tuple[BatchResult, int]], tuple[str, str]]
        self._futures = {}

    def submit(self, batch: Batch) -> str:
        self._records[batch.id] = {j.key: state.queued(j) for j in batch.jobs}
        for job in batch.jobs:
            secrets = batch.secrets.get(job.key, JobSecrets())
            future = self._pool.submit(local_job, job, secrets, self._openers, self._events,
                                       self._max_attempts)  # fmt: skip
            self._futures[future] = (batch.id, job.key)
        return batch.id

    def records(self, batch_id: str) -> list[dict[str, Any]]:
        self._drain()
        for future, (bid, key) in list(self._futures.items()):
            if future.done():
                del self._futures[future]
                self._merge(bid, key, _outcome(future))
        return list(self._records.get(batch_id, {}).values())

    def _drain(self) -> None:
        while True:
            try:
                bid, key, update = self._events.get_nowait()
            except (queue.Empty, EOFError, OSError):
                return
            self._merge(bid, key, update)

    def _merge(self, bid: str, key: str, update: Mapping[str, Any]) -> None:
        records = self._records.setdefault(bid, {})
        records[key] = state.merge(records.get(key, {"key": key}), update)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._manager.shutdown()


def _outcome(future: concurrent.futures.Future[tuple[BatchResult, int]]) -> dict[str, Any]:
    try:
        result, attempt = future.result()
    except Exception as e:  # a crashed process: the mailbox fails, the rest go on
        return {"state": "failed", "error": f"worker process failed: {type(e).__name__}: {e}",
                "exit_code": 70, "attempt": 1 << 30}  # fmt: skip
    return state.finished(result, attempt)


def local_job(job: Job, secrets: JobSecrets, openers: Openers, events: Any,
              max_attempts: int) -> tuple[BatchResult, int]:  # fmt: skip
    """In a pool process: run the job, wait for a locked store, retry
    connection failures; every state change goes to `events`."""
    attempt = 1

    def report(update: dict[str, Any]) -> None:
        events.put((job.batch, job.key, {**update, "attempt": attempt}))

    while True:
        try:
            result = run_job(job, secrets, openers, report)
        except StoreLocked as e:
            report({"state": "waiting", "error": e.message})
            time.sleep(LOCK_WAIT)
            continue
        delay = retry_delay(result, attempt, max_attempts)
        if delay is None:
            return result, attempt
        report({"state": "retrying", "error": result.error})
        time.sleep(delay)
        attempt += 1


def run_local(
    jobs: Sequence[Job], secrets: Mapping[str, JobSecrets], openers: Openers, parallel: int,
    watch: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[BatchResult]:  # fmt: skip
    """Submit, follow to the end, and return the results in the jobs' order."""
    engine = LocalEngine(openers, parallel)
    try:
        batch_id = engine.submit(Batch(jobs[0].batch if jobs else new_batch_id(), jobs, secrets))
        records = follow(engine, batch_id, watch or (lambda _: None), 0.2) if jobs else []
    finally:
        engine.close()
    by_key = {r["key"]: r for r in records}
    return [state.as_result(by_key[j.key]) for j in jobs]


if TYPE_CHECKING:
    _: type[Engine] = LocalEngine
