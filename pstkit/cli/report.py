"""How results look on stdout: text for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pstkit.cli.env import Env, print_json
from pstkit.mapping import PlanEntry, effective_role, path_text
from pstkit.model import FolderInfo, FolderPath
from pstkit.runs import RunResult, is_note
from pstkit.runstats import DONE, block, item_text, size_text, summary
from pstkit.store import Store


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def run_dict(result: RunResult, what: str) -> dict[str, object]:
    problems = [
        {"stage": p.stage, "folder": path_text(p.folder), "item": p.item, "reason": p.reason,
         "subject": p.subject, "date": p.date.isoformat() if p.date else "",
         "warning": is_note(p.reason)}
        for p in result.problems
    ]  # fmt: skip
    return {"run": result.run_id, "kind": result.kind, "what": what,
            "stats": dict(result.stats), "summary": summary(result),
            "problems": problems}  # fmt: skip


def print_run(env: Env, result: RunResult, what: str, staged: RunResult | None = None,
              extra: dict[str, object] | None = None) -> None:
    """One result document; a direct import nests its staging run under "staged", and
    `extra` adds members (a PST target's files as "pst"). The stats block goes to stderr
    either way."""
    if env.json:
        data = run_dict(result, what)
        if staged is not None:
            data["staged"] = run_dict(staged, "staged")
        data.update(extra or {})
        print_json(env, data)
    else:
        if staged is not None:
            _print_text(env, staged, "staged into the work store")
        _print_text(env, result, what)
    for r in (staged, result):
        if r is not None:
            for line in block(r, env.verbose):
                print(line, file=env.stderr)


def _print_text(env: Env, result: RunResult, what: str) -> None:
    stats = dict(result.stats)
    nbytes = stats.pop("bytes", 0)
    done_key, already = DONE.get(result.kind, ("done", "already"))
    done = stats.pop(done_key, 0)
    rest = "".join(f", {v} {k}" for k, v in sorted(stats.items()))
    env.out(f"{what}: {done} new, {result.already} {already}{rest} ({size_text(nbytes)})"
            f" [run {result.run_id}]")  # fmt: skip
    for p in result.problems:
        label = "warning" if is_note(p.reason) else "problem"
        env.out(f"  {label}: {item_text(p)}: {p.reason}")


def print_folders(env: Env, infos: Sequence[FolderInfo],
                  kinds: Mapping[FolderPath, Mapping[str, int]]) -> None:  # fmt: skip
    """`kinds`: item counts per kind, for the folders of sources that know them (PST)."""
    if env.json:
        print_json(env, [{"path": list(i.path), "role": (effective_role(i) or ""),
                          "messages": i.message_count, "selectable": i.selectable,
                          "source_name": i.source_name, "class": i.container_class,
                          **({"kinds": dict(kinds[i.path])} if i.path in kinds else {})}
                         for i in infos])  # fmt: skip
        return
    for i in infos:
        role = effective_role(i)
        count = "" if i.message_count is None else f"{i.message_count:>7}  "
        flags = ("" if i.selectable else " (no messages)") + (f" [{role.value}]" if role else "")
        split = _kinds_text(kinds.get(i.path, {}))
        env.out(f"{count}{'  ' * (len(i.path) - 1)}{i.path[-1] if i.path else '/'}{flags}{split}")


def _kinds_text(kinds: Mapping[str, int]) -> str:
    """"" when everything is mail (the common case says nothing new), else e.g. "  (1 contact, 1 distlist)"."""
    if set(kinds) <= {"mail"}:
        return ""
    return "  (" + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) + ")"


def print_ls(env: Env, store: Store) -> None:
    from pstkit.importing import store_folders  # noqa: PLC0415 - ls only, not export's report

    folders = store_folders(store)
    runs = store.catalog.runs()
    problems = store.catalog.problems()
    if env.json:
        print_json(env, {
            "store": str(store.root), "id": store.id, "layout": store.layout.value,
            "folders": [{"path": list(f.info.path), "role": f.info.role, "messages": f.count,
                         "bytes": f.size} for f in folders],
            "runs": [dict(zip(("id", "kind", "peer", "started", "finished", "status", "stats"),
                              (*r[:6], json.loads(str(r[6]))), strict=True)) for r in runs],
            "problems": [dict(zip(("run", "stage", "folder", "item", "reason", "at"), p, strict=True))
                         for p in problems],
        })  # fmt: skip
        return
    env.out(f"store {store.root} ({store.layout.value}, id {store.id})")
    env.out(f"{'messages':>8}  {'size':>9}  folder")
    for f in sorted(folders, key=lambda f: f.info.path):  # parents before children
        known = effective_role(f.info)  # as `folders` shows it: a known name counts
        role = f" [{known.value}]" if known else ""
        name = f.info.path[-1] if f.info.path else "/"
        indent = "  " * max(len(f.info.path) - 1, 0)
        env.out(f"{f.count:>8}  {size_text(f.size):>9}  {indent}{name}{role}")
    total = sum(f.size for f in folders)
    env.out(f"{sum(f.count for f in folders):>8}  {size_text(total):>9}  "
            f"in {len(folders)} folders")  # fmt: skip
    for r in runs:
        env.out(f"run {r[0]}: {r[1]} {r[2]} {r[3]} -> {r[5]} {_run_counts(str(r[6]))}")
    for p in problems:
        env.out(f"problem (run {p[0]}, {p[1]}) {p[2]} {p[3]}: {p[4]}")


def _run_counts(stats: str) -> str:
    """A run's counts for people: `21 stored, 28.3 KB, 0.3 s` (no per-folder detail)."""
    try:
        data = json.loads(stats)
    except ValueError:
        return stats
    if not isinstance(data, dict):
        return stats
    parts = [f"{v} {k}" for k, v in sorted(data.items())
             if isinstance(v, int) and k not in ("bytes", "already")]  # fmt: skip
    if data.get("already"):
        parts.append(f"{data['already']} already there")
    if data.get("bytes"):
        parts.append(size_text(int(data["bytes"])))
    if isinstance(data.get("seconds"), int | float):
        parts.append(f"{data['seconds']:.1f} s")
    return ", ".join(parts) or "nothing new"


def print_plan(env: Env, entries: Sequence[PlanEntry], pending: dict[int, int]) -> None:
    if env.json:
        print_json(env, [{"from": list(e.source.info.path), "to": list(e.target), "how": e.how,
                          "messages": e.source.count, "bytes": e.source.size,
                          "pending": pending.get(e.source.id, 0)}
                         for e in entries])  # fmt: skip
        return
    for e in entries:
        env.out(f"{path_text(e.source.info.path)} -> {path_text(e.target) or '/'} "
                f"({e.how}; {pending.get(e.source.id, 0)} of {e.source.count} to import, "
                f"{size_text(e.source.size)})")  # fmt: skip
    total = size_text(sum(e.source.size for e in entries))
    env.out(f"{sum(pending.values())} messages to import into {len(entries)} folders "
            f"(the folders hold {sum(e.source.count for e in entries)} messages, {total})")  # fmt: skip

