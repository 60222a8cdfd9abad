"""The catalog's read queries on the delivery ledger (table `deliveries`), and the
report's look-ups of the items its problems name.

Every query here is answered in SQL with an index, so import, plan and verify hold no
set or map of the whole ledger: their memory stays flat however much was delivered.
"""

from __future__ import annotations

from collections.abc import Sequence

#: (sink, target folder, target id) -> is this target item one this store already took?
#: Not in the v1 schema's first stores: `ensure_indexes` adds it to older ones (an
#: index changes no table, so an older pstkit still reads the store).
LEDGER_TARGET_INDEX = (
    "CREATE INDEX IF NOT EXISTS deliveries_target"
    " ON deliveries(sink_key, target_folder, target_id)"
)


#: a folder's rows in id order (the rowid is appended to each entry): each page of a
#: folder's rows is a range read, not a sort of the whole folder. Not in the first stores.
FOLDER_INDEX = "CREATE INDEX IF NOT EXISTS messages_folder ON messages(folder_id)"


class LedgerQueries:
    """Mixed into `Catalog`, which supplies `_q`."""

    def _q(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        raise NotImplementedError

    def ensure_indexes(self) -> None:
        """Indexes that stores made by an older pstkit lack (an index changes no table)."""
        self._q(LEDGER_TARGET_INDEX)
        self._q(FOLDER_INDEX)

    def delivered_count(self, sink_key: str) -> int:
        rows = self._q(
            "SELECT COUNT(*) FROM deliveries WHERE sink_key=? AND how<>'sending'", (sink_key,)
        )
        return int(str(rows[0][0]))

    def undelivered_count(self, folder_id: int, sink_key: str) -> int:
        """Messages of a folder the ledger of `sink_key` has not delivered (an anti-join)."""
        rows = self._q(
            "SELECT COUNT(*) FROM messages m WHERE m.folder_id=? AND NOT EXISTS (SELECT 1"
            " FROM deliveries d WHERE d.sink_key=? AND d.message=m.id AND d.how<>'sending')",
            (folder_id, sink_key),
        )
        return int(str(rows[0][0]))

    def taken_target_ids(self, sink_key: str, folder: str, target_ids: Sequence[str]) -> set[str]:
        """Which of `target_ids` in target folder `folder` (path text) this store delivered
        or matched to a duplicate: an id alone is unique only within its folder."""
        wanted = [t for t in target_ids if t]
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        rows = self._q(
            "SELECT target_id FROM deliveries WHERE sink_key=? AND target_folder=?"
            f" AND target_id IN ({marks}) AND how IN ('delivered', 'duplicate')",
            (sink_key, folder, *wanted),
        )
        return {str(r[0]) for r in rows}

    def in_flight(self, sink_key: str) -> dict[int, str]:
        """Items of batches in flight when a run died -> the target id a sink reported."""
        rows = self._q(
            "SELECT message, target_id FROM deliveries WHERE sink_key=? AND how='sending'",
            (sink_key,),
        )
        return {int(str(m)): str(t) for m, t in rows}

    def ledger_targets(self, sink_key: str) -> list[tuple[int, str]]:
        """(store folder id, target folder) pairs the ledger delivered messages to, in
        the order of each pair's first message."""
        rows = self._q(
            "SELECT m.folder_id, d.target_folder, MIN(m.id) FROM deliveries d JOIN messages m"
            " ON m.id=d.message WHERE d.sink_key=? AND d.how<>'sending' GROUP BY 1, 2"
            " ORDER BY 3",
            (sink_key,),
        )
        return [(int(str(f)), str(t)) for f, t, _ in rows]

    def delivered_page(self, sink_key: str, after: int, n: int
                       ) -> list[tuple[int, str, str, str]]:  # fmt: skip
        """Up to `n` delivered ledger rows with a target id, of messages after `after` in
        id order (a range of the primary key, so memory stays one page): (message, its
        store folder, its subject, target id)."""
        rows = self._q(
            "SELECT d.message, f.path, m.subject, d.target_id FROM deliveries d"
            " JOIN messages m ON m.id=d.message JOIN folders f ON f.id=m.folder_id"
            " WHERE d.sink_key=? AND d.message>? AND d.how<>'sending' AND d.target_id<>''"
            " ORDER BY d.message LIMIT ?",
            (sink_key, after, n),
        )
        return [(int(str(m)), str(f), str(s), str(t)) for m, f, s, t in rows]

    def delivery(self, sink_key: str, message: int) -> tuple[str, str, str] | None:
        """(target folder, target id, how) of one message's ledger row, if any."""
        rows = self._q(
            "SELECT target_folder, target_id, how FROM deliveries WHERE sink_key=? AND message=?",
            (sink_key, message),
        )
        return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    def delivered_per_folder(self, sink_keys: Sequence[str]) -> dict[int, int]:
        """Store folder id -> how many of its messages the ledger of any of `sink_keys`
        delivered (counted in SQL on the ledger's key, not from a copy of the ledger)."""
        if not sink_keys:
            return {}
        marks = ",".join("?" * len(sink_keys))
        rows = self._q(
            "SELECT m.folder_id, COUNT(*) FROM messages m WHERE EXISTS (SELECT 1 FROM"
            f" deliveries d WHERE d.sink_key IN ({marks}) AND d.message=m.id"
            " AND d.how<>'sending') GROUP BY m.folder_id",
            tuple(sink_keys),
        )
        return {int(str(f)): int(str(n)) for f, n in rows}

    def stored_source_ids(self, folder_text: str, source_key: str, items: Sequence[str]
                          ) -> set[str]:  # fmt: skip
        """Which of `items` (source ids, as an export problem names its item) of source
        `source_key` are stored in the folder (path as the catalog writes it) now: a later
        run took them. Another source's item of the same id (IMAP UIDs) is not them."""
        found: set[str] = set()
        for i in range(0, len(items), 500):  # SQLite's bound-variable limit
            chunk = items[i : i + 500]
            rows = self._q(
                "SELECT m.source_id FROM messages m JOIN folders f ON f.id=m.folder_id"
                " WHERE f.path=? AND m.source_key=?"
                f" AND m.source_id IN ({','.join('?' * len(chunk))})",
                (folder_text, source_key, *chunk),
            )
            found.update(str(r[0]) for r in rows)
        return found

    def dead_run_counts(self, run_id: int, kind: str) -> dict[str, int]:
        """What a run that died committed, from the rows it left (its counts were never
        recorded): an export's stored messages, an import's ledger rows ("sending" ones
        are not delivered: the next run finishes them). A verify leaves no rows."""
        if kind == "export":
            rows = self._q("SELECT 'stored', COUNT(*), TOTAL(size) FROM messages WHERE run_id=?",
                           (run_id,))  # fmt: skip
        elif kind == "import":
            rows = self._q(
                "SELECT d.how, COUNT(*), TOTAL(m.size) FROM deliveries d JOIN messages m"
                " ON m.id=d.message WHERE d.run_id=? AND d.how<>'sending' GROUP BY d.how",
                (run_id,),
            )
        else:
            return {}
        counts = {str(how): int(str(n)) for how, n, _ in rows if int(str(n))}
        nbytes = sum(int(float(str(b))) for how, _, b in rows if how in ("stored", "delivered"))
        return {**counts, "bytes": nbytes} if counts else {}
