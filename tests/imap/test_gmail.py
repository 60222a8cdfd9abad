"""The Gmail spool: bytes downloaded once per X-GM-MSGID, bounded on disk."""

from __future__ import annotations

import threading
from pathlib import Path

from pstkit.converters.imap.gmail import GmailSpool


def test_spool_serves_bytes_again_and_evicts_oldest(tmp_path: Path) -> None:
    spool = GmailSpool(max_bytes=10, directory=tmp_path)
    spool.put(1, b"aaaa")
    spool.put(2, b"bbbb")
    assert spool.get(1) == b"aaaa"  # 1 is now the most recently used
    spool.put(3, b"cccc")  # 12 bytes > 10: the least recently used (2) goes
    assert spool.get(2) is None
    assert spool.get(1) == b"aaaa" and spool.get(3) == b"cccc"
    assert spool.total_bytes == 8 and spool.hits == 3
    spool.put(4, b"x" * 11)  # larger than the budget: not kept at all
    assert spool.get(4) is None and spool.get(None) is None
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_spool_is_thread_safe(tmp_path: Path) -> None:
    spool = GmailSpool(max_bytes=1_000_000, directory=tmp_path)

    def work(base: int) -> None:
        for i in range(200):
            spool.put(i, b"%d" % i)
            assert spool.get(i) == b"%d" % i

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spool.total_bytes == sum(len(b"%d" % i) for i in range(200))
    spool.close()
