"""libpff (`pypff`) as the fallback reader of a PST/OST. I/O; the only module that uses pypff.

`pstkit.converters.pst.source` reads files through `pst_nodes` (pure Python, faster) and opens
pypff only when it needs it (`Libpff.file`): for files the node reader refuses
(4 KiB-page OSTs, "cyclic" encoding, a bad header: libpff's error is then the
user's), for a damaged folder tree or item (read, or skipped with libpff's own
reason), for `pst_reader=libpff`, and to decompress large RTF bodies in C.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pstkit.converters.pst import speedups
from pstkit.converters.pst import tree as pst_tree
from pstkit.converters.pst.ndb import Entry
from pstkit.converters.pst.nodes import (
    RawAttachment,
    RawItem,
    attachment_table_note,
    recipients_note,
)
from pstkit.converters.pst.props import PR_CONTAINER_CLASS, decode_props
from pstkit.errors import SourceError

log = logging.getLogger("pstkit")
#: what libpff raises for damaged data (libyal reports some failures as MemoryError)
PYPFF_ERRORS = (OSError, ValueError, RuntimeError, MemoryError)


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def check_header(path: Path) -> str:
    """The file's kind from its header ("p" PST, "o" OST, "a" PAB, as libpff says), or a
    one-line SourceError for a missing or unreadable file or one that is no PST/OST."""
    try:
        with path.open("rb") as f:
            head = f.read(10)
    except OSError as e:
        raise SourceError(str(path), e.strerror or one_line(e)) from e
    if head[:4] != b"!BDN":
        raise SourceError(str(path), "not a PST/OST file")
    return {b"SM": "p", b"SO": "o", b"AB": "a"}.get(head[8:10], "")


#: why libpff is needed but missing, as the item's or the file's reason
NO_PYPFF = ("needs libpff, which is not installed (pip install 'pstkit[pst]'); the node "
            "reader could not read it")


def open_pypff(path: Path) -> Any:
    """Open with pypff; every failure (pypff missing too) becomes a one-line SourceError."""
    check_header(path)
    try:
        import pypff  # noqa: PLC0415 - optional: only what the node reader cannot read needs it
    except ImportError as e:
        raise SourceError(str(path), NO_PYPFF) from e
    handle = pypff.file()
    try:
        handle.open(str(path))
    except PYPFF_ERRORS as e:
        if "checksum" in str(e):
            raise SourceError(str(path), "corrupt PST header (checksum mismatch)") from e
        raise SourceError(str(path), f"unreadable PST/OST ({one_line(e)})") from e
    return handle


def entries(obj: Any) -> list[Entry]:
    """(id, type, raw value) of every property; none for a missing object (damaged file)."""
    out: list[Entry] = []
    if obj is None:
        return out
    for rs in obj.record_sets:
        for e in rs.entries:
            out.append((int(e.entry_type), int(e.value_type), e.data or b""))
    return out


def walk(handle: Any, parent: int | None, depth: int, codepage: str,
         handles: dict[int, Any]) -> Iterator[pst_tree.RawFolder]:
    """pypff's folder tree -> RawFolder records (and a nid -> handle map)."""
    if handle is None:
        raise ValueError(f"a sub-folder of node {parent} is missing")
    nid = int(handle.identifier)
    if nid in handles or depth > 64:
        return  # a damaged file can make the tree cyclic
    handles[nid] = handle
    props = decode_props(entries(handle), codepage)
    yield pst_tree.RawFolder(nid, parent, handle.name or "", props.text(PR_CONTAINER_CLASS),
                             int(handle.number_of_sub_messages or 0), props)
    for i in range(int(handle.number_of_sub_folders or 0)):
        yield from walk(handle.get_sub_folder(i), nid, depth + 1, codepage, handles)


def item_body(handle: Any, item_entries: list[Entry]) -> RawItem:
    """Attachments and recipients; a damaged attachment, attachment table or recipient table
    becomes a note (the item is kept with what could be read), never the item's loss."""
    atts: list[RawAttachment] = []
    failed: list[tuple[int, str]] = []
    try:
        count = int(getattr(handle, "number_of_attachments", 0) or 0)
    except PYPFF_ERRORS as e:
        count = 0
        failed.append((-1, attachment_table_note(one_line(e))))
    for i in range(count):
        try:
            att = handle.get_attachment(i)
            att_entries = entries(att)
            data = att.read_buffer(att.size) if att.size else b""
        except PYPFF_ERRORS as e:
            failed.append((i, f"attachment {i + 1} unreadable: {one_line(e)}"))
            continue
        atts.append(RawAttachment(i, int(att.identifier), att_entries, bytes(data or b"")))
    rows: list[list[Entry]] | None
    try:
        recips = getattr(handle, "recipients", None)  # bare pypff.item objects have none
        rows = [] if recips is None else [
            [(int(e.entry_type), int(e.value_type), e.data or b"") for e in rs.entries]
            for rs in recips.record_sets]
    except PYPFF_ERRORS as e:
        rows = None
        failed.append((-1, recipients_note(one_line(e))))
    return RawItem(int(handle.identifier), item_entries, rows or [], atts, failed,
                   recipients_read=rows is not None)


def file_codepage(handle: Any) -> str:
    try:
        cp = handle.ascii_codepage or "cp1252"
    except PYPFF_ERRORS:
        return "cp1252"
    return cp.decode("ascii", "replace") if isinstance(cp, bytes) else str(cp)


def libpff_rtf(handle: Any, packed: bytes) -> bytes | None:
    """libpff's decompression (C, fast); None when it fails (e.g. on a zero CRC) or there is
    no item handle (embedded messages): the caller then decompresses in Python."""
    if handle is None or len(packed) < 8:
        return None
    try:
        data = handle.rtf_body
    except PYPFF_ERRORS:
        return None
    size = int.from_bytes(packed[4:8], "little")
    return bytes(data[:size]) if isinstance(data, bytes) and len(data) >= size else None


#: RTF bodies at least this large are decompressed by libpff (C) rather than in Python, when
#: pstkit's own C twin (converters/pst/_pstspeed.c) was not built: finding the item through
#: pypff costs about as much as decompressing 8 KiB in Python.
LIBPFF_RTF_MIN = 8192


class Libpff:
    """The file opened with pypff on first use (most files never need it), and its folder
    objects by nid: all of them (`walk`), or found on demand (`folder`)."""

    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    def __init__(self, path: Path, codepage: str | None) -> None:
        self.path = path
        self.codepage = codepage  # an explicit --codepage, for the names libpff decodes itself
        self.parents: dict[int, tuple[int, int]] = {}  # nid: (parent, index)
        self.handles: dict[int, Any] = {}
        self.walked = False
        self.opened: Any = None

    def file(self) -> Any:
        """pypff's file object; SourceError (one line) when libpff cannot open it."""
        if self.opened is None:
            self.opened = open_pypff(self.path)
            if self.codepage is not None:
                try:
                    self.opened.set_ascii_codepage(self.codepage)
                except PYPFF_ERRORS:
                    log.warning("libpff cannot decode folder names as %s; names use %s",
                                self.codepage, file_codepage(self.opened))
        return self.opened

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()
            self.opened = None

    def walk(self, codepage: str) -> Iterator[pst_tree.RawFolder]:
        root = self.file().root_folder
        if root is None:
            raise ValueError("no root folder")
        self.handles.clear()
        self.walked = True
        return walk(root, None, 0, codepage, self.handles)

    def folder(self, nid: int, depth: int = 0) -> Any:
        """A folder found by the path the node reader saw (sub-folder indexes are the same:
        libpff also lists sub-folders in NID order); None if libpff disagrees."""
        if nid in self.handles or depth > 64:
            return self.handles.get(nid)
        if nid not in self.parents:
            handle = self.file().root_folder
        else:
            parent, index = self.parents[nid]
            above = self.folder(parent, depth + 1)
            handle = above.get_sub_folder(index) if above is not None else None
        if handle is None or int(handle.identifier) != nid:
            return None
        self.handles[nid] = handle
        return handle

    def item(self, folder: int, index: int) -> Any:
        """The index-th item of a folder; raises what pypff raises."""
        handle = self.handles.get(folder) if self.walked else self.folder(folder)
        if handle is None:
            raise ValueError(f"libpff does not find folder {folder:#x}")
        item = handle.get_sub_message(index)
        if item is None:
            raise ValueError("libpff returned no item")
        return item

    def rtf(self, folder: int, position: int, nid: int, packed: bytes) -> bytes | None:
        """A large RTF body decompressed by libpff; None: decompress it in Python. The item
        is found as the folder's `position`-th sub-item (libpff's sub-messages would first
        classify every item of the folder: milliseconds). Never when LZFu itself runs in C."""
        if speedups.C or len(packed) < 8 or int.from_bytes(packed[4:8], "little") < LIBPFF_RTF_MIN:
            return None
        try:
            handle = self.folder(folder) if position >= 0 else None
            item = handle.get_sub_item(position) if handle is not None else None
            if item is None or int(item.identifier) != nid:
                return None
        except (*PYPFF_ERRORS, SourceError):
            return None
        return libpff_rtf(item, packed)
