"""The node database of a PST/OST (MS-PST 2.2): header, node and block B-trees, data blocks.

Read without pypff, for speed: B-tree pages are parsed once and kept in a
bounded cache, lookups bisect a page's sorted keys, data blocks are read
with one `pread` each and checked against their trailer's CRC (a damaged
block raises NdbError, so the caller can fall back to libpff and report what
libpff says). Every offset and length is checked; loops are bounded, so a
damaged or cyclic file ends in NdbError, never in a hang.
Unicode (wVer 23) and ANSI (wVer 14/15) files with no or "permute" encoding.
"""

from __future__ import annotations

import os
import struct
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from typing import BinaryIO

_PAGE = 512
_MAX_PAGES = 2048  # parsed B-tree pages kept (a few MiB at most): memory stays flat
_MAX_BLOCK = 65536  # a data block is at most 8 KiB; anything larger is damage
# MS-PST 5.1 mpbbCrypt: the first 256 bytes (mpbbR) encode; decoding uses their inverse.
_R = bytes.fromhex(
    "41361362a8216ebbf416cc047f64e85d1ef2cb2a74c55e35d295479e962d9a88"
    "4c7d843fdbac31b6485ff6c4d8398be7233b388ec8c1df25b120a546604e9cfb"
    "aad35651457c550007c92b9d859b09a08fadb30f63ab894bd7a7155a716642bf"
    "264a6b98faea7753b270052cfd593a867ece06eb827857c78d43afb41cd45bcd"
    "e2e9274fc3087280cfb0eff5286dbe304d3492d50e3c2232e5e4f99fc2d10a81"
    "12e1ee918376e397e6618a1779a4b7dc907a5c8c02a6ca69de501a1193b95287"
    "58fced1d37491b6ae0293399bd6cd994f340546ff0c673b8d63e6518441fdd67"
    "10f10c19ecae03a1147ba90bfff8a3c0a201f72ebc2468750dfeba2fb5d0da3d"
)
#: NID types (MS-PST 2.2.2.1) of the nodes a folder lists: folders, search folders, messages
NID_FOLDER, NID_SEARCH_FOLDER, NID_MESSAGE = 0x02, 0x03, 0x04


class NdbError(ValueError):
    """The file or a structure in it is not what this reader handles."""


class FormatError(NdbError):
    """A file this reader does not handle (not damage): libpff reads it."""


class PageError(NdbError):
    """A B-tree page is missing (past the end of the file) or damaged."""


#: what reading a damaged structure can raise (NdbError is a ValueError)
READ_ERRORS = (ValueError, struct.error, IndexError, KeyError, OSError, MemoryError,
               OverflowError)

Ref = tuple[int, int]  # (bidData, bidSub) of a node or sub-node


def _decode_table() -> bytes:
    table = bytearray(256)
    for i, b in enumerate(_R):
        table[b] = i
    return bytes(table)


# The PST reader's records are plain classes with __slots__, not dataclasses: making a
# dataclass costs ~0.3-0.6 ms at import, and these are internal to the reader (nothing
# compares, copies with replace() or prints them). See /work/plan/notes/19-startup5.md.


class Layout:
    """Where the two file formats differ (MS-PST 2.2.2): pointer size and page offsets.
    Only the two instances below exist; they are compared with `is`."""

    __slots__ = ("bbt_leaf", "crc_at", "inner", "meta", "nbt_leaf", "page_bid", "page_bid_at",
                 "page_crc", "ptr", "ptype", "size", "sl_start", "trailer")

    def __init__(self, ptr: str, size: int, meta: int, ptype: int, sl_start: int, *,
                 nbt_leaf: str, bbt_leaf: str, inner: str, trailer: int, crc_at: int,
                 page_crc: int, page_bid: str, page_bid_at: int) -> None:
        self.ptr = ptr  # struct code of a BID/IB/NID field: "Q" Unicode, "I" ANSI
        self.size = size  # its size in bytes
        self.meta = meta  # offset of cEnt/cEntMax/cbEnt/cLevel in a B-tree page
        self.ptype = ptype  # offset of ptype/ptypeRepeat
        self.sl_start = sl_start  # first SLENTRY/SIENTRY (Unicode pads the header to 8 bytes)
        self.nbt_leaf = nbt_leaf  # NBTENTRY: nid, bidData, bidSub, nidParent
        self.bbt_leaf = bbt_leaf  # BBTENTRY: bid, ib, cb
        self.inner = inner  # BTENTRY: key, bid, ib
        self.trailer = trailer  # size of a block trailer
        self.crc_at = crc_at  # offset of dwCRC in the trailer
        self.page_crc = page_crc  # offset of a B-tree page's dwCRC (over the bytes before it)
        self.page_bid = page_bid  # struct code and offset of the page's own BID in its trailer
        self.page_bid_at = page_bid_at


UNICODE = Layout("Q", 8, 488, 496, 8, nbt_leaf="<QQQI4x", bbt_leaf="<QQH6x", inner="<QQQ",
                 trailer=16, crc_at=4, page_crc=500, page_bid="<Q", page_bid_at=504)
ANSI = Layout("I", 4, 496, 500, 4, nbt_leaf="<IIII", bbt_leaf="<IIH2x", inner="<III",
              trailer=12, crc_at=8, page_crc=508, page_bid="<I", page_bid_at=504)


class _Page:
    __slots__ = ("keys", "level", "values")

    def __init__(self, level: int, keys: list[int], values: list[tuple[int, ...]]) -> None:
        self.level = level
        self.keys = keys  # sorted (masked) keys
        self.values = values  # leaf: the entry's other fields; inner: (bid, ib)


def parse_page(raw: bytes, lay: Layout, nodes: bool) -> _Page:
    """One node (`nodes`) or block B-tree page (MS-PST 2.2.2.7.7); NdbError when it is not
    one or fails its checksum. Pure."""
    m, t = lay.meta, lay.ptype
    count, size, level = raw[m], raw[m + 2], raw[m + 3]
    fmt = lay.inner if level else (lay.nbt_leaf if nodes else lay.bbt_leaf)
    if raw[t] != raw[t + 1] or raw[t] != (0x81 if nodes else 0x80):
        raise NdbError("not a B-tree page")
    if size != struct.calcsize(fmt) or count * size > m:
        raise NdbError("bad B-tree page")
    crc = struct.unpack_from("<I", raw, lay.page_crc)[0]
    if crc and zlib.crc32(raw[:t], 0xFFFFFFFF) ^ 0xFFFFFFFF != crc:
        raise NdbError("checksum mismatch")
    rows = list(struct.iter_unpack(fmt, raw[: count * size]))
    mask = 0xFFFFFFFF if nodes else ~3
    return _Page(level, [r[0] & mask for r in rows], [r[1:] for r in rows])


class Scanned:
    """Index entries of every intact leaf page in the file, by masked key; where two
    pages hold one key, the newer page (higher page BID) wins."""

    __slots__ = ("blocks", "nodes")

    def __init__(self, nodes: dict[int, tuple[int, ...]] | None = None,
                 blocks: dict[int, tuple[int, ...]] | None = None) -> None:
        self.nodes = {} if nodes is None else nodes
        self.blocks = {} if blocks is None else blocks

    def get(self, key: int, nodes: bool) -> tuple[int, ...] | None:
        return (self.nodes if nodes else self.blocks).get(key)


_SCAN_CHUNK = 1 << 20


def scan_leaves(pread: Callable[[int, int], bytes], lay: Layout) -> Scanned:
    """Read the file once, 512-byte page by page (B-tree pages are aligned so), and
    collect the entries of every leaf page whose type and checksum are right."""
    found: tuple[dict[int, tuple[int, tuple[int, ...]]], ...] = ({}, {})
    t = lay.ptype
    at = 0
    while True:
        chunk = pread(at, _SCAN_CHUNK)
        for off in range(0, len(chunk) - _PAGE + 1, _PAGE):
            kind = chunk[off + t]
            if kind not in (0x80, 0x81) or chunk[off + t + 1] != kind \
                    or chunk[off + lay.meta + 3] != 0:
                continue
            raw = chunk[off : off + _PAGE]
            try:
                page = parse_page(raw, lay, kind == 0x81)
            except (NdbError, struct.error):
                continue
            age = struct.unpack_from(lay.page_bid, raw, lay.page_bid_at)[0]
            table = found[kind == 0x81]
            for key, value in zip(page.keys, page.values, strict=True):
                if key not in table or table[key][0] < age:
                    table[key] = (age, value)
        if len(chunk) < _SCAN_CHUNK:
            break
        at += _SCAN_CHUNK
    return Scanned({k: v for k, (_a, v) in found[1].items()},
                   {k: v for k, (_a, v) in found[0].items()})


class Ndb:
    """Node and block B-tree access for one open file."""

    def __init__(self, f: BinaryIO, nbt: int, bbt: int, decode: bytes | None,
                 lay: Layout) -> None:
        self.f = f
        self.nbt = nbt  # file offset of the node B-tree root page
        self.bbt = bbt
        self.decode = decode  # translate table for permute-encoded data blocks
        self.lay = lay
        self.pages: dict[tuple[int, bool], _Page] = {}
        #: the entries of the leaf pages in `pages`, by masked key * 2 + nodes: the blocks of
        #: one message mostly share a leaf page, so most lookups need no walk down the tree
        self.leaves: dict[int, tuple[int, ...]] = {}
        #: what of the index could not be read (pages past the end of the file, damaged pages)
        self.lost: list[str] = []
        #: nodes whose index entry came from a scanned page, not the tree: maybe an old version
        self.recovered: set[int] = set()
        self._scan: Scanned | None = None

    @classmethod
    def open(cls, f: BinaryIO) -> Ndb:
        f.seek(0)
        head = f.read(_PAGE + 2)
        if len(head) < _PAGE + 2 or head[:4] != b"!BDN":
            raise NdbError("not a PST")
        version = struct.unpack_from("<H", head, 10)[0]
        if version in (14, 15):  # ANSI: ROOT at 0xA4, bCryptMethod at 0x1CD
            lay, crypt, nbt, bbt = ANSI, head[0x1CD], *struct.unpack_from("<4xI4xI", head, 0xB8)
        elif version == 23:  # Unicode: ROOT at 0xB4, bCryptMethod at 0x201
            lay, crypt, nbt, bbt = UNICODE, head[0x201], *struct.unpack_from("<8xQ8xQ", head, 0xD8)
        else:  # 36 = Unicode with 4 KiB pages (OST 2013)
            raise FormatError(f"file format version {version} is not read")
        if crypt not in (0, 1):
            raise FormatError(f"encoding {crypt} not supported")
        if zlib.crc32(head[8:479], 0xFFFFFFFF) ^ 0xFFFFFFFF != struct.unpack_from("<I", head, 4)[0]:
            raise NdbError("header checksum mismatch")  # dwCRCPartial (MS-PST 2.2.2.6)
        ndb = cls(f, nbt, bbt, _decode_table() if crypt == 1 else None, lay)
        # ROOT.ibFileEof: how long the file was when Outlook last wrote it
        eof = struct.unpack_from("<" + lay.ptr, head, 0xB8 if lay is UNICODE else 0xA8)[0]
        size = f.seek(0, os.SEEK_END)
        if size < eof:
            ndb.lost.append(f"the file is cut short: {size} of {eof} bytes "
                            f"({size * 100 // eof} %); what lay past the end is lost")
        return ndb

    def report(self) -> list[str]:
        """What of the file's index could not be read (a truncated or damaged file)."""
        found = [f"{len(self.recovered)} nodes found by scanning the file"] if self.recovered \
            else []
        return [*self.lost, *found]

    def drop_caches(self) -> None:
        self.pages.clear()
        self.leaves.clear()

    def _pread(self, ib: int, size: int) -> bytes:
        try:
            return os.pread(self.f.fileno(), size, ib)
        except (AttributeError, OSError, ValueError):  # not a real file: seek and read
            self.f.seek(ib)
            return self.f.read(size)

    def read(self, ib: int, size: int) -> bytes:
        if not 0 <= ib < 1 << 62:  # a damaged 8-byte offset: pread would overflow
            raise NdbError(f"offset {ib:#x} out of range")
        data = self._pread(ib, size)
        if len(data) != size:
            raise NdbError(f"file truncated at {ib:#x}")
        return data

    def _page(self, ib: int, nodes: bool) -> _Page:
        cached = self.pages.get((ib, nodes))
        if cached is not None:
            return cached
        try:
            page = parse_page(self.read(ib, _PAGE), self.lay, nodes)
        except NdbError as e:
            raise PageError(f"B-tree page at {ib:#x}: {e}") from e
        if len(self.pages) >= _MAX_PAGES:
            self.drop_caches()
        self.pages[(ib, nodes)] = page
        if page.level == 0:
            self.leaves.update(zip([k << 1 | nodes for k in page.keys], page.values, strict=True))
        return page

    def _lookup(self, key: int, nodes: bool) -> tuple[int, ...]:
        """An index entry from the B-tree; where a page on the way is missing or damaged,
        from the leaf pages found by scanning the file (a node found so is `recovered`)."""
        key &= 0xFFFFFFFF if nodes else ~3
        found = self.leaves.get(key << 1 | nodes)
        if found is not None:
            return found
        try:
            return self._walk_to(key, nodes)
        except PageError as e:
            got = self.scanned().get(key, nodes)
            if got is None:
                raise NdbError(f"{key:#x} not found ({e})") from e
            if nodes:
                self.recovered.add(key)
            return got

    def _walk_to(self, key: int, nodes: bool) -> tuple[int, ...]:
        ib = self.nbt if nodes else self.bbt
        for _ in range(16):  # a damaged file must not loop
            page = self._page(ib, nodes)
            i = bisect_right(page.keys, key) - 1
            if i < 0:
                break
            if page.level == 0:
                if page.keys[i] == key:
                    return page.values[i]
                break
            ib = page.values[i][1]
        raise NdbError(f"{key:#x} not found")

    def scanned(self) -> Scanned:
        """The leaf pages of the whole file, read once when the B-trees fail us."""
        if self._scan is None:
            self._scan = scan_leaves(self._pread, self.lay)
        return self._scan

    def node(self, nid: int) -> Ref:
        data, sub, _parent = self._lookup(nid, True)
        return data, sub

    def nodes(self) -> Iterator[tuple[int, int]]:
        """(nid, parent nid) of every node, in NID order (one walk over the node B-tree).
        A page that is missing (a truncated file) or damaged is noted in `lost`; the nodes
        below it are then taken from the scanned leaf pages, those the tree cannot find
        only (a node the intact tree does not hold was deleted: it stays deleted)."""
        seen: set[int] = set()
        stack = [(self.nbt, 0)]
        broken = False
        while stack:
            ib, depth = stack.pop()
            if ib in seen or depth > 16:
                self.lost.append(f"index: node B-tree page at {ib:#x} is cyclic")
                broken = True
                continue
            seen.add(ib)
            try:
                page = self._page(ib, True)
            except PageError as e:
                self.lost.append(f"index: {e}")
                broken = True
                continue
            if page.level:
                stack += [(v[1], depth + 1) for v in reversed(page.values)]
                continue
            for nid, value in zip(page.keys, page.values, strict=True):
                yield nid, value[2]
        if broken:
            yield from self._scanned_nodes()

    def _scanned_nodes(self) -> Iterator[tuple[int, int]]:
        for nid, value in sorted(self.scanned().nodes.items()):
            try:
                self._walk_to(nid, True)
            except PageError:  # its way down the tree is lost: the scan's entry is all there is
                self.recovered.add(nid)
                yield nid, value[2]
            except NdbError:
                continue

    def _raw_block(self, bid: int) -> bytes:
        ib, cb = self._lookup(bid, False)
        lay = self.lay
        if cb > _MAX_BLOCK:
            raise NdbError(f"block {bid:#x} too large")
        total = (cb + lay.trailer + 63) // 64 * 64
        data = self.read(ib, total)
        crc = struct.unpack_from("<I", data, total - lay.trailer + lay.crc_at)[0]
        body = data[:cb]
        if crc and zlib.crc32(body, 0xFFFFFFFF) ^ 0xFFFFFFFF != crc:
            raise NdbError(f"block {bid:#x} checksum mismatch")
        # The trailer's BID (after cb, wSig and, in Unicode files, dwCRC) must be this block:
        # an index entry from an old page may point where the block no longer is.
        named = struct.unpack_from("<" + lay.ptr, data, total - lay.trailer + lay.size)[0]
        if named & ~3 != bid & ~3:
            raise NdbError(f"block {bid:#x} not where the index says")
        return body

    def check(self, bid: int) -> str:
        """Why a data tree cannot be read intact ("" when it can): names the block."""
        try:
            self.blocks(bid)
        except READ_ERRORS as e:
            return str(e)
        return ""

    def blocks(self, bid: int, depth: int = 0, seen: set[int] | None = None) -> list[bytes]:
        """The decoded data blocks of a data tree, one item per block."""
        seen = set() if seen is None else seen
        if bid & ~3 in seen:  # a tree never holds a block twice: damage (could take hours)
            raise NdbError(f"block {bid:#x} repeated in a data tree")
        seen.add(bid & ~3)
        data = self._raw_block(bid)
        if not bid & 2:  # an external block: encoded data
            return [data.translate(self.decode) if self.decode else data]
        if len(data) < 8 or data[0] != 1 or depth > 2:  # XBLOCK, XXBLOCK: two levels at most
            raise NdbError(f"bad XBLOCK {bid:#x}")
        count = struct.unpack_from("<H", data, 2)[0]
        out: list[bytes] = []
        for child in struct.unpack_from(f"<{count}{self.lay.ptr}", data, 8):
            out += self.blocks(child, depth + 1, seen)
        return out

    def subnodes(self, bid: int, depth: int = 0) -> dict[int, Ref]:
        """All sub-nodes of a node (its SLBLOCK/SIBLOCK tree), by NID."""
        if bid == 0:
            return {}
        data = self._raw_block(bid)
        if len(data) < 8 or data[0] != 2 or depth > 1:  # SIBLOCK -> SLBLOCK: one level
            raise NdbError(f"bad sub-node block {bid:#x}")
        level, count = data[1], struct.unpack_from("<H", data, 2)[0]
        n, start, ptr = self.lay.size, self.lay.sl_start, self.lay.ptr
        out: dict[int, Ref] = {}
        if start + (3 if level == 0 else 2) * n * count > len(data):
            raise NdbError(f"bad sub-node block {bid:#x}")
        if level == 0:  # SLENTRY: nid, bidData, bidSub
            for nid, bdata, bsub in struct.iter_unpack("<" + ptr * 3,
                                                       data[start : start + 3 * n * count]):
                out[nid & 0xFFFFFFFF] = (bdata, bsub)
            return out
        for i in range(count):  # SIENTRY: nid, bid of an SLBLOCK
            child = struct.unpack_from("<" + ptr, data, start + 2 * n * i + n)[0]
            out.update(self.subnodes(child, depth + 1))
        return out
