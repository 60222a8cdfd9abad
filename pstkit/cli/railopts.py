"""Options of the safety rails and repairs (issue 15, points 2 and 7)."""

from __future__ import annotations

from typing import Annotated

import typer

AddSource = Annotated[bool, typer.Option(
    "--add-source",
    help="Allow exporting into a store that already holds mail of another source "
         "(refused by default: one typo in a batch mixes two mailboxes).",
)]  # fmt: skip
Repair = Annotated[bool, typer.Option(
    "--repair",
    help="Also read every stored file of this source and fetch again those whose bytes no "
         "longer match (as `check --read-data` finds). Missing or cut-short files are "
         "fetched again on every export run anyway.",
)]  # fmt: skip
RedeliverMissing = Annotated[bool, typer.Option(
    "--redeliver-missing",
    help="Look every delivered item up in the target (as verify does) and deliver those "
         "that are gone again; never twice, even if the run is cut off.",
)]  # fmt: skip
