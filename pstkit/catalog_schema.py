"""The catalog's tables (store format v1; README "Store format" explains each).

Changing a table means a new store format version: old pstkit must refuse
a store it cannot read correctly, never misread it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pstkit.fsutil import fsync_path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    role TEXT,
    source_name TEXT NOT NULL DEFAULT '',
    container_class TEXT NOT NULL DEFAULT '',
    dirname TEXT NOT NULL UNIQUE,
    selectable INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    peer TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    stats TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS messages(
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    file TEXT NOT NULL,
    offset INTEGER,
    length INTEGER,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT '[]',
    received TEXT,
    message_id TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'mail',
    source_key TEXT NOT NULL,
    source_epoch TEXT NOT NULL DEFAULT '',
    source_id TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    UNIQUE(folder_id, source_key, source_epoch, source_id)
);
CREATE INDEX IF NOT EXISTS messages_digest ON messages(folder_id, sha256);
-- A folder's rows in id order (SQLite appends the rowid to each index entry): the paged
-- reads of import, plan and verify; without it each page sorted the whole folder.
CREATE INDEX IF NOT EXISTS messages_folder ON messages(folder_id);
CREATE TABLE IF NOT EXISTS cursors(
    source_key TEXT NOT NULL,
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    cursor TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    PRIMARY KEY(source_key, folder_id)
);
CREATE TABLE IF NOT EXISTS deliveries(
    sink_key TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages(id),
    target_folder TEXT NOT NULL,
    target_id TEXT NOT NULL DEFAULT '',
    how TEXT NOT NULL DEFAULT 'delivered',
    run_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY(sink_key, message)
);
CREATE INDEX IF NOT EXISTS deliveries_target ON deliveries(sink_key, target_folder, target_id);
CREATE TABLE IF NOT EXISTS problems(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    stage TEXT NOT NULL,
    folder TEXT NOT NULL,
    item TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


def build_new(path: Path) -> None:
    """Write an empty catalog to `path`, which must not exist: built as
    `path.new` without a journal, fsynced, then renamed into place.

    A brand-new catalog needs no rollback journal: until the rename it is a
    temp file nobody reads, and a crash leaves only that temp file (removed
    on the next try). The fsync of the file and one of its directory (the
    rename, and the store's mail/ made just before) replace a FULL commit's 4
    (journal, directory, journal header, db); the marker that follows is
    written only once the catalog is durable under its name, as before."""
    tmp = path.with_name(path.name + ".new")
    for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
        leftover.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")  # the one fsync is ours, below
        db.executescript(f"BEGIN;\n{SCHEMA}\nCOMMIT;")
    finally:
        db.close()
    fsync_path(tmp)
    tmp.rename(path)
    fsync_path(path.parent)
