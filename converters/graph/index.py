"""What a target folder already holds, for duplicate checks (pure).

The pipeline asks `find_duplicates` once per message. One request per
question would triple the requests per message under the per-mailbox
limits, so the sink lists a folder once (ids, Message-IDs and pstkit's
stamped keys, 1000 per page) and answers from this index. Items pstkit
delivers later in the same run are the pipeline's own (its ledger knows
them), and ambiguous sends are settled with a live lookup, never from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pstkit.converters.graph import jsonmail as gj


@dataclass
class FolderIndex:
    by_key: dict[str, list[str]] = field(default_factory=dict)
    by_message_id: dict[str, list[str]] = field(default_factory=dict)
    #: half-made copies (attachments still missing when a run died): to delete
    incomplete: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, items: Iterable[dict[str, Any]]) -> FolderIndex:
        index = cls()
        for item in items:
            tid = str(item["id"])
            key = gj.prop_value(item, gj.KEY_PROP) or ""
            if key.endswith(gj.INCOMPLETE):
                index.incomplete.append(tid)
                continue
            if key:
                index.by_key.setdefault(key, []).append(tid)
            mid = str(item.get("internetMessageId") or "")
            if mid:
                index.by_message_id.setdefault(mid, []).append(tid)
        return index

    def lookup(self, key: str, message_id: str) -> list[str]:
        """Items stamped with `key`; failing that, items with the same Message-ID."""
        found = self.by_key.get(key) or (self.by_message_id.get(message_id) if message_id else None)
        return list(found or [])


def listing_params() -> dict[str, str]:
    return {
        "$select": "id,subject,internetMessageId",
        "$top": "1000",
        "$expand": gj.expand_props(gj.KEY_PROP, gj.PR_MESSAGE_SIZE),
    }
