"""The report's tables as one CSV (a `record` column says which table a row is from)."""

from __future__ import annotations

import csv
from pathlib import Path

from pstkit.report.data import Report

HEAD = (
    "record", "folder", "role", "source", "stored", "bytes", "skipped", "target", "failed",
    "date", "subject", "reason", "run", "kind", "peer", "started", "seconds", "status",
)  # fmt: skip


def write(report: Report, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, HEAD, restval="")
        w.writeheader()
        for x in report.folders:
            w.writerow({"record": "folder", "folder": x.path, "role": x.role, "source": x.source,
                        "stored": x.stored, "bytes": x.size, "skipped": x.skipped,
                        "target": x.delivered, "failed": x.failed})  # fmt: skip
        for p in report.problems:
            w.writerow({"record": "warning" if p.warning else "problem", "folder": p.folder,
                        "date": p.date, "subject": p.subject, "reason": p.reason,
                        "run": p.run, "kind": p.stage})  # fmt: skip
        for r in report.runs:
            w.writerow({"record": "run", "run": r.id, "kind": r.kind, "peer": r.peer,
                        "started": r.started, "seconds": f"{r.seconds:.3f}",
                        "status": r.status})  # fmt: skip
