"""The checker's allocation maps: AMap bits against the space pages and blocks take, the
header's free-space count, PMaps, FMaps (each AMap's longest free run) and FPMaps.

Streamed: the used extents come in file order from the checker's database and are turned
into one AMap page's 496 bytes of wanted bits at a time, so memory does not grow with the
file (a whole file's bits were 100 MB at 50 GB). What is kept per AMap is one byte (its
longest free run, for the FMaps), per PMap one bool (for the FPMaps)."""

from __future__ import annotations

import heapq
import struct
from array import array
from collections.abc import Callable, Iterator

from pstkit.converters.pst.write.checkdb import State
from pstkit.converters.pst.write.ndb import (
    AMAP_AT,
    AMAP_SPAN,
    FMAP_AT,
    FMAP_SPAN,
    FPMAP_AT,
    FPMAP_SPAN,
    PAGE,
    PMAP_AT,
    PMAP_SPAN,
    PT_AMAP,
    PT_FMAP,
    PT_FPMAP,
    PT_PMAP,
    block_size,
    longest_free,
    map_pages,
)

SLOTS = 496 * 8  # 64-byte slots one AMap page covers
Bad = Callable[[str], None]
PageOk = Callable[[bytes, int, int, bool], bool]
Read = Callable[[int, int], bytes]


def _slots(state: State, size: int) -> Iterator[tuple[int, int]]:
    """(first, last) AMap slot of every page and block, in file order."""
    maps = ((ib, -1) for ib, _kind in sorted(map_pages(size)))
    for ib, cb in heapq.merge(state.used(), maps):
        total = PAGE if cb < 0 else block_size(cb)
        if ib + total > size:
            continue  # outside the file: a finding of its own
        yield max(0, (ib - AMAP_AT) // 64), (ib + total - 1 - AMAP_AT) // 64


def _mark(bits: bytearray, first: int, last: int) -> None:
    """Set slots first..last (relative to this AMap page, already clipped)."""
    while first <= last and first & 7:  # bit by bit up to a byte boundary
        bits[first >> 3] |= 0x80 >> (first & 7)
        first += 1
    full = (last + 1 - first) // 8  # then whole bytes
    bits[first >> 3 : (first >> 3) + full] = b"\xff" * full
    for slot in range(first + 8 * full, last + 1):
        bits[slot >> 3] |= 0x80 >> (slot & 7)


def wanted(state: State, size: int) -> Iterator[bytes]:
    """Per AMap page in file order: the 496 bytes of bits the used space calls for."""
    pending: list[tuple[int, int]] = []  # extents reaching past the current AMap
    extents = _slots(state, size)
    nxt = next(extents, None)
    for n in range(len(range(AMAP_AT, size, AMAP_SPAN))):
        lo, hi = n * SLOTS, (n + 1) * SLOTS - 1
        bits = bytearray(496)
        while nxt is not None and nxt[0] <= hi:
            pending.append(nxt)
            nxt = next(extents, None)
        keep = []
        for first, last in pending:
            _mark(bits, max(first, lo) - lo, min(last, hi) - lo)
            if last > hi:
                keep.append((first, last))
        pending = keep
        yield bytes(bits)


def check_maps(state: State, size: int, head: bytes, read: Read, page_ok: PageOk,
               bad: Bad, foreign: bool = False) -> None:
    """`foreign`: space marked used that nothing uses (Outlook leaks some) is no finding,
    used space marked free is; FMaps are compared with the AMaps' own bits."""
    last, free = struct.unpack_from("<QQ", head, 192)
    runs = array("B")
    counted, last_seen = 0, 0
    for ib, want in zip(range(AMAP_AT, size, AMAP_SPAN), wanted(state, size), strict=True):
        page = read(ib, PAGE)
        if not page_ok(page, ib, PT_AMAP, False):
            bad(f"AMap page {ib:#x}: type, CRC or BID wrong")
        if foreign and any(w & ~p for w, p in zip(want, page[:496], strict=False)):
            bad(f"AMap page {ib:#x} marks used space free")
        elif not foreign and page[:496] != want:
            bad(f"AMap page {ib:#x} does not match the allocated space")
        counted += sum(8 - bin(b).count("1") for b in page[:496]) * 64
        runs.append(longest_free(page[:496].ljust(496, b"\xff") if foreign else want))
        last_seen = ib
    full = []  # per PMap: no free page in it (all ones), what its FPMap bit says
    for ib in range(PMAP_AT, size, PMAP_SPAN):
        page = read(ib, PAGE)
        if not page_ok(page, ib, PT_PMAP, False):
            bad(f"PMap page {ib:#x} bad")
        full.append(page[:496] == b"\xff" * 496)
    _fmaps(size, runs, read, page_ok, bad)
    _fpmaps(size, full, read, page_ok, bad)
    if counted != free:
        bad(f"header cbAMapFree {free} but the AMaps show {counted}")
    if last_seen and last != last_seen:
        bad("header ibAMapLast wrong")


def _fmaps(size: int, runs: array[int], read: Read, page_ok: PageOk, bad: Bad) -> None:
    """Every FMap page where [MS-PST] puts one, with each AMap's longest free run."""
    amaps = (size - AMAP_AT) // AMAP_SPAN
    for k, ib in enumerate(range(FMAP_AT, size, FMAP_SPAN)):
        page = read(ib, PAGE)
        if not page_ok(page, ib, PT_FMAP, False):
            bad(f"FMap page {ib:#x}: type, CRC or BID wrong")
        first = 128 + 496 * k
        for i, n in enumerate(range(first, min(first + 496, amaps))):
            if page[i] != runs[n]:
                bad(f"FMap page {ib:#x}: AMap {n}'s longest free run wrong")
                break


def _fpmaps(size: int, full: list[bool], read: Read, page_ok: PageOk, bad: Bad) -> None:
    """Every FPMap page where [MS-PST] 2.2.2.7.6 puts one (after the 1,024 PMaps the
    header's rgbFP covers, then every 3,968 PMaps), its bit per PMap set when that PMap
    has no free page."""
    for k, ib in enumerate(range(FPMAP_AT, size, FPMAP_SPAN)):
        page = read(ib, PAGE)
        if not page_ok(page, ib, PT_FPMAP, False):
            bad(f"FPMap page {ib:#x}: type, CRC or BID wrong")
            continue
        first = 1024 + 3968 * k
        for i, n in enumerate(range(first, min(first + 3968, len(full)))):
            if bool(page[i >> 3] & (0x80 >> (i & 7))) != full[n]:
                bad(f"FPMap page {ib:#x}: PMap {n}'s bit wrong")
                break
