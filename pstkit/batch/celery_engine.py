"""The `celery` engine: mailbox jobs on workers anywhere, through Redis.

Imported only when `--engine celery` or `pstkit worker` is used, so Celery
and redis stay optional (`pip install 'pstkit[celery]'`).

How faults are met (one message per mailbox, not per folder: the store is
one writer's at a time, so folder jobs of one mailbox would only queue on
its lock, and export/import already resume per folder inside the store):

- late acknowledgement (`task_acks_late`): a message is acknowledged only
  after its mailbox is done. A worker process killed mid-mailbox ->
  `task_reject_on_worker_lost` puts it back at once; a whole worker (or
  machine) gone -> Redis gives the unacknowledged message to another worker
  after `visibility_timeout` (default 12 h: above the longest mailbox).
  The rerun resumes from the store, so the mailbox completes exactly once.
- a message delivered while its first run still holds the store's lock
  (visibility timeout too short, the same batch submitted twice) WAITS:
  it is retried every LOCK_WAIT seconds until the lock is free, then finds
  almost nothing left to do. It never skips: skipping would lose the
  mailbox if the first run then died.
- Redis restarted: workers and `follow` reconnect; the queue and the
  records survive if Redis persists (appendonly yes, see the README).
- connection failures are retried (jobs.retry_delay) up to max_attempts;
  then, like a wrong password at once, the mailbox is marked failed with
  its reason and the others go on.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pstkit.batch import records, secretbox, state
from pstkit.batch.board import DOWN, Board, check_reachable
from pstkit.batch.engine import LOCK_WAIT, Batch, Engine
from pstkit.batch.jobs import BatchResult, Job, JobSecrets, Openers, retry_delay, run_job
from pstkit.errors import MissingDependency, PstkitError, StoreLocked, UsageError

log = logging.getLogger("pstkit")
TASK = "pstkit.mailbox"
QUEUE = "pstkit"
DEFAULT_VISIBILITY = 12 * 3600


def _celery() -> Any:
    try:
        import celery  # noqa: PLC0415
    except ImportError as e:
        raise MissingDependency("the celery engine", "celery", "celery") from e
    return celery


def make_app(broker: str, visibility_timeout: float = DEFAULT_VISIBILITY) -> Any:
    app = _celery().Celery("pstkit", broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"], task_ignore_result=True,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=QUEUE, broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None, worker_hijack_root_logger=False,
        # On a lost broker connection a running mailbox goes on (its outcome is
        # recorded once the broker is back); its message comes again and the
        # rerun finds nothing left to do. Cancelling would throw the work away.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options=_transport_options(visibility_timeout),
    )  # fmt: skip
    return app


def _transport_options(visibility_timeout: float) -> dict[str, float]:
    """Kombu looks for jobs of vanished workers every interval x throttle
    seconds (100 s by default); look every few seconds, at most every 10 s,
    so that a job comes back soon after its visibility timeout.

    The look is done under a Redis lock that expires after 300 s by default:
    a worker killed while holding it (a machine gone mid-look) would hold
    every vanished job back for 5 more minutes. The look takes milliseconds,
    so the lock expires after the visibility timeout (5 s to 300 s); should
    two looks overlap, kombu's per-job transaction still restores a job once."""
    return {"visibility_timeout": visibility_timeout,
            "unacked_restore_interval": max(1.0, min(10.0, visibility_timeout / 3)),
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": int(max(5.0, min(300.0, visibility_timeout)))}  # fmt: skip


def _context(job: Job, role: str) -> str:
    return f"{job.batch}\0{job.key}\0{role}"


def seal_secrets(job: Job, secrets: JobSecrets, key: bytes | None) -> dict[str, str]:
    plain = {"source": secrets.source, "target": secrets.target}
    if not any(plain.values()):
        return {}
    if key is None:
        raise UsageError(
            "the CSV has passwords: give --secret-key-file (the workers need the same file)",
            hint="make a key with `pstkit batch key FILE`, copy it to every worker",
        )
    return {role: secretbox.seal(key, v, _context(job, role)) for role, v in plain.items() if v}


def unseal_secrets(job: Job, sealed: Mapping[str, str], key: bytes | None) -> JobSecrets:
    if not sealed:
        return JobSecrets()
    if key is None:
        raise UsageError("the job's passwords are sealed: start the worker with --secret-key-file")
    out = {role: secretbox.unseal(key, v, _context(job, role)) for role, v in sealed.items()}
    return JobSecrets(out.get("source", ""), out.get("target", ""))


class CeleryEngine:
    """The submitting side: puts jobs on the queue, reads the records."""

    def __init__(self, broker: str, key: bytes | None) -> None:
        self.broker, self.key = broker, key
        self.display = _safe(broker)
        self.board = Board(broker)
        check_reachable(self.board)
        self.app = make_app(broker)
        self._last: dict[str, list[dict[str, Any]]] = {}

    def submit(self, batch: Batch) -> str:
        sealed = {j.key: seal_secrets(j, batch.secrets.get(j.key, JobSecrets()), self.key)
                  for j in batch.jobs}  # fmt: skip  (all sealed before anything is queued)
        meta = {"submitted": state.now(), "mailboxes": str(len(batch.jobs)),
                "by": socket.gethostname()}  # fmt: skip
        self.board.create(batch.id, [state.queued(j) for j in batch.jobs], meta)
        with self.app.producer_or_acquire() as producer:
            for job in batch.jobs:
                self.app.send_task(TASK, args=[records.encode(job), sealed[job.key], 1],
                                   queue=QUEUE, producer=producer)  # fmt: skip
        return batch.id

    def records(self, batch_id: str) -> list[dict[str, Any]]:
        """The records; while the broker is away, the last ones seen."""
        try:
            self._last[batch_id] = self.board.records(batch_id)
        except DOWN:
            log.warning("broker %s does not answer; still trying", self.display)
        return self._last.get(batch_id, [])

    def close(self) -> None:
        self.board.close()


def _safe(url: str) -> str:
    """A broker URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    return f"{head.split('//')[0]}//***@{tail}" if at else url


@dataclass(frozen=True)
class WorkerConfig:
    broker: str
    openers: Openers
    key_file: Path | None = None
    concurrency: int = 1
    name: str = ""
    visibility_timeout: float = DEFAULT_VISIBILITY
    max_attempts: int = 3


def run_worker(config: WorkerConfig) -> None:
    """Serve jobs until stopped (Ctrl-C/SIGTERM: a warm shutdown)."""
    key = secretbox.read_key(config.key_file) if config.key_file else None
    check_reachable(Board(config.broker))
    app = make_app(config.broker, config.visibility_timeout)
    _register(app, config, key)
    name = config.name or f"pstkit-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(["worker", f"--concurrency={config.concurrency}", "--loglevel=WARNING",
                     f"--queues={QUEUE}", f"--hostname={name}", "--without-gossip",
                     "--without-mingle", "--pool=prefork"])  # fmt: skip


def _register(app: Any, config: WorkerConfig, key: bytes | None) -> None:
    boards: dict[int, Board] = {}  # one connection per pool process

    def board() -> Board:
        return boards.setdefault(os.getpid(), Board(config.broker))

    @app.task(bind=True, name=TASK, max_retries=None)  # type: ignore[untyped-decorator]
    def mailbox(self: Any, job_data: dict[str, Any], sealed: dict[str, str], attempt: int) -> None:
        job = records.decode(Job, job_data)
        worker = str(self.request.hostname or "")

        warned: list[bool] = []

        def report(update: dict[str, Any]) -> None:
            try:
                board().update(job.batch, job.key, {**update, "attempt": attempt, "worker": worker})
            except DOWN:
                if not warned:  # once per job: the job goes on, its outcome is kept later
                    warned.append(True)
                    log.warning("broker away: progress of %s not recorded", job.key)

        outcome = _run(job, sealed, key, config.openers, report)
        if isinstance(outcome, StoreLocked):
            report({"state": "waiting", "error": outcome.message})
            raise self.retry(countdown=LOCK_WAIT)
        delay = retry_delay(outcome, attempt, config.max_attempts)
        if delay is not None:
            report({"state": "retrying", "error": outcome.error})
            raise self.retry(args=[job_data, sealed, attempt + 1], countdown=delay)
        final = {**state.finished(outcome, attempt), "worker": worker}
        board().update_surely(job.batch, job.key, final)


def _run(job: Job, sealed: Mapping[str, str], key: bytes | None, openers: Openers,
         report: Any) -> BatchResult | StoreLocked:  # fmt: skip
    """run_job with the passwords unsealed; a bad key is the mailbox's failure."""
    try:
        secrets = unseal_secrets(job, sealed, key)
    except PstkitError as e:
        return BatchResult(job.key, job.store, error=e.message, exit_code=e.exit_code)
    try:
        return run_job(job, secrets, openers, report)
    except StoreLocked as e:
        return e


if TYPE_CHECKING:
    _: type[Engine] = CeleryEngine
