"""The report as one self-contained HTML page (inline CSS and SVG, no scripts,
nothing fetched), readable in any browser and printable. Every text from the
store is escaped: subjects and folder names are data, never markup."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from pstkit import __version__
from pstkit.report.data import Report, RunInfo, shown
from pstkit.report.svg import bar_chart
from pstkit.runstats import size_text

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}th,td{padding:.25em .5em;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n,th.n{text-align:right}.ok{color:#176b2c}.bad{color:#a4161a}
.warn{color:#8a5a00}dl{display:grid;grid-template-columns:10em 1fr}dt{font-weight:600}
svg text{font:11px system-ui,sans-serif}
"""


def render(report: Report) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Migration report: {escape(report.store)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Migration report</h1>",
        _overview(report),
        _section("Folders: source, store, target", _folders(report)),
        _section("Verification", _verify(report)),
        _section("Problems", _problems(report)),
        _section("Runs", _runs(report.runs)),
        _section("Charts", _charts(report)),
        f"<p><small>Made by pstkit {escape(__version__)} from the store's catalog.</small></p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _section(title: str, body: str) -> str:
    return f"<h2>{escape(title)}</h2>\n{body}"


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], numeric: set[int]) -> str:
    th = "".join(f'<th{" class=n" if i in numeric else ""}>{escape(h)}</th>'
                 for i, h in enumerate(head))  # fmt: skip
    body = []
    for row in rows:
        cells = "".join(f'<td{" class=n" if i in numeric else ""}>{_cell(v)}</td>'
                        for i, v in enumerate(row))  # fmt: skip
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return "<p>None.</p>"
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, Markup):
        return str(value)
    return escape(str(value))


class Markup(str):
    """Already-escaped HTML for a cell."""


def _overview(r: Report) -> str:
    done = sum(f.delivered for f in r.folders)
    stored = sum(f.stored for f in r.folders)
    # items skipped or failed now, as the folder table counts them (a problem row is
    # one run's: a re-run records the same item again, a later run may store it)
    failures = sum(f.skipped + f.failed for f in r.folders)
    notes = sum(p.warning for p in r.problems)
    items = [
        ("Source", ", ".join(r.sources) or "(none recorded)"),
        ("Store", f"{r.store} ({r.layout}, id {r.store_id}, created {r.created})"),
        ("Target", ", ".join(dict.fromkeys(map(shown, r.targets))) or "(not imported yet)"),
        ("Messages", f"{stored} stored ({size_text(sum(f.size for f in r.folders))}), "
                     f"{done} delivered"),
        ("Problems", f"{failures} skipped or failed, "
                     f"{notes} stored with a note"),
    ]  # fmt: skip
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f"<dl>{rows}</dl>"


def _folders(r: Report) -> str:
    rows = [(f.path or "/", f.role, f.source, f.stored, size_text(f.size), f.skipped,
             f.delivered, f.failed) for f in r.folders]  # fmt: skip
    fs = r.folders
    rows.append(("Total", "", sum(f.source for f in fs), sum(f.stored for f in fs),
                 size_text(sum(f.size for f in fs)), sum(f.skipped for f in fs),
                 sum(f.delivered for f in fs), sum(f.failed for f in fs)))  # fmt: skip
    head = ("Folder", "Role", "Source", "Store", "Size", "Skipped", "Target", "Failed")
    return _table(head, rows, {2, 3, 4, 5, 6, 7})


def _verify(r: Report) -> str:
    if not r.verify:
        return "<p>Not verified yet (run <code>pstkit verify STORE TARGET</code>).</p>"
    out = []
    for target, run in r.verify.items():
        c = {k: run.count(k) for k in ("matching", "missing", "extra", "differing", "errors")}
        clean = not (c["missing"] or c["extra"] or c["differing"] or c["errors"])
        verdict = "everything matches" if clean else "differences found"
        out.append(f'<p>{escape(shown(target))}, {escape(run.started)}: '
                   f'<b class={"ok" if clean else "bad"}>{verdict}</b> — '
                   f'{c["matching"]} matching, {c["missing"]} missing, {c["extra"]} extra, '
                   f'{c["differing"]} differing</p>')  # fmt: skip
        folders = run.stats.get("folders", {})
        if isinstance(folders, dict):
            rows = [(f or "/", *(int(v.get(k, 0)) for k in c)) for f, v in sorted(folders.items())
                    if isinstance(v, dict)]  # fmt: skip
            out.append(_table(("Target folder", "Matching", "Missing", "Extra", "Differing",
                               "Errors"), rows, {1, 2, 3, 4, 5}))  # fmt: skip
    return "\n".join(out)


def _problems(r: Report) -> str:
    rows = [(p.folder or "/", p.date, p.subject or "(no subject)",
             Markup(f'<span class={"warn" if p.warning else "bad"}>{escape(p.reason)}</span>'),
             f"{p.stage}, run {p.run}, item {p.item}") for p in r.problems]  # fmt: skip
    return _table(("Folder", "Date", "Subject", "Reason", "Where"), rows, set())


def _runs(runs: Sequence[RunInfo]) -> str:
    rows = []
    for run in runs:
        nbytes = run.count("bytes")
        done = run.count("stored") + run.count("delivered") + run.count("matching")
        rate = nbytes / 1e6 / run.seconds if run.seconds > 0 else 0.0
        rows.append((run.id, run.kind, shown(run.peer), run.started, f"{run.seconds:.1f} s", done,
                     size_text(nbytes), f"{rate:.2f}", run.status))  # fmt: skip
    head = ("Run", "Kind", "Source / target", "Started", "Took", "Items", "Size", "MB/s", "Status")
    return _table(head, rows, {0, 4, 5, 6, 7})


def _charts(r: Report) -> str:
    sizes = [(f.path or "/", float(f.size)) for f in r.folders]
    runs = [(f"run {x.id} {x.kind}", x.count("bytes") / 1e6 / x.seconds)
            for x in r.runs if x.seconds > 0 and x.kind in ("export", "import")]  # fmt: skip
    return (bar_chart("Size per folder", sizes, lambda v: size_text(int(v)))
            + bar_chart("Throughput per run, in order (MB/s)", runs))  # fmt: skip
