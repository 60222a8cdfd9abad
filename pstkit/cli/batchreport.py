"""The end of a batch run: the per-mailbox table with a totals row, and the
same rows as CSV and JSON files next to the stores (a batch of 500 mailboxes
is read in a spreadsheet, not scrolled back in a terminal)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pstkit.batch.jobs import BatchResult, Job
from pstkit.cli.env import Env, print_json

COLUMNS = ("email", "result", "folders", "messages", "new", "delivered", "bytes", "skipped",
           "seconds", "exit_code", "error", "store")  # fmt: skip


def result_text(r: BatchResult) -> str:
    return r.error or ("ok" if r.exit_code == 0 else "finished with skips")


def totals(results: Sequence[BatchResult]) -> BatchResult:
    """One row adding up every mailbox (exit_code: how many did not end ok)."""
    return BatchResult(
        email=f"total ({len(results)} mailboxes)", store="",
        folders=sum(r.folders for r in results), messages=sum(r.messages for r in results),
        bytes=sum(r.bytes for r in results), skipped=sum(r.skipped for r in results),
        new=sum(r.new for r in results), delivered=sum(r.delivered for r in results),
        exit_code=sum(1 for r in results if r.exit_code), error="",
        seconds=max((r.seconds for r in results), default=0.0),
    )  # fmt: skip


def print_table(env: Env, results: Sequence[BatchResult]) -> None:
    """`messages` are the store's totals, `new` what this run added: a re-run
    shows 120 messages, 0 new (not 0 messages, as if the mailbox were empty)."""
    if env.json:
        print_json(env, [asdict(r) for r in results])
        return
    env.out(f"{'mailbox':<32} {'folders':>7} {'messages':>8} {'new':>6} {'MB':>8} "
            f"{'skipped':>7} {'s':>6}  result")  # fmt: skip
    for r in results:
        env.out(_row(r, result_text(r)))
    if len(results) > 1:
        t = totals(results)
        failed = sum(1 for r in results if r.error)
        env.out(_row(t, f"{len(results) - t.exit_code} ok, {failed} failed, "
                        f"{t.exit_code - failed} with skips"))  # fmt: skip


def _row(r: BatchResult, result: str) -> str:
    return (f"{r.email:<32} {r.folders:>7} {r.messages:>8} {r.new:>6} {r.bytes / 1e6:>8.1f} "
            f"{r.skipped:>7} {r.seconds:>6.1f}  {result}")  # fmt: skip


def report_base(jobs: Sequence[Job]) -> Path:
    """STORE_DIR/batch-ID: where the stores of this batch live, named by the batch."""
    parents = {str(Path(j.store).parent) for j in jobs}
    return Path(os.path.commonpath(sorted(parents))) / f"batch-{jobs[0].batch}"


def write_reports(base: Path, results: Sequence[BatchResult]) -> tuple[Path, Path]:
    """base.csv and base.json: one row per mailbox plus the totals row."""
    rows = [{**asdict(r), "result": result_text(r)} for r in results]
    total = {**asdict(totals(results)), "result": ""}
    base.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = base.with_suffix(".csv"), base.with_suffix(".json")
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows([*rows, total])
    json_path.write_text(json.dumps({"mailboxes": rows, "totals": total}, indent=1) + "\n",
                         encoding="utf-8")  # fmt: skip
    return csv_path, json_path


def eta_seconds(records: Sequence[Mapping[str, Any]], elapsed: float) -> float | None:
    """The whole batch's remaining time: mailboxes count as done (1), running
    (their message fraction, when the total is known) or not started (0), and
    the rest goes at the pace so far. None until something has been done."""
    work = 0.0
    for r in records:
        if r.get("state") in ("done", "failed"):
            work += 1.0
        elif r.get("state") == "running" and r.get("total"):
            work += min(1.0, int(r.get("progress", 0)) / int(r["total"]))
    if work <= 0 or elapsed <= 0:
        return None
    return elapsed * (len(records) - work) / work


def duration_text(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
