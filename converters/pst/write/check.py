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

Memory does not grow with the file: blocks, nodes, pages and reference counts live in a
private SQLite database (`checkdb`), the AMaps are compared one page at a time
(`checkmaps`); what stays in memory is a folder's contents table while it is checked.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pstkit.converters.pst.btree import READ_ERRORS, Ndb, NdbError, Ref
from pstkit.converters.pst.ndb import _tc_rows_py
from pstkit.converters.pst.nodes import NodeReader
from pstkit.converters.pst.write.checkdb import State
from pstkit.converters.pst.write.checkmaps import check_maps
from pstkit.converters.pst.write.existing import _names
from pstkit.converters.pst.write.namemap import SOURCE_KEY
from pstkit.converters.pst.write.ndb import (
    DLIST_AT,
    PAGE,
    PT_BBT,
    PT_DL,
    PT_NBT,
    block_size,
    signature,
)

Progress = Callable[[int], None]


def crc(data: bytes | memoryview) -> int:
    """MS-PST's CRC by the stdlib's zlib, as the reader computes it, not the writer's
    (zlib-ng's, crc.py): a fault in the one the writer uses cannot hide from the check."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)
    nodes: int = 0
    blocks: int = 0
    pages: int = 0
    folders: int = 0  # folder nodes (Outlook's own: root, search root… included)
    items: int = 0  # message nodes (not associated/FAI ones)
    size: int = 0

    def bad(self, text: str) -> None:
        if len(self.findings) < 1000:
            self.findings.append(text)


@dataclass
class _File:
    f: BinaryIO
    size: int
    report: Report
    state: State
    progress: Progress | None = None
    foreign: bool = False

    def read(self, ib: int, n: int) -> bytes:
        if not 0 <= ib < 1 << 62:  # a damaged offset: nothing there
            return b""
        try:
            return os.pread(self.f.fileno(), n, ib)
        except (AttributeError, OSError, ValueError):  # not a real file: seek and read
            self.f.seek(ib)
            return self.f.read(n)

    def page_ok(self, page: bytes, ib: int, ptype: int, signed: bool) -> bool:
        return _page_ok(self, page, ib, ptype, signed)


def check_path(path: Path, progress: Progress | None = None) -> Report:
    """`check` of a file by name, strict for a file pstkit wrote, else (Outlook's, another
    tool's) only [MS-PST]'s rules; `progress` is told the bytes of blocks read."""
    with open(path, "rb") as f:
        ours = pstkit_made(f)
        return check(f, strict=ours, progress=progress, foreign=not ours)


def pstkit_made(f: BinaryIO) -> bool:
    """Did pstkit write this file (its name map holds pstkit's stable-key property)?"""
    try:
        return SOURCE_KEY in _names(NodeReader(Ndb.open(f)))
    except READ_ERRORS:
        return False


def check(f: BinaryIO, strict: bool = True, progress: Progress | None = None,
          foreign: bool = False) -> Report:
    """Every finding about a Unicode PST file (an empty list: it passed every check).
    `strict` adds what pstkit's writer promises beyond [MS-PST]: no block is shared
    (Outlook shares the blocks of identical empty tables). `foreign` leaves out what
    pstkit's writer does but other writers need not: every block referenced (Outlook and
    Aspose leave unreferenced blocks behind), PR_MESSAGE_SIZE equal to the bytes on disk
    (Outlook versions count differently), a valid density list (Aspose writes none)."""
    f.seek(0, 2)
    pf = _File(f, f.tell(), Report(size=f.tell()), State(), progress, foreign)
    try:
        _check(pf, strict)
    finally:
        pf.state.close()
    return pf.report


def _check(pf: _File, strict: bool) -> None:
    head = pf.read(0, 564)
    if len(head) < 564 or head[:4] != b"!BDN" or struct.unpack_from("<H", head, 10)[0] != 23:
        pf.report.bad("not a Unicode PST (magic or wVer)")
        return
    _header(pf, head)
    nbt_ib, bbt_ib = struct.unpack_from("<Q", head, 224)[0], struct.unpack_from("<Q", head, 240)[0]
    pf.state.add_blocks(_blocks(pf, _btree(pf, bbt_ib, PT_BBT, 24)))
    pf.state.add_nodes(struct.unpack_from("<QQQI", row)
                       for _key, row in _btree(pf, nbt_ib, PT_NBT, 32))
    pf.state.index()
    pf.report.nodes, pf.report.blocks = pf.state.counts()
    pf.report.folders, pf.report.items = pf.state.count_type(2), pf.state.count_type(4)
    _references(pf, strict)
    check_maps(pf.state, pf.size, head, pf.read, pf.page_ok, pf.report.bad, pf.foreign)
    _messaging(pf)


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
    if not _page_ok(pf, page, DLIST_AT, PT_DL, signed=True) and not pf.foreign:
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
    """Leaf entries in order, checking every page on the way (the pages seen are in the
    database; the stack holds one tree path's siblings)."""
    stack: list[tuple[int, int | None, int | None]] = [(root, None, None)]
    last = -1
    while stack:
        ib, want_key, want_level = stack.pop()
        if ib % PAGE or ib + PAGE > pf.size or not pf.state.add_page(ib):
            pf.report.bad(f"B-tree page {ib:#x} repeated or misplaced")
            continue
        page = pf.read(ib, PAGE)
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


def _blocks(pf: _File, rows: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, int, int]]:
    """The BBT's (bid, ib, cb), each block's trailer checked as it passes."""
    for _key, row in rows:
        bid, ib, cb = struct.unpack_from("<QQH", row)
        total = block_size(cb)
        raw = pf.read(ib, total)
        if pf.progress is not None:
            pf.progress(total)
        if len(raw) != total or ib % 64:
            pf.report.bad(f"block {bid:#x} outside the file")
        else:
            tcb, sig, dcrc, tbid = struct.unpack_from("<HHIQ", raw, total - 16)
            if tcb != cb or tbid != bid or sig != signature(ib, bid) or dcrc != crc(raw[:cb]):
                pf.report.bad(f"block {bid:#x}: trailer (size, BID, signature or CRC) wrong")
        yield bid, ib, cb


def _children(pf: _File, bid: int) -> list[int]:
    """Blocks an internal block refers to (XBLOCK/XXBLOCK children, SL/SI entries)."""
    where = pf.state.block(bid) if bid & 2 else None
    if where is None:
        return []
    data = pf.read(*where)
    if len(data) < 8:
        pf.report.bad(f"internal block {bid:#x} outside the file")
        return []
    kind, level, count = data[0], data[1], struct.unpack_from("<H", data, 2)[0]
    if kind == 1:
        return list(struct.unpack_from(f"<{min(count, (len(data) - 8) // 8)}Q", data, 8))
    if kind == 2 and level == 0:
        rows = struct.iter_unpack("<QQQ", data[8 : 8 + 24 * min(count, (len(data) - 8) // 24)])
        return [b for _n, d, s in rows for b in (d, s) if b]
    if kind == 2:
        count = min(count, (len(data) - 8) // 16)
        return [struct.unpack_from("<Q", data, 8 + 16 * i + 8)[0] for i in range(count)]
    pf.report.bad(f"internal block {bid:#x} of unknown type {kind}")
    return []


def _references(pf: _File, strict: bool) -> None:
    for data, sub in pf.state.node_refs():
        todo = [b for b in (data, sub) if b]
        while todo:
            bid = todo.pop()
            if pf.state.refer(bid) == 1:
                todo += _children(pf, bid)
    for bid in pf.state.missing():
        pf.report.bad(f"block {bid:#x} is referenced but not in the BBT")
    for bid, refs in pf.state.miscounted(strict) if not pf.foreign else ():
        pf.report.bad(f"block {bid:#x} referenced {refs} times")


def _messaging(pf: _File) -> None:
    """Parents exist; tables and counts agree; message sizes are the on-disk sizes."""
    for nid, parent in pf.state.orphans():
        pf.report.bad(f"node {nid:#x}: parent {parent:#x} is not a folder")
    try:
        ndb = Ndb.open(pf.f)
    except READ_ERRORS as e:
        pf.report.bad(f"pstkit's reader cannot open the file: {e}")
        return
    reader = NodeReader(ndb)
    for nid in pf.state.folders():
        try:
            _folder(pf, reader, nid, pf.state.kids(nid))
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
    count, rows = _row_sizes(reader, pf_node(reader, base | 0x0E))
    if len(hierarchy) != len(folders) or _value(props, 0x3602) != len(messages):
        pf.report.bad(f"folder {nid:#x}: hierarchy rows or content count disagree")
    if count != len(messages):
        pf.report.bad(f"folder {nid:#x}: {count} contents rows, {len(messages)} items")
    for m in messages:
        if pf.foreign:
            if m not in rows:
                pf.report.bad(f"message {m:#x}: no row in its folder's contents table")
            continue
        node = pf.state.node(m)
        disk = _disk_size(pf, *node[:2]) if node else 0
        mine = _value(reader.entries(m), 0x0E08)
        if m not in rows or rows[m] != disk or mine != disk:
            pf.report.bad(f"message {m:#x}: PR_MESSAGE_SIZE is not its size on disk ({disk})")


def _row_sizes(reader: NodeReader, ref: Ref | None) -> tuple[int, dict[int | None, int | None]]:
    """A contents table's row count and each row's PR_MESSAGE_SIZE by its row id, read
    straight from the row matrix (`NodeReader._table` keeps every cell of every row: tens of
    MB for a 20,000-item folder)."""
    if ref is None:
        return 0, {}
    heap, subs = reader.heap(ref)
    info = heap.item(heap.root(0x7C))
    if len(info) < 22 or info[0] != 0x7C:
        raise NdbError("bad TCINFO")
    ncols, ceb_at, row_size = info[1], *struct.unpack_from("<HH", info, 6)
    cols = [(tag >> 16, tag & 0xFFFF, ib, cb, ceb_at + bit // 8, 0x80 >> (bit % 8))
            for tag, ib, cb, bit in struct.iter_unpack("<IHBB", info[22 : 22 + 8 * ncols])
            if tag >> 16 in (0x67F2, 0x0E08)]
    hnid = struct.unpack_from("<I", info, 14)[0]
    if hnid & 0x1F and hnid in subs:
        data = reader.ndb.blocks(subs[hnid][0])
    else:
        data = [heap.value(hnid)] if hnid else []
    count, sizes = 0, {}
    for block in data if row_size else ():
        for at in range(0, len(block) - row_size + 1, row_size):
            row = block[at : at + row_size]
            count += 1
            cells = _tc_rows_py([row], row_size, cols, heap.value)[0]
            sizes[_value(cells, 0x67F2)] = _value(cells, 0x0E08)
    return count, sizes


def pf_node(reader: NodeReader, nid: int) -> tuple[int, int]:
    return reader.ndb.node(nid)


def _disk_size(pf: _File, data: int, sub: int) -> int:
    """Bytes of a node's data tree plus, recursively, its sub-nodes' (as Outlook counts)."""
    total = _tree_size(pf, data)
    todo = [sub] if sub else []
    while todo:
        bid = todo.pop()
        ib, cb = pf.state.block(bid) or (0, 0)
        raw = pf.read(ib, cb)
        if len(raw) < 8:
            continue
        width = 24 if raw[1] == 0 else 16
        count = min(struct.unpack_from("<H", raw, 2)[0], (len(raw) - 8) // width)
        if raw[1] == 0:
            for _n, d, s in struct.iter_unpack("<QQQ", raw[8 : 8 + 24 * count]):
                total += _tree_size(pf, d)
                todo += [s] if s else []
        else:
            todo += [struct.unpack_from("<Q", raw, 16 + 16 * i)[0] for i in range(count)]
    return total


def _tree_size(pf: _File, bid: int) -> int:
    ib, cb = pf.state.block(bid) or (0, 0)
    if not bid & 2:
        return cb
    raw = pf.read(ib, 8)
    return int(struct.unpack_from("<I", raw, 4)[0]) if len(raw) == 8 else 0
