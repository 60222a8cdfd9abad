"""Safety rails around export: the mistakes one typo in a batch file makes.

- A store holds one source. Exporting another into it (two customers' mail in
  one store, then imported into one mailbox) is refused unless the caller says
  `--add-source`.
- A store this run created is removed again when the source could not be
  reached or read before anything was stored (a wrong password must not leave
  an empty store that the next run then takes for a real one).
- A `--folder`/`--exclude` pattern that matches no folder is said, naming it:
  a typo would otherwise export everything or nothing without a word.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from pstkit.errors import ConnectorError, UsageError
from pstkit.mapping import matches
from pstkit.model import FolderPath
from pstkit.store import MARKER, Store

log = logging.getLogger("pstkit")


def refuse_other_source(store: Store, source_key: str, add_source: bool) -> None:
    """One clear line (exit 2) when the store holds mail of another source."""
    others = sorted(k for k in store.catalog.source_keys() if k != source_key)
    if others and not add_source:
        raise UsageError(
            f"{store.root} already holds mail from {others[0]}"
            f"{f' (and {len(others) - 1} more)' if len(others) > 1 else ''}, not from "
            f"{source_key}: use another store, or --add-source to keep both in this one"
        )


@contextlib.contextmanager
def removed_if_empty(root: Path) -> Iterator[None]:
    """Remove the store at `root` if this run made it and could not reach or read the
    source (connection, login, a source it cannot use) before storing anything. Other
    failures (disk full, Ctrl-C) leave the store as it is, to be looked at or resumed."""
    fresh = not (root / MARKER).exists()
    existed = root.exists()
    try:
        yield
    except (ConnectorError, UsageError):
        if fresh and (root / MARKER).exists() and _empty(root):
            _remove(root, existed)
        raise


def _empty(root: Path) -> bool:
    try:
        with Store.open(root) as st:
            return not st.catalog.source_keys()
    except Exception:  # a store we cannot even open is no use either
        return False


def _remove(root: Path, keep_dir: bool) -> None:
    """The store's content; the directory itself too unless it was there before."""
    if not keep_dir:
        shutil.rmtree(root, ignore_errors=True)
        return
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def unmatched(paths: Sequence[FolderPath], patterns: Sequence[str]) -> list[str]:
    """The patterns that match none of `paths`."""
    return [p for p in patterns if not any(matches(path, [p]) for path in paths)]


def warn_unmatched(paths: Sequence[FolderPath], include: Sequence[str],
                   exclude: Sequence[str], source_key: str) -> None:  # fmt: skip
    for option, patterns in (("--folder", include), ("--exclude", exclude)):
        for p in unmatched(paths, patterns):
            log.warning("%s %r matches no folder of %s (see `pstkit folders %s`)",
                        option, p, source_key, source_key)  # fmt: skip
