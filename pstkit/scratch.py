"""A private temporary SQLite database for working sets too large to hold in memory.

`sqlite3.connect("")` makes a database in a temporary file that SQLite deletes on close; its
page cache is bounded, so memory stays flat whatever the mailbox size. Nothing in it has to
survive a crash (the run that made it is gone with it), so it keeps no journal and never
syncs: a rollback journal would double the writes, fsync would wait on the disk for nothing.
"""

from __future__ import annotations

import sqlite3


def scratch_db(*, cache_kib: int = 2000, threads: bool = False) -> sqlite3.Connection:
    """A new temporary database; `threads`: usable from a thread other than the maker's
    (the caller serialises access). 2,000 KiB is SQLite's own default cache; a cache
    that the small case does not fill makes the peak grow with the folder up to it, so
    callers with quick lookups take less (verify's index, the duplicate index)."""
    db = sqlite3.connect("", check_same_thread=not threads)
    db.execute(f"PRAGMA cache_size = -{int(cache_kib)}")  # negative: KiB, not pages
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db
