"""What `import … pst:OUT.pst` adds to the command: `--max-size` and `--purview-csv` (handed
to the PST sink as converter options), the items a target would skip named before anything
is written, and the files written with the lines that take them into Exchange."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pstkit.cli.env import Env
from pstkit.mapping import path_text
from pstkit.store import Store

MaxSize = Annotated[str | None, typer.Option(
    "--max-size", metavar="SIZE", help="pst: target: split into OUT-001.pst, OUT-002.pst…, "
    "each a complete PST under SIZE (e.g. 20GB, Microsoft's recommendation per PST).")]
PurviewCsv = Annotated[Path | None, typer.Option(
    "--purview-csv", metavar="FILE", help="pst: target: write Microsoft Purview's PST import "
    "mapping file for the written files into --mailbox (rows are added to an existing file; "
    "TargetRootFolder / merges into the same folders).")]


def pst_opts(opt: list[str] | None, max_size: str | None, purview_csv: Path | None
             ) -> list[str] | None:
    """The two options as the `--opt` pairs the sink reads."""
    extra = [f"max-size={max_size}"] if max_size else []
    extra += [f"purview-csv={purview_csv}"] if purview_csv else []
    return [*(opt or []), *extra] if extra or opt else None


def warn_large(env: Env, store: Store, sink: Any) -> None:
    """Before writing: the store's items the target would not take, by folder/date/subject."""
    limit = getattr(sink, "item_limit", None)
    if limit is None:
        return
    size, why = limit
    for row in store.catalog.larger_than(size):
        m = row.msg
        date = m.received.strftime("%Y-%m-%d %H:%M") if m.received else ""
        env.err(f"pstkit: warning: {path_text(m.folder)} {date} {m.subject!r} "
                f"({m.size / 1e6:.0f} MB): {why}")


def print_written(env: Env, sink: Any) -> None:
    """What a target has to say once it is closed (a PST sink: the files written and the
    lines that take them into Exchange), on stdout: they are results."""
    lines = getattr(sink, "closing_lines", None)
    if lines is not None and not env.json:
        for line in lines():
            env.out(line)


def written_data(sink: Any) -> dict[str, object] | None:
    """The same for `--json`: the "pst" member of the result document."""
    data = getattr(sink, "closing_data", None)
    return data() if data is not None else None
