"""The PST sink's record of what it wrote in this run: what was added is found at once."""

from __future__ import annotations

from pstkit.converters.pst.write.written import Written
from pstkit.model import FolderPath

INBOX: FolderPath = ("Inbox",)
SENT: FolderPath = ("Sent Items",)


def test_added_items_are_found_at_once_in_order() -> None:
    seen = Written()
    seen.add(INBOX, "id:<a@x>", "0x24", "k1")
    assert seen.dups(INBOX, "id:<a@x>") == ["0x24"]  # not waiting for a batch to fill
    seen.add(INBOX, "id:<a@x>", "0x44", "k2")
    seen.add(SENT, "id:<a@x>", "0x64", "k3")
    assert seen.dups(INBOX, "id:<a@x>") == ["0x24", "0x44"]
    assert seen.dups(SENT, "id:<a@x>") == ["0x64"] and seen.dups(SENT, "id:<b@x>") == []
    assert seen.items(INBOX) == [("0x24", "k1"), ("0x44", "k2")]


def test_many_items_across_the_insert_batches() -> None:
    seen = Written()
    n = Written.PENDING_MAX * 2 + 7
    for i in range(n):
        seen.add(INBOX if i % 3 else SENT, f"id:<{i % 50}@x>", f"{i:#x}", f"k{i}")
    assert seen.items(INBOX) == [(f"{i:#x}", f"k{i}") for i in range(n) if i % 3]
    assert seen.dups(SENT, "id:<0@x>") == [f"{i:#x}" for i in range(0, n, 3) if i % 50 == 0]
    seen.add(SENT, "id:<0@x>", "0xfff0", "last")
    assert seen.dups(SENT, "id:<0@x>")[-1] == "0xfff0"
