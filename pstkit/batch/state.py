"""What a batch looks like from outside: one state record per mailbox.

Pure functions over plain dicts (they are stored as JSON in the broker by
the Celery engine and kept in memory by the local engine):

    queued -> running (host, pid, worker) -> done (counts) | failed (reason)
                 |  ^
                 v  |  waiting: another run holds the store's lock
              retrying: a connection failed, tried again after a pause

A record only ever moves forward in `attempt` order, so a late message of
a run that was given up (a worker killed and its job delivered again) can
not overwrite what the newer run reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pstkit.batch.jobs import BatchResult, Job

STATES = ("queued", "running", "waiting", "retrying", "done", "failed")
FINAL = frozenset({"done", "failed"})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def queued(job: Job) -> dict[str, Any]:
    return {"key": job.key, "kind": job.kind, "store": job.store, "state": "queued",
            "attempt": 0, "updated": now()}  # fmt: skip


def merge(old: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`old` with `update` applied; an update of an older attempt is ignored,
    and a final record is not reopened except by a newer attempt."""
    attempt = int(update.get("attempt", old.get("attempt", 0)))
    if attempt < int(old.get("attempt", 0)):
        return dict(old)
    same = attempt == int(old.get("attempt", 0))
    if old.get("state") in FINAL and same and update.get("state") not in FINAL:
        return dict(old)
    new = {**old, **update, "updated": now()}
    if "pid" in update:  # a run starts (a job delivered again after a lost worker: one more)
        new["started"], new["progress"] = new["updated"], 0
        new["runs"] = int(old.get("runs", 0)) + 1
    return new


def finished(result: BatchResult, attempt: int) -> dict[str, Any]:
    state = "done" if not result.error else "failed"
    return {"state": state, "attempt": attempt, "folders": result.folders,
            "messages": result.messages, "bytes": result.bytes, "skipped": result.skipped,
            "new": result.new, "delivered": result.delivered, "error": result.error,
            "exit_code": result.exit_code, "seconds": round(result.seconds, 1)}  # fmt: skip


def totals(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Mailboxes per state plus message totals, for a status line."""
    counts: Counter[str] = Counter()
    for r in records:
        counts[str(r.get("state", "queued"))] += 1
        counts["mailboxes"] += 1
        running = r.get("state") == "running"
        counts["messages"] += int(r.get("progress", 0) if running else r.get("messages", 0) or 0)
    return {k: counts[k] for k in ("mailboxes", *STATES, "messages")}


def is_over(records: Iterable[Mapping[str, Any]]) -> bool:
    return all(r.get("state") in FINAL for r in records)


def describe(r: Mapping[str, Any]) -> str:
    """One human line for a mailbox: what `batch status` prints."""
    state = str(r.get("state", "queued"))
    where = f"{r.get('worker') or r.get('host', '?')} pid {r.get('pid', '?')}"
    if state == "running":
        total = f"/{r['total']}" if r.get("total") else ""
        stage = f"{r['stage']} " if r.get("stage") else ""
        return f"running on {where}: {stage}{r.get('progress', 0)}{total} messages"
    if state == "done":
        extra = f", {r.get('delivered', 0)} in target" if "import" in r.get("kind", "") else ""
        skipped = f", {r['skipped']} skipped" if r.get("skipped") else ""
        return (f"done on {where}: {r.get('messages', 0)} messages in {r.get('folders', 0)} "
                f"folders{extra}{skipped} ({r.get('seconds', 0)} s)")  # fmt: skip
    if state == "failed":
        return f"failed after {r.get('attempt', 0)} attempt(s): {r.get('error', '')}"
    if state in ("waiting", "retrying"):
        return f"{state}: {r.get('error', '')}"
    return "queued"


def as_result(r: Mapping[str, Any]) -> BatchResult:
    """A final record as the result row `export --batch` prints."""
    return BatchResult(
        str(r.get("key", "")), str(r.get("store", "")), int(r.get("folders", 0)),
        int(r.get("messages", 0)), int(r.get("bytes", 0)), int(r.get("skipped", 0)),
        int(r.get("new", 0)), int(r.get("delivered", 0)), str(r.get("error", "")),
        int(r.get("exit_code", 0)), float(r.get("seconds", 0.0)),
    )  # fmt: skip
