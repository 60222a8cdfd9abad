"""A small reader for the parts of a Unicode PST that pypff does not expose (MS-PST 2.2, 2.3).

pypff cannot open an embedded message (attach method 5): it hands out only the
first block of the message's property heap. The rest -- its recipient table,
attachment table, attachments and large values -- lives in sub-nodes of the
attachment. This module follows the node and block B-trees to those sub-nodes
and reads heaps, property contexts and table contexts. Unicode (wVer 23) and
ANSI (wVer 14/15) files with no or "permute" encoding; anything else (4 KiB
pages, "cyclic" encoding) raises NdbError and the caller falls back to what
pypff gives.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from converters.pst_items import attachment_name, file_attachment, item_bodies, mail_message
from converters.pst_mime import Attachment, MapiMessage
from converters.pst_props import HeapError, Props, decode_value, read_heap_pc

_PAGE = 512
_BLOCK_MAX = 8176  # data bytes per block (8192 minus the trailer)
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
_INLINE = {0x0002, 0x0003, 0x000A, 0x000B, 0x0004}  # types whose value sits in the HNID


class NdbError(ValueError):
    """The file or a structure in it is not what this reader handles."""


#: what reading a damaged structure can raise (NdbError is a ValueError)
READ_ERRORS = (ValueError, struct.error, IndexError, KeyError, OSError, MemoryError)


Ref = tuple[int, int]  # (bidData, bidSub) of a node or sub-node


def _decode_table() -> bytes:
    table = bytearray(256)
    for i, b in enumerate(_R):
        table[b] = i
    return bytes(table)


@dataclass(frozen=True)
class Layout:
    """Where the two file formats differ (MS-PST 2.2.2): pointer size and page offsets."""

    ptr: str  # struct code of a BID/IB/NID field: "Q" Unicode, "I" ANSI
    size: int  # its size in bytes
    meta: int  # offset of cEnt/cEntMax/cbEnt/cLevel in a B-tree page
    ptype: int  # offset of ptype/ptypeRepeat
    sl_start: int  # first SLENTRY/SIENTRY (Unicode pads the block header to 8 bytes)


UNICODE = Layout("Q", 8, 488, 496, 8)
ANSI = Layout("I", 4, 496, 500, 4)


@dataclass
class Ndb:
    """Node and block B-tree access for one open file."""

    f: BinaryIO
    nbt: int  # file offset of the node B-tree root page
    bbt: int
    decode: bytes | None  # translate table for permute-encoded data blocks
    lay: Layout

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
            raise NdbError(f"file format version {version} is not read")
        if crypt not in (0, 1):
            raise NdbError(f"encoding {crypt} not supported")
        return cls(f, nbt, bbt, _decode_table() if crypt == 1 else None, lay)

    def _page(self, ib: int) -> tuple[int, list[bytes]]:
        self.f.seek(ib)
        raw = self.f.read(_PAGE)
        m, t = self.lay.meta, self.lay.ptype
        if len(raw) != _PAGE or raw[t] != raw[t + 1]:
            raise NdbError(f"bad B-tree page at {ib:#x}")
        count, size, level = raw[m], raw[m + 2], raw[m + 3]
        if size == 0 or count * size > m:
            raise NdbError(f"bad B-tree page at {ib:#x}")
        return level, [raw[i * size : (i + 1) * size] for i in range(count)]

    def _lookup(self, root: int, key: int, mask: int = ~0) -> bytes:
        ptr, n = "<" + self.lay.ptr, self.lay.size
        ib = root
        for _ in range(16):  # a damaged file must not loop
            level, entries = self._page(ib)
            if level == 0:
                for e in entries:
                    if struct.unpack_from(ptr, e)[0] & mask == key & mask:
                        return e
                break
            below = [e for e in entries if struct.unpack_from(ptr, e)[0] & mask <= key & mask]
            if not below:
                break
            ib = struct.unpack_from(ptr, below[-1], 2 * n)[0]  # BTENTRY: key, BREF(bid, ib)
        raise NdbError(f"{key:#x} not found")

    def node(self, nid: int) -> Ref:
        e = self._lookup(self.nbt, nid, 0xFFFFFFFF)
        ptr = "<" + self.lay.ptr * 2
        data, sub = struct.unpack_from(ptr, e, self.lay.size)
        return data, sub

    def _raw_block(self, bid: int) -> bytes:
        e = self._lookup(self.bbt, bid, ~3)
        ib, cb = struct.unpack_from(f"<{self.lay.ptr}H", e, self.lay.size)
        self.f.seek(ib)
        data = self.f.read(cb)
        if len(data) != cb:
            raise NdbError(f"block {bid:#x} truncated")
        return data

    def blocks(self, bid: int, depth: int = 0) -> list[bytes]:
        """The decoded data blocks of a data tree, one item per block."""
        data = self._raw_block(bid)
        if not bid & 2:  # an external block: encoded data
            return [data.translate(self.decode) if self.decode else data]
        if len(data) < 8 or data[0] != 1 or depth > 2:  # XBLOCK, XXBLOCK: two levels at most
            raise NdbError(f"bad XBLOCK {bid:#x}")
        count = struct.unpack_from("<H", data, 2)[0]
        out: list[bytes] = []
        for child in struct.unpack_from(f"<{count}{self.lay.ptr}", data, 8):
            out += self.blocks(child, depth + 1)
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
        for i in range(count):
            if level == 0:  # SLENTRY: nid, bidData, bidSub
                nid, bdata, bsub = struct.unpack_from("<" + ptr * 3, data, start + 3 * n * i)
                out[nid & 0xFFFFFFFF] = (bdata, bsub)
            else:  # SIENTRY: nid, bid of an SLBLOCK
                child = struct.unpack_from("<" + ptr, data, start + 2 * n * i + n)[0]
                out.update(self.subnodes(child, depth + 1))
        return out


# --- LTP: heap, property context, table context (pure) ------------------------------


@dataclass(frozen=True)
class Heap:
    blocks: tuple[bytes, ...]
    load: Callable[[int], bytes]  # sub-node NID -> its data, for values stored there

    def item(self, hid: int) -> bytes:
        page, index = hid >> 16, (hid >> 5) & 0x7FF
        if page >= len(self.blocks) or index == 0:
            raise NdbError(f"bad HID {hid:#x}")
        block = self.blocks[page]
        ib_map = struct.unpack_from("<H", block, 0)[0]
        start, end = struct.unpack_from("<HH", block, ib_map + 4 + 2 * (index - 1))
        return block[start:end]

    def value(self, hnid: int) -> bytes:
        if hnid & 0x1F == 0:
            return self.item(hnid) if hnid else b""
        return self.load(hnid)

    def root(self, client_sig: int) -> int:
        first = self.blocks[0] if self.blocks else b""
        if len(first) < 12 or first[2] != 0xEC or first[3] != client_sig:
            raise NdbError("not the expected heap")
        return int(struct.unpack_from("<I", first, 4)[0])


def _bth_records(heap: Heap, hid: int) -> list[bytes]:
    head = heap.item(hid)
    if len(head) < 8 or head[0] != 0xB5:
        raise NdbError("bad BTH header")
    size, levels, root = head[1] + head[2], head[3], struct.unpack_from("<I", head, 4)[0]
    nodes = [root] if root else []
    for _ in range(levels):  # intermediate records: key + HID of the level below
        nodes = [struct.unpack_from("<I", r, head[1])[0] for n in nodes
                 for r in _split(heap.item(n), head[1] + 4)]
    return [r for n in nodes for r in _split(heap.item(n), size)]


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data) - size + 1, size)]


def read_pc(heap: Heap, codepage: str) -> Props:
    """A property context (MS-PST 2.3.3) with every value, sub-node ones included."""
    values: dict[int | str, object] = {}
    for rec in _bth_records(heap, heap.root(0xBC)):
        pid, ptype, hnid = struct.unpack_from("<HHI", rec)
        raw = rec[4:8] if ptype in _INLINE else heap.value(hnid)
        values[pid] = decode_value(ptype, raw, codepage)
    return Props(values)


def read_tc(heap: Heap, rows_data: list[bytes] | None, codepage: str) -> list[Props]:
    """The rows of a table context (MS-PST 2.3.4); `rows_data` when the matrix is a sub-node."""
    info = heap.item(heap.root(0x7C))
    if len(info) < 22 or info[0] != 0x7C:
        raise NdbError("bad TCINFO")
    ncols, ceb_at, row_size = info[1], struct.unpack_from("<H", info, 6)[0], struct.unpack_from(
        "<H", info, 8)[0]
    cols = [struct.unpack_from("<IHBB", info, 22 + 8 * i) for i in range(ncols)]
    hnid = struct.unpack_from("<I", info, 14)[0]
    if rows_data is None:
        rows_data = [heap.value(hnid)] if hnid else []
    rows = [r for block in rows_data for r in _split(block, row_size)] if row_size else []
    out = []
    for row in rows:
        values: dict[int | str, object] = {}
        for tag, ib, cb, bit in cols:
            if not row[ceb_at + bit // 8] & (0x80 >> (bit % 8)):
                continue  # the cell is empty
            ptype, cell = tag & 0xFFFF, row[ib : ib + cb]
            if cb == 4 and ptype not in _INLINE:
                cell = heap.value(struct.unpack_from("<I", cell)[0])
            values[tag >> 16] = decode_value(ptype, cell, codepage)
        out.append(Props(values))
    return out


# --- messages stored in sub-nodes ------------------------------------------------------

_RECIPIENTS, _ATTACHMENTS = 0x692, 0x671


@dataclass(frozen=True)
class SubAttachment:
    props: Props
    message: SubMessage | None = None  # attach method 5, read recursively
    error: str = ""  # why an embedded message could not be read


@dataclass(frozen=True)
class SubMessage:
    props: Props
    recipients: tuple[Props, ...]
    attachments: tuple[SubAttachment, ...]


class Reader:
    """Reads messages that live in sub-nodes (embedded messages, recursively)."""

    def __init__(self, ndb: Ndb, codepage: str, names: dict[int, str]) -> None:
        self.ndb, self.codepage, self.names = ndb, codepage, names

    def _heap(self, ref: Ref) -> tuple[Heap, dict[int, Ref]]:
        subs = self.ndb.subnodes(ref[1])

        def load(nid: int) -> bytes:
            if nid not in subs:
                raise NdbError(f"sub-node {nid:#x} missing")
            return b"".join(self.ndb.blocks(subs[nid][0]))

        return Heap(tuple(self.ndb.blocks(ref[0])), load), subs

    def _props(self, props: Props) -> Props:
        """Named properties under the caller's names (see pst_items.NAMED); unknown ones go."""
        return Props({self.names.get(k, k) if isinstance(k, int) else k: v
                      for k, v in props.values.items()
                      if not isinstance(k, int) or k < 0x8000 or k in self.names})

    def message(self, ref: Ref, depth: int = 0) -> SubMessage:
        heap, subs = self._heap(ref)
        props = self._props(read_pc(heap, self.codepage))
        recipients = tuple(self._props(r) for r in self._table(subs.get(_RECIPIENTS)))
        attachments = []
        for row in self._table(subs.get(_ATTACHMENTS)):
            nid = row.integer(0x67F2)  # PR_LTP_ROW_ID: the attachment's sub-node
            if nid is not None and nid in subs:
                attachments.append(self._attachment(subs[nid], depth))
        return SubMessage(props, recipients, tuple(attachments))

    def _attachment(self, ref: Ref, depth: int) -> SubAttachment:
        heap, subs = self._heap(ref)
        props = self._props(read_pc(heap, self.codepage))
        method, obj = props.integer(0x3705), props.binary(0x3701)
        if method == 6 and obj is not None and len(obj) == 8:  # OLE: data in a sub-node
            nid = int(struct.unpack_from("<I", obj)[0])
            data = b"".join(self.ndb.blocks(subs[nid][0])) if nid in subs else b""
            return SubAttachment(Props({**props.values, 0x3701: data}))
        if method != 5:  # PR_ATTACH_METHOD: not an embedded message
            return SubAttachment(props)
        if depth >= 8:
            return SubAttachment(props, None, "embedded messages nested too deep")
        try:
            return SubAttachment(props, self.embedded(ref, depth + 1))
        except READ_ERRORS as e:
            return SubAttachment(props, None, str(e))

    def _table(self, ref: Ref | None) -> list[Props]:
        if ref is None:
            return []
        heap, subs = self._heap(ref)
        info = heap.item(heap.root(0x7C))
        hnid = struct.unpack_from("<I", info, 14)[0] if len(info) >= 18 else 0
        rows = self.ndb.blocks(subs[hnid][0]) if hnid & 0x1F and hnid in subs else None
        return read_tc(heap, rows, self.codepage)

    def embedded(self, attachment: Ref, depth: int = 0) -> SubMessage:
        """The message an attach-method-5 attachment holds (its PR_ATTACH_DATA_OBJ sub-node)."""
        heap, subs = self._heap(attachment)
        obj = read_pc(heap, self.codepage).binary(0x3701)
        if obj is None or len(obj) < 4:
            raise NdbError("attachment has no data object")
        nid = int(struct.unpack_from("<I", obj)[0])
        if nid not in subs:
            raise NdbError(f"embedded message sub-node {nid:#x} missing")
        return self.message(subs[nid], depth)

    def attachment_of(self, message_nid: int, attachment_nid: int) -> Ref:
        """The sub-node of one attachment of a top-level message."""
        subs = self.ndb.subnodes(self.ndb.node(message_nid)[1])
        if attachment_nid not in subs:
            raise NdbError(f"attachment sub-node {attachment_nid:#x} missing")
        return subs[attachment_nid]


def to_mapi(sm: SubMessage, codepage: str) -> MapiMessage:
    """An embedded message (and its own embedded messages) as pst_mime describes it."""
    notes: list[str] = []
    atts: list[Attachment] = []
    for i, a in enumerate(sm.attachments):
        if a.message is not None:
            atts.append(Attachment(attachment_name(a.props), "message/rfc822", b"",
                                   embedded=to_mapi(a.message, codepage)))
        elif a.error:
            notes.append(f"embedded message {i + 1} unreadable: {a.error}")
        else:
            built = file_attachment(a.props, a.props.binary(0x3701) or b"", i, notes)
            atts += [built] if built is not None else []
    bodies = item_bodies(sm.props, notes, codepage)
    return mail_message(sm.props, sm.recipients, bodies, tuple(atts), tuple(notes))


def heap_only(data: bytes, name: str, i: int, codepage: str, names: dict[int, str],
              notes: list[str]) -> tuple[Attachment, Props | None]:
    """The fallback when sub-nodes cannot be read (ANSI files, damage): pypff's attachment
    data is the embedded message's first property block; use what it holds."""
    try:
        pc = read_heap_pc(data, codepage)
    except HeapError as e:
        notes.append(f"embedded message {i + 1} ({name}) unreadable ({e}), kept as bytes")
        return Attachment(name or f"embedded-{i + 1}.bin", "application/octet-stream", data), None
    props = Props({names.get(k, k) if isinstance(k, int) else k: v
                   for k, v in pc.props.values.items()})
    lost = ", ".join(f"{pid:#06x}" for pid in pc.unreadable)
    notes.append(f"embedded message {i + 1}: recipients and attachments not readable"
                 + (f", nor properties {lost}" if lost else ""))
    # The recipient table is a sub-node; Outlook's display strings are all that is left.
    shown = [f"{h}: {props.text(pid)}" for h, pid in (("To", 0x0E04), ("Cc", 0x0E03),
                                                       ("Bcc", 0x0E02)) if props.text(pid)]
    inner_notes = ["recipients not readable" + (f"; Outlook shows {'; '.join(shown)}"
                                                if shown else "")]
    bodies = item_bodies(props, inner_notes, codepage)
    inner = mail_message(props, (), bodies, (), tuple(inner_notes))
    return Attachment(name, "message/rfc822", b"", embedded=inner), props
