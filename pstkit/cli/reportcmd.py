"""`pstkit report STORE [--target T] --html report.html [--csv report.csv]`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from pstkit.cli.app import app, env_of
from pstkit.cli.env import print_json
from pstkit.errors import EXIT_OK, UsageError
from pstkit.fsutil import write_error
from pstkit.report import csvout, html
from pstkit.report.data import gather
from pstkit.store import Store


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    store: Annotated[str, typer.Argument(help="The store.")],
    target: Annotated[str | None, typer.Option("--target", help="Only this target's imports and verifications (as written to import).", metavar="TARGET")] = None,
    html_file: Annotated[Path | None, typer.Option("--html", help="Write the report as one HTML page.", metavar="FILE")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write its tables as CSV.", metavar="FILE")] = None,
) -> int:  # fmt: skip
    """A migration report to hand to a customer: source, target, runs with times,
    per-folder counts source -> store -> target, problems by folder, date and
    subject, verify results, charts of folder sizes and throughput.

    \b
    Examples:
      pstkit report STORE --html report.html
      pstkit report STORE --target imaps://bob@mail.example.com --csv report.csv
      pstkit --json report STORE
    """
    env = env_of(ctx)
    with Store.open(Path(store.removeprefix("store:")).expanduser()) as st:
        data = gather(st, target)
    if html_file is None and csv_file is None and not env.json:
        raise UsageError("say where to write it: --html FILE and/or --csv FILE (or --json)")
    try:
        if html_file is not None:
            html_file.write_text(html.render(data), encoding="utf-8")
        if csv_file is not None:
            csvout.write(data, csv_file)
    except OSError as e:
        raise write_error(html_file or csv_file or Path("."), e) from e
    if env.json:
        print_json(env, dataclasses.asdict(data))
    else:
        for path in (html_file, csv_file):
            if path is not None:
                env.out(f"wrote {path}")
    return EXIT_OK
