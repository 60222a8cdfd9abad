"""The node database of a new Unicode PST (MS-PST 2.2): blocks, data trees, sub-node trees,
the two B-trees, the allocation maps and the header. I/O, append-only.

A file is written front to back: every block goes to the next free 64-byte slot as it is
made (skipping the AMap/PMap pages at their fixed offsets), the B-trees are built bottom-up
from sorted entries once everything else is written, and the header goes last. Until then
the file has no valid header ("!BDN" is missing), so a killed writer leaves a file no
reader mistakes for a PST. Layout as Outlook makes it: header at 0, density list at 0x4200,
AMap every 0x3E000 bytes from 0x4400, PMap every eighth AMap interval from 0x4600, the file
padded to the end of its last AMap's range (an empty Outlook PST is exactly 0x42400 bytes).
FMap pages past the 128 AMaps the header's rgbFM covers (~32 MB) and FPMap pages past the
1,024 PMaps its rgbFP covers (~2.08 GB) are written at their fixed places, so a file may grow
to MAX_EOF (Outlook's default size limit for Unicode PSTs). Data trees up to XXBLOCK depth.
"""

from __future__ import annotations

import os
import struct
import threading
from array import array
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from pstkit.fsutil import start_writeback

from .crc import pst_crc as crc
from .spill import Blocks, Nodes

PAGE = 512
BLOCK_MAX = 8176  # largest block payload: 8192 minus the 16-byte trailer
HEADER_SIZE = 564
DLIST_AT = 0x4200
Data = bytes | memoryview  # a block's bytes: large values go as views of themselves
AMAP_AT = 0x4400
PMAP_AT = 0x4600
AMAP_SPAN = 0x3E000  # bytes one AMap page covers: 496 bytes * 8 bits * 64
PMAP_SPAN = AMAP_SPAN * 8
DATA_AT = 0x4800
FMAP_AT = DATA_AT + AMAP_SPAN * 128  # the first FMap: after the 128 AMaps the header's covers
FMAP_SPAN = AMAP_SPAN * 496  # one FMap byte per AMap
# [MS-PST] 2.2.2.7.6 (FPMap): one bit per PMap page. The header's rgbFP (128 bytes) covers
# the first 1,024 PMaps (~2.08 GB); the first FPMap page follows them, in AMap interval
# 8192, on the page after the AMap, PMap and (where there is one) FMap slots: 0x4A00 +
# 1024 * PMAP_SPAN = 0x7C004A00. One FPMap page (496 * 8 bits) covers 3,968 PMaps (~8.06 GB).
FPMAP_AT = 0x4A00 + 1024 * PMAP_SPAN
FPMAP_SPAN = PMAP_SPAN * 496 * 8
#: the largest file this writer makes: Outlook's default limit for a Unicode PST (the
#: MaxLargeFileSize policy, 51,200 MiB = 50 GiB); the format's own 64-bit offsets allow more,
#: but Outlook would refuse to open a bigger file without that policy changed
MAX_EOF = 50 * 1024**3
PT_BBT, PT_NBT, PT_FMAP, PT_PMAP, PT_AMAP, PT_FPMAP = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85
PT_DL = 0x86
XBLOCK_FANOUT = (BLOCK_MAX - 8) // 8  # BIDs one XBLOCK/XXBLOCK holds (1021)
SL_FANOUT = (BLOCK_MAX - 8) // 24  # SLENTRYs one SLBLOCK holds (340)
SI_FANOUT = (BLOCK_MAX - 8) // 16
NBT_LEAF, BBT_LEAF, BT_INNER = 32, 24, 24  # entry sizes in B-tree pages

_TRAILER = struct.Struct("<HHIQ")  # a block's: cb, wSig, CRC, BID
_PAD = bytes(64)
#: written bytes the kernel is asked to start putting on disk, a step at a time: left to
#: the end, the closing fsync wrote the whole file while nothing else ran (0.25 s of the
#: 5,000 bench messages' ~4.5 s: dirty pages of a fast writer stay in memory until the
#: fsync, far below the kernel's own writeback thresholds on a machine with memory)
WRITEBACK_STEP = 32 << 20


def signature(ib: int, bid: int) -> int:
    """ComputeSig (MS-PST 5.5): a block's or page's wSig from its offset and BID."""
    ib ^= bid
    return ((ib >> 16) ^ ib) & 0xFFFF


def block_size(cb: int) -> int:
    """Bytes a block of `cb` payload bytes takes on disk (trailer, 64-byte multiple)."""
    return (cb + 16 + 63) // 64 * 64


def _reserved(ib: int) -> bool:
    """Is the 512-byte page at `ib` an AMap, PMap, FMap or FPMap page?"""
    return ib >= AMAP_AT and ((ib - AMAP_AT) % AMAP_SPAN == 0 or
                              (ib >= PMAP_AT and (ib - PMAP_AT) % PMAP_SPAN == 0) or
                              (ib >= FMAP_AT and (ib - FMAP_AT) % FMAP_SPAN == 0) or
                              (ib >= FPMAP_AT and (ib - FPMAP_AT) % FPMAP_SPAN == 0))


def next_reserved(ib: int) -> int:
    """The first AMap, PMap, FMap or FPMap page at or after `ib` (counted, not searched
    page by page: a large block would otherwise test thousands of pages)."""
    def after(at: int, span: int) -> int:
        return at if ib <= at else at + -(-(ib - at) // span) * span

    return min(after(AMAP_AT, AMAP_SPAN), after(PMAP_AT, PMAP_SPAN), after(FMAP_AT, FMAP_SPAN),
               after(FPMAP_AT, FPMAP_SPAN))


def map_pages(eof: int) -> list[tuple[int, int]]:
    """(offset, page type) of every AMap, PMap, FMap and FPMap page below `eof` (MS-PST
    2.2.2.7): AMaps every 0x3E000 bytes from 0x4400, a PMap after every eighth, an FMap (one
    byte per AMap: its longest free run) after AMap 128 and then every 496th, an FPMap (one
    bit per PMap) after PMap 1024 and then every 3,968th."""
    out = [(ib, PT_AMAP) for ib in range(AMAP_AT, eof, AMAP_SPAN)]
    out += [(ib, PT_PMAP) for ib in range(PMAP_AT, eof, PMAP_SPAN)]
    out += [(ib, PT_FMAP) for ib in range(FMAP_AT, eof, FMAP_SPAN)]
    return out + [(ib, PT_FPMAP) for ib in range(FPMAP_AT, eof, FPMAP_SPAN)]


def longest_free(chunk: bytes) -> int:
    """The longest run of free (zero) bits in an AMap's bits, as an FMap byte holds it."""
    bits = format(int.from_bytes(chunk, "big"), f"0{len(chunk) * 8}b")
    lo, hi = 0, min(255, len(bits))  # a run of `lo` zeros is there; of `hi + 1`, not
    while lo < hi:  # bisected with substring searches: a split made thousands of strings
        mid = (lo + hi + 1) // 2
        if "0" * mid in bits:
            lo = mid
        else:
            hi = mid - 1
    return lo


def page_trailer(data: bytes, ptype: int, ib: int, bid: int, signed: bool = True) -> bytes:
    """A 512-byte page: its 496 data bytes and trailer (MS-PST 2.2.2.7.1)."""
    assert len(data) == PAGE - 16
    sig = signature(ib, bid) if signed else 0
    return data + struct.pack("<BBHIQ", ptype, ptype, sig, crc(data), bid)


class NdbWriter:
    """Writes blocks as they come and the B-trees, maps and header at `finish`."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.pos = 0  # where the file object's position is
        self.next_ib = DATA_AT
        self.next_bid = 0x100  # block BIDs step by 4; bit 1 marks internal blocks
        self.next_page_bid = 0x100
        self.clear_to = 0  # the next map page after next_ib, where known
        # the B-trees' entries, in spill files until `finish` (spill.py): memory stays
        # flat however large the file grows
        self.blocks, self.nodes = Blocks(f), Nodes(f)
        self.top_index = [0] * 32  # per NID type, the highest index used + 1 (rgnid)
        self.pages = array("Q")  # offsets of the B-tree pages
        self.written_back = DATA_AT  # where the last start_writeback ended
        self._writeback: threading.Thread | None = None
        f.truncate(0)
        self._write(0, b"\0" * DATA_AT)  # header and density list come last

    # --- space ----------------------------------------------------------------------
    def _alloc(self, size: int, align: int) -> int:
        ib = (self.next_ib + align - 1) // align * align
        if ib + size <= self.clear_to:  # before the map page found last time
            self.next_ib = ib + size
            return ib
        while True:
            clash = next_reserved(max(AMAP_AT, ib - ib % PAGE))
            if clash >= ib + size:
                break
            ib = (clash + PAGE + align - 1) // align * align
        self.next_ib = ib + size
        self.clear_to = clash  # no map page between here and there: space only grows
        return ib

    def _write(self, ib: int, data: bytes) -> None:
        if ib != self.pos:
            self.f.seek(ib)
        self.f.write(data)
        self.pos = ib + len(data)

    # --- blocks and trees -----------------------------------------------------------
    def block(self, data: Data, internal: bool = False) -> int:
        """Write one block (MS-PST 2.2.2.8); its BID."""
        if len(data) > BLOCK_MAX:
            raise ValueError(f"block of {len(data)} bytes")
        bid = self.next_bid | (2 if internal else 0)
        self.next_bid += 4
        cb = len(data)
        size = (cb + 16 + 63) // 64 * 64  # block_size
        ib = self._alloc(size, 64)
        sig = ib ^ bid
        # the padding and trailer in one piece after the data: no copy of the data itself
        tail = _PAD[: size - 16 - cb] + _TRAILER.pack(
            cb, ((sig >> 16) ^ sig) & 0xFFFF, crc(data), bid)
        if ib != self.pos:
            self.f.seek(ib)
        self.f.write(data)
        self.f.write(tail)
        self.pos = ib + size
        self.blocks.add(bid, ib, cb)
        if self.pos - self.written_back >= WRITEBACK_STEP:
            self._write_back()
        return bid

    def _write_back(self) -> None:
        """Start the disk writes of what was written since the last call: only a head
        start for `finish`'s fsync, which still makes it durable. On a thread of its own
        (with its own descriptor): sync_file_range waits while the disk's queue is full,
        12 ms a call in the writer's thread (strace -w, 5,000 bench messages). While an
        earlier call still runs, the range waits for the next one."""
        if self._writeback is not None and self._writeback.is_alive():
            return
        self.f.flush()
        start, self.written_back = self.written_back, self.pos
        length, fd = self.pos - start, os.dup(self.f.fileno())

        def write_back() -> None:
            try:
                start_writeback(fd, start, length)
            finally:
                os.close(fd)

        self._writeback = threading.Thread(target=write_back, name="pstkit-writeback",
                                           daemon=True)  # fmt: skip
        self._writeback.start()

    def data(self, data: bytes) -> int:
        """A data tree holding `data`, cut into full blocks."""
        return self.tree(cut(data))

    def tree(self, blocks: Sequence[Data]) -> int:
        """A data tree of these blocks (every one but the last must be BLOCK_MAX long, as
        readers locate bytes by block index): one block, an XBLOCK or an XXBLOCK."""
        if len(blocks) == 1:
            return self.block(blocks[0])
        if any(len(b) != BLOCK_MAX for b in blocks[:-1]):
            raise ValueError("inner data-tree blocks must be full")
        leaves = [(self.block(b), len(b)) for b in blocks]
        level = 1
        while len(leaves) > 1:
            if level > 2:
                raise ValueError("data tree deeper than an XXBLOCK (over ~8 GB)")
            leaves = [self._xblock(leaves[i : i + XBLOCK_FANOUT], level)
                      for i in range(0, len(leaves), XBLOCK_FANOUT)]
            level += 1
        return leaves[0][0]

    def _xblock(self, kids: list[tuple[int, int]], level: int) -> tuple[int, int]:
        total = sum(n for _b, n in kids)
        if total > 0xFFFFFFFF:
            raise ValueError("a value over 4 GiB cannot be stored in a PST")
        head = struct.pack("<BBHI", 1, level, len(kids), total)
        return self.block(head + struct.pack(f"<{len(kids)}Q", *(b for b, _n in kids)),
                          internal=True), total

    def subnodes(self, entries: Sequence[tuple[int, int, int]]) -> int:
        """An SLBLOCK (or SIBLOCK over SLBLOCKs) of (nid, bidData, bidSub), 0 if none."""
        if not entries:
            return 0
        entries = sorted(entries)
        leaves = [(chunk[0][0], self._slblock(chunk)) for chunk in
                  (entries[i : i + SL_FANOUT] for i in range(0, len(entries), SL_FANOUT))]
        if len(leaves) == 1:
            return leaves[0][1]
        if len(leaves) > SI_FANOUT:
            raise ValueError("more sub-nodes than one SIBLOCK holds")
        body = b"".join(struct.pack("<QQ", nid, bid) for nid, bid in leaves)
        return self.block(struct.pack("<BBHI", 2, 1, len(leaves), 0) + body, internal=True)

    def _slblock(self, chunk: Sequence[tuple[int, int, int]]) -> int:
        body = b"".join(struct.pack("<QQQ", *e) for e in chunk)
        return self.block(struct.pack("<BBHI", 2, 0, len(chunk), 0) + body, internal=True)

    def node(self, nid: int, data_bid: int, sub_bid: int = 0, parent: int = 0) -> None:
        self.nodes.add((nid, data_bid, sub_bid, parent))
        kind = nid & 0x1F
        self.top_index[kind] = max(self.top_index[kind], (nid >> 5) + 1)

    # --- the end: B-trees, maps, header ---------------------------------------------
    def finish(self, rgnid: Sequence[int]) -> None:
        """Write both B-trees, the maps and the header, and make it all durable."""
        nbt = self._btree(((n[0], struct.pack("<QQQI4x", *n)) for n in self.nodes.entries()),
                          PT_NBT, NBT_LEAF)
        # every block is referenced once (by the NBT, an XBLOCK or an SLBLOCK): cRef 2,
        # the count Outlook keeps for a block with one owner
        bbt = self._btree(((bid, struct.pack("<QQHH4x", bid, ib, cb, 2))
                           for bid, ib, cb in self.blocks.entries()), PT_BBT, BBT_LEAF)
        end = self.next_ib
        eof = AMAP_AT + ((end - AMAP_AT + AMAP_SPAN - 1) // AMAP_SPAN) * AMAP_SPAN
        free = self._maps(eof)
        dl_bid = self._page_bid()
        dlist = struct.pack("<BBHI", 0, 0, 0, 0).ljust(PAGE - 16, b"\0")
        self._write(DLIST_AT, page_trailer(dlist, PT_DL, DLIST_AT, dl_bid))
        if self._writeback is not None:
            self._writeback.join()
        self.f.truncate(eof)
        self.f.flush()
        os.fsync(self.f.fileno())
        self._write(0, self._header(eof, free, nbt, bbt, rgnid))
        self.f.flush()
        os.fsync(self.f.fileno())
        self.blocks.file.close()
        self.nodes.file.close()

    def _page_bid(self) -> int:
        bid = self.next_page_bid
        self.next_page_bid += 4
        return bid

    def _btree(self, entries: Iterator[tuple[int, bytes]], ptype: int, size: int
               ) -> tuple[int, int]:
        """Pages bottom-up from entries sorted by key; the root's (bid, ib). The leaf level
        is written as the entries come (memory: one page, and a reference per page)."""
        level, per = 0, (PAGE - 24) // size
        refs = array("Q")  # (first key, bid, ib) of each page of the level just written
        chunk: list[tuple[int, bytes]] = []
        for entry in entries:
            chunk.append(entry)
            if len(chunk) == per:
                refs.extend(self._page(chunk, ptype, size, level))
                chunk = []
        if chunk or not refs:
            refs.extend(self._page(chunk, ptype, size, level))
        per = (PAGE - 24) // BT_INNER
        while len(refs) > 3:
            level, below, refs = level + 1, refs, array("Q")
            for i in range(0, len(below), 3 * per):
                part = below[i : i + 3 * per]
                rows = [(part[j], struct.pack("<QQQ", *part[j : j + 3]))
                        for j in range(0, len(part), 3)]
                refs.extend(self._page(rows, ptype, BT_INNER, level))
        return refs[1], refs[2]

    def _page(self, rows: list[tuple[int, bytes]], ptype: int, size: int, level: int
              ) -> tuple[int, int, int]:
        body = b"".join(r for _k, r in rows).ljust(488, b"\0")
        body += struct.pack("<BBBB4x", len(rows), 488 // size, size, level)
        bid, ib = self._page_bid(), self._alloc(PAGE, PAGE)
        self.pages.append(ib)
        self._write(ib, page_trailer(body, ptype, ib, bid))
        return (rows[0][0] if rows else 0), bid, ib

    def _used(self) -> Iterator[tuple[int, int]]:
        """(offset, size) of every block and B-tree page, ascending: space is handed out
        front to back, blocks first, the B-tree pages at `finish`."""
        for _bid, ib, cb in self.blocks.entries():
            yield ib, block_size(cb)
        for ib in self.pages:
            yield ib, PAGE

    def _runs(self) -> Iterator[tuple[int, int]]:
        """`_used` with touching ranges joined (ascending), none across the start of an
        AMap interval: blocks are handed out back to back, so an interval holds a few
        runs, and `_maps` marks a run at a time (a mark per block was half of `finish`,
        0.38 s at 20,000 bench messages)."""
        start = end = 0
        for ib, size in self._used():
            if ib == end and (ib - AMAP_AT) % AMAP_SPAN:
                end += size
                continue
            if end > start:
                yield start, end - start
            start, end = ib, ib + size
        if end > start:
            yield start, end - start

    def _maps(self, eof: int) -> int:
        """Write every AMap, PMap, FMap and FPMap page up to `eof`; the free bytes the AMaps
        show. One AMap interval at a time (a block never crosses into the next interval's
        AMap page), so memory stays at one page however large the file."""
        if eof > MAX_EOF:
            raise ValueError(f"a PST over {MAX_EOF / 2**30:.0f} GiB is past Outlook's limit")
        per, free = PAGE - 16, 0
        longest = bytearray()  # each AMap's longest free run, for the FMap pages
        used = self._runs()
        pending = next(used, None)
        for n, start in enumerate(range(AMAP_AT, eof, AMAP_SPAN)):
            bits = bytearray(per)
            for off in range(0, 4 * PAGE, PAGE):  # the AMap and what follows it there
                if _reserved(start + off):
                    _mark(bits, off, PAGE)
            while pending is not None and pending[0] < start + AMAP_SPAN:
                _mark(bits, pending[0] - start, pending[1])
                pending = next(used, None)
            free += (per * 8 - int.from_bytes(bits, "big").bit_count()) * 64
            longest.append(longest_free(bytes(bits)) if n >= 128 else 0)
            self._write(start, page_trailer(bytes(bits), PT_AMAP, start, start, signed=False))
        for ib in range(PMAP_AT, eof, PMAP_SPAN):  # deprecated; Outlook keeps them all-ones
            self._write(ib, page_trailer(b"\xff" * per, PT_PMAP, ib, ib, signed=False))
        for k, ib in enumerate(range(FMAP_AT, eof, FMAP_SPAN)):
            fmap = bytes(longest[128 + 496 * k : 128 + 496 * (k + 1)])
            self._write(ib, page_trailer(fmap.ljust(per, b"\0"), PT_FMAP, ib, ib, signed=False))
        # FPMap bits say "no free page in this PMap"; the PMaps are all-ones (no free page),
        # and so is the header's rgbFP, as Outlook writes it
        for ib in range(FPMAP_AT, eof, FPMAP_SPAN):
            self._write(ib, page_trailer(b"\xff" * per, PT_FPMAP, ib, ib, signed=False))
        return free

    def _header(self, eof: int, free: int, nbt: tuple[int, int], bbt: tuple[int, int],
                rgnid: Sequence[int]) -> bytes:
        h = bytearray(HEADER_SIZE)
        struct.pack_into("<4s4x2sHHBB", h, 0, b"!BDN", b"SM", 23, 19, 1, 1)
        struct.pack_into("<QI", h, 32, self.next_page_bid, 1)  # bidNextP, dwUnique
        struct.pack_into("<32I", h, 44, *rgnid)
        last_amap = AMAP_AT + (eof - AMAP_AT - 1) // AMAP_SPAN * AMAP_SPAN
        struct.pack_into("<4xQQQQQQQQBBH", h, 180, eof, last_amap, free, 0,
                         nbt[0], nbt[1], bbt[0], bbt[1], 2, 0, 0)  # fAMapValid = VALID_AMAP2
        h[256:512] = b"\xff" * 256  # rgbFM, rgbFP: deprecated, all ones
        h[512], h[513] = 0x80, 0  # bSentinel; bCryptMethod: none
        struct.pack_into("<Q", h, 516, self.next_bid)
        struct.pack_into("<I", h, 4, crc(h[8 : 8 + 471]))
        struct.pack_into("<I", h, 524, crc(h[8 : 8 + 516]))
        return bytes(h)


def cut(data: bytes) -> list[Data]:
    """`data` in blocks' worth for a data tree (all but the last BLOCK_MAX long), as views
    of it: slices would copy every attachment once more (5 % of the writer's thread,
    py-spy)."""
    if len(data) <= BLOCK_MAX:
        return [data]
    view = memoryview(data)
    return [view[i : i + BLOCK_MAX] for i in range(0, len(data), BLOCK_MAX)]


def _mark(bits: bytearray, rel: int, size: int) -> None:
    """Set the AMap bits (most significant bit first) of the 64-byte slots a range uses,
    `rel` bytes from the AMap page."""
    first, last = rel // 64, (rel + size - 1) // 64
    lo, hi = first >> 3, last >> 3
    if lo == hi:
        bits[lo] |= (0xFF >> (first & 7)) & (0xFF << (7 - (last & 7)))
        return
    bits[lo] |= 0xFF >> (first & 7)
    bits[lo + 1 : hi] = b"\xff" * (hi - lo - 1)
    bits[hi] |= (0xFF << (7 - (last & 7))) & 0xFF
