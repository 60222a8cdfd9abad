"""`folders --folder/--exclude` and `export --dry-run`: the folders an export
would take, chosen by the very rule the export uses (pstkit.mapping.selected)."""

from __future__ import annotations

from collections.abc import Sequence

from pstkit.cli.env import Env, print_json
from pstkit.cli.report import print_folders
from pstkit.mapping import selected
from pstkit.model import FolderInfo
from pstkit.options import FetchFilter
from pstkit.protocols import Source
from pstkit.rails import warn_unmatched


def chosen(infos: Sequence[FolderInfo], include: Sequence[str], exclude: Sequence[str],
           source_key: str) -> list[FolderInfo]:  # fmt: skip
    """The folders an export with these patterns takes; unmatched patterns are warned."""
    warn_unmatched([i.path for i in infos], include, exclude, source_key)
    return [i for i in infos if selected(i.path, include, exclude)]


def dry_run(env: Env, source: Source, filt: FetchFilter, store: str) -> None:
    """List what `export SOURCE STORE` would fetch; writes nothing, creates no store.
    Counts are the source's folder totals: --since/--before/--max-size are applied
    while fetching, so they are named, not counted."""
    try:
        infos = chosen(source.folders(), filt.include, filt.exclude, source.key)
    finally:
        source.close()
    total = sum(i.message_count or 0 for i in infos if i.selectable)
    limits = [f"{name} {value}" for name, value in (
        ("--since", filt.since and filt.since.date()), ("--before", filt.before and filt.before.date()),
        ("--max-size", filt.max_size)) if value]  # fmt: skip
    if env.json:
        print_json(env, {"store": store, "messages": total, "folders": len(infos),
                         "filters": limits, "list": [list(i.path) for i in infos]})  # fmt: skip
        return
    print_folders(env, infos, {})
    env.out(f"dry run: {total} messages in {len(infos)} folders would be fetched into {store}"
            + (f" (counted before {', '.join(limits)} is applied)" if limits else "") + "; nothing written")
