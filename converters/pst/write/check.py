"""A structural checker for PST files against [MS-PST] invariants. Reads only; collects every
finding instead of stopping at the first (as `pstkit check` does for stores).

What it proves for a file: both header CRCs; every B-tree page's type, signature, CRC,
entry sizes and key order (and that each child page starts with its parent's key); every
block's trailer (size, signature, BID, CRC); the AMap bits equal the space that pages and
blocks take, and the header's free-space count and end of file agree; every block is
referenced exactly once (by the NBT, an XBLOCK or a sub-node block), every reference
resolves; every folder, search folder and message hangs under a folder that exists;
every folder's hierarchy and contents tables have one row per child folder and message and
its content count says the same; every message's PR_MESSAGE_SIZE (in the message and in
its contents-table row) equals the bytes of its data trees and sub-nodes.
It reads the LTP with pstkit's PST reader (`converters.pst.nodes`), not with the writer.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pstkit.converters.pst.btree import READ_ERRORS, Ndb
from pstkit.converters.pst.nodes import NodeReader
from pstkit.converters.pst.write.ndb import (
    AMAP_AT,
    AMAP_SPAN,
    DLIST_AT,
    FMAP_AT,
    FMAP_SPAN,
    FPMAP_AT,
    FPMAP_SPAN,
    PAGE,
    PMAP_AT,
    PMAP_SPAN,
    PT_AMAP,
    PT_BBT,
    PT_DL,
    PT_FMAP,
    PT_FPMAP,
    PT_NBT,
    PT_PMAP,
    block_size,
    crc,
    longest_free,
    map_pages,
    signature,
)


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)
    nodes: int = 0
    blocks: int = 0
    pages: int = 0

    def bad(self, text: str) -> None:
        if len(self.findings) < 1000:
            self.findings.append(text)


@dataclass
class _File:
    f: BinaryIO
    size: int
    report: Report
    used: list[tuple[int, int]] = field(default_factory=list)  # (ib, size) of pages, blocks
    blocks: dict[int, tuple[int, int]] = field(default_factory=dict)  # bid -> (ib, cb)
    nodes: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # nid -> data,sub,parent

    def read(self, ib: int, n: int) -> bytes:
        self.f.seek(ib)
        return self.f.read(n)


def check(f: BinaryIO, strict: bool = True) -> Report:
    """Every finding about a Unicode PST file (an empty list: it passed every check).
    `strict` adds what pstkit's writer promises beyond [MS-PST]: no block is shared
    (Outlook shares the blocks of identical empty tables)."""
    f.seek(0, 2)
    pf = _File(f, f.tell(), Report())
    head = pf.read(0, 564)
    if len(head) < 564 or head[:4] != b"!BDN" or struct.unpack_from("<H", head, 10)[0] != 23:
        pf.report.bad("not a Unicode PST (magic or wVer)")
        return pf.report
    _header(pf, head)
    nbt_ib, bbt_ib = struct.unpack_from("<Q", head, 224)[0], struct.unpack_from("<Q", head, 240)[0]
    for _key, row in _btree(pf, bbt_ib, PT_BBT, 24):
        bid, ib, cb = struct.unpack_from("<QQH", row)
        pf.blocks[bid] = (ib, cb)
    for _key, row in _btree(pf, nbt_ib, PT_NBT, 32):
        nid, data, sub, parent = struct.unpack_from("<QQQI", row)
        pf.nodes[nid] = (data, sub, parent)
    pf.report.nodes, pf.report.blocks = len(pf.nodes), len(pf.blocks)
    _blocks(pf)
    _references(pf, strict)
    _amap(pf, head)
    _messaging(pf)
    return pf.report


def _header(pf: _File, head: bytes) -> None:
    if crc(head[8 : 8 + 471]) != struct.unpack_from("<I", head, 4)[0]:
        pf.report.bad("header dwCRCPartial wrong")
    if crc(head[8 : 8 + 516]) != struct.unpack_from("<I", head, 524)[0]:
        pf.report.bad("header dwCRCFull wrong")
    if head[512] != 0x80 or head[513] not in (0, 1):
        pf.report.bad("header sentinel or crypt method wrong")
    if struct.unpack_from("<Q", head, 184)[0] != pf.size:
        pf.report.bad("header ibFileEof is not the file size")
    page = pf.read(DLIST_AT, PAGE)
    if not _page_ok(pf, page, DLIST_AT, PT_DL, signed=True):
        pf.report.bad("density list page at 0x4200 bad")


def _page_ok(pf: _File, page: bytes, ib: int, ptype: int, signed: bool) -> bool:
    if len(page) != PAGE:
        return False
    t, t2, sig, dcrc, bid = struct.unpack_from("<BBHIQ", page, 496)
    pf.report.pages += 1
    want_sig = signature(ib, bid) if signed else 0
    good_bid = bid == ib if not signed else True
    return t == t2 == ptype and sig == want_sig and dcrc == crc(page[:496]) and good_bid


def _btree(pf: _File, root: int, ptype: int, leaf: int) -> Iterator[tuple[int, bytes]]:
    """Leaf entries in order, checking every page on the way."""
    stack: list[tuple[int, int | None, int | None]] = [(root, None, None)]
    last = -1
    seen: set[int] = set()
    while stack:
        ib, want_key, want_level = stack.pop()
        if ib in seen or ib % PAGE or ib + PAGE > pf.size:
            pf.report.bad(f"B-tree page {ib:#x} repeated or misplaced")
            continue
        seen.add(ib)
        page = pf.read(ib, PAGE)
        pf.used.append((ib, PAGE))
        if not _page_ok(pf, page, ib, ptype, signed=True):
            pf.report.bad(f"B-tree page {ib:#x}: type, signature or CRC wrong")
        count, most, size, level = page[488:492]
        if want_level is not None and level != want_level:
            pf.report.bad(f"B-tree page {ib:#x}: level {level}, expected {want_level}")
        if size != (leaf if level == 0 else 24) or most != 488 // size or count > most:
            pf.report.bad(f"B-tree page {ib:#x}: bad entry counts")
            continue
        rows = [page[i * size : (i + 1) * size] for i in range(count)]
        keys = [struct.unpack_from("<Q", r)[0] for r in rows]
        if want_key is not None and (not keys or keys[0] != want_key):
            pf.report.bad(f"B-tree page {ib:#x}: first key is not its parent's key")
        if level:
            for r in reversed(rows):
                key, _bid, child = struct.unpack_from("<QQQ", r)
                stack.append((child, key, level - 1))
            continue
        for key, row in zip(keys, rows, strict=True):
            if key <= last:
                pf.report.bad(f"B-tree keys out of order at {key:#x}")
            last = key
            yield key, row


def _blocks(pf: _File) -> None:
    for bid, (ib, cb) in pf.blocks.items():
        total = block_size(cb)
        raw = pf.read(ib, total)
        pf.used.append((ib, total))
        if len(raw) != total or ib % 64:
            pf.report.bad(f"block {bid:#x} outside the file")
            continue
        tcb, sig, dcrc, tbid = struct.unpack_from("<HHIQ", raw, total - 16)
        if tcb != cb or tbid != bid or sig != signature(ib, bid) or dcrc != crc(raw[:cb]):
            pf.report.bad(f"block {bid:#x}: trailer (size, BID, signature or CRC) wrong")


def _children(pf: _File, bid: int) -> list[int]:
    """Blocks an internal block refers to (XBLOCK/XXBLOCK children, SL/SI entries)."""
    if not bid & 2 or bid not in pf.blocks:
        return []
    ib, cb = pf.blocks[bid]
    data = pf.read(ib, cb)
    kind, level, count = data[0], data[1], struct.unpack_from("<H", data, 2)[0]
    if kind == 1:
        return list(struct.unpack_from(f"<{count}Q", data, 8))
    if kind == 2 and level == 0:
        rows = struct.iter_unpack("<QQQ", data[8 : 8 + 24 * count])
        return [b for _n, d, s in rows for b in (d, s) if b]
    if kind == 2:
        return [struct.unpack_from("<Q", data, 8 + 16 * i + 8)[0] for i in range(count)]
    pf.report.bad(f"internal block {bid:#x} of unknown type {kind}")
    return []


def _references(pf: _File, strict: bool) -> None:
    refs: Counter[int] = Counter()
    todo = [b for d, s, _p in pf.nodes.values() for b in (d, s) if b]
    while todo:
        bid = todo.pop()
        refs[bid & ~1] += 1
        if refs[bid & ~1] == 1:
            todo += _children(pf, bid)
    for bid in refs:
        if bid not in pf.blocks:
            pf.report.bad(f"block {bid:#x} is referenced but not in the BBT")
    for bid in pf.blocks:
        if refs[bid] == 0 or (strict and refs[bid] != 1):
            pf.report.bad(f"block {bid:#x} referenced {refs[bid]} times")


def _wanted_bits(pf: _File) -> bytearray:
    """The AMap bits the used space calls for: map pages, B-tree pages and blocks."""
    want = bytearray((pf.size - AMAP_AT) // 64 // 8 + 1)
    pf.used += [(ib, PAGE) for ib, _kind in map_pages(pf.size)]
    for ib, size in pf.used:
        first, last = max(0, (ib - AMAP_AT) // 64), (ib + size - 1 - AMAP_AT) // 64
        while first <= last and first & 7:  # bit by bit up to a byte boundary
            want[first >> 3] |= 0x80 >> (first & 7)
            first += 1
        full = (last + 1 - first) // 8  # then whole bytes
        want[first >> 3 : (first >> 3) + full] = b"\xff" * full
        for slot in range(first + 8 * full, last + 1):
            want[slot >> 3] |= 0x80 >> (slot & 7)
    return want


def _amap(pf: _File, head: bytes) -> None:
    last, free = struct.unpack_from("<QQ", head, 192)
    want = _wanted_bits(pf)
    counted, last_seen = 0, 0
    for n, ib in enumerate(range(AMAP_AT, pf.size, AMAP_SPAN)):
        page = pf.read(ib, PAGE)
        if not _page_ok(pf, page, ib, PT_AMAP, signed=False):
            pf.report.bad(f"AMap page {ib:#x}: type, CRC or BID wrong")
        if page[:496] != bytes(want[n * 496 : (n + 1) * 496]).ljust(496, b"\0"):
            pf.report.bad(f"AMap page {ib:#x} does not match the allocated space")
        counted += sum(8 - bin(b).count("1") for b in page[:496]) * 64
        last_seen = ib
    full = []  # per PMap: no free page in it (all ones), what its FPMap bit says
    for ib in range(PMAP_AT, pf.size, PMAP_SPAN):
        page = pf.read(ib, PAGE)
        if not _page_ok(pf, page, ib, PT_PMAP, signed=False):
            pf.report.bad(f"PMap page {ib:#x} bad")
        full.append(page[:496] == b"\xff" * 496)
    _fmaps(pf, want)
    _fpmaps(pf, full)
    if counted != free:
        pf.report.bad(f"header cbAMapFree {free} but the AMaps show {counted}")
    if last_seen and last != last_seen:
        pf.report.bad("header ibAMapLast wrong")


def _fmaps(pf: _File, want: bytearray) -> None:
    """Every FMap page where [MS-PST] puts one, with each AMap's longest free run."""
    amaps = (pf.size - AMAP_AT) // AMAP_SPAN
    for k, ib in enumerate(range(FMAP_AT, pf.size, FMAP_SPAN)):
        page = pf.read(ib, PAGE)
        if not _page_ok(pf, page, ib, PT_FMAP, signed=False):
            pf.report.bad(f"FMap page {ib:#x}: type, CRC or BID wrong")
        first = 128 + 496 * k
        for i, n in enumerate(range(first, min(first + 496, amaps))):
            if page[i] != longest_free(bytes(want[n * 496 : (n + 1) * 496])):
                pf.report.bad(f"FMap page {ib:#x}: AMap {n}'s longest free run wrong")
                break


def _fpmaps(pf: _File, full: list[bool]) -> None:
    """Every FPMap page where [MS-PST] 2.2.2.7.6 puts one (after the 1,024 PMaps the
    header's rgbFP covers, then every 3,968 PMaps), its bit per PMap set when that PMap
    has no free page."""
    for k, ib in enumerate(range(FPMAP_AT, pf.size, FPMAP_SPAN)):
        page = pf.read(ib, PAGE)
        if not _page_ok(pf, page, ib, PT_FPMAP, signed=False):
            pf.report.bad(f"FPMap page {ib:#x}: type, CRC or BID wrong")
            continue
        first = 1024 + 3968 * k
        for i, n in enumerate(range(first, min(first + 3968, len(full)))):
            if bool(page[i >> 3] & (0x80 >> (i & 7))) != full[n]:
                pf.report.bad(f"FPMap page {ib:#x}: PMap {n}'s bit wrong")
                break


def _messaging(pf: _File) -> None:
    """Parents exist; tables and counts agree; message sizes are the on-disk sizes."""
    kids: dict[int, list[int]] = {}
    for nid, (_d, _s, parent) in pf.nodes.items():
        if nid & 0x1F in (2, 3, 4) and parent:
            if parent not in pf.nodes or parent & 0x1F != 2:
                pf.report.bad(f"node {nid:#x}: parent {parent:#x} is not a folder")
            elif parent != nid:
                kids.setdefault(parent, []).append(nid)
    try:
        ndb = Ndb.open(pf.f)
    except READ_ERRORS as e:
        pf.report.bad(f"pstkit's reader cannot open the file: {e}")
        return
    reader = NodeReader(ndb)
    for nid in (n for n in pf.nodes if n & 0x1F == 2):
        try:
            _folder(pf, reader, nid, kids.get(nid, []))
        except READ_ERRORS as e:
            pf.report.bad(f"folder {nid:#x} unreadable: {e}")


def _value(entries: list[tuple[int, int, bytes]], pid: int) -> int | None:
    raw = next((r for p, _t, r in entries if p == pid), None)
    return None if raw is None else int.from_bytes(raw[:4], "little")


def _folder(pf: _File, reader: NodeReader, nid: int, kids: list[int]) -> None:
    props = reader.entries(nid)
    messages = [k for k in kids if k & 0x1F == 4]
    folders = [k for k in kids if k & 0x1F in (2, 3)]
    base = nid & ~0x1F
    hierarchy = reader._table(pf_node(reader, base | 0x0D))
    contents = reader._table(pf_node(reader, base | 0x0E))
    if len(hierarchy) != len(folders) or _value(props, 0x3602) != len(messages):
        pf.report.bad(f"folder {nid:#x}: hierarchy rows or content count disagree")
    if len(contents) != len(messages):
        pf.report.bad(f"folder {nid:#x}: {len(contents)} contents rows, {len(messages)} items")
    rows = {_value(r, 0x67F2): r for r in contents}
    for m in messages:
        row = rows.get(m)
        disk = _disk_size(pf, *pf.nodes[m][:2])
        mine = _value(reader.entries(m), 0x0E08)
        if row is None or _value(row, 0x0E08) != disk or mine != disk:
            pf.report.bad(f"message {m:#x}: PR_MESSAGE_SIZE is not its size on disk ({disk})")


def pf_node(reader: NodeReader, nid: int) -> tuple[int, int]:
    return reader.ndb.node(nid)


def _disk_size(pf: _File, data: int, sub: int) -> int:
    """Bytes of a node's data tree plus, recursively, its sub-nodes' (as Outlook counts)."""
    total = _tree_size(pf, data)
    todo = [sub] if sub else []
    while todo:
        bid = todo.pop()
        ib, cb = pf.blocks.get(bid, (0, 0))
        raw = pf.read(ib, cb)
        count = struct.unpack_from("<H", raw, 2)[0]
        if raw[1] == 0:
            for _n, d, s in struct.iter_unpack("<QQQ", raw[8 : 8 + 24 * count]):
                total += _tree_size(pf, d)
                todo += [s] if s else []
        else:
            todo += [struct.unpack_from("<Q", raw, 16 + 16 * i)[0] for i in range(count)]
    return total


def _tree_size(pf: _File, bid: int) -> int:
    ib, cb = pf.blocks.get(bid, (0, 0))
    if not bid & 2:
        return cb
    return int(struct.unpack_from("<I", pf.read(ib, 8), 4)[0])
