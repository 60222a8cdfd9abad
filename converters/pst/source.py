"""Outlook PST/OST files as a source. Thin I/O shell.

Folders and items are read from the file's node database by `pst_nodes`
(pure Python; about twice as fast as going through libpff's objects, and its
memory stays flat). pypff is the fallback, opened only when needed: for files
the node reader refuses (4 KiB-page OSTs, "cyclic" encoding, a bad header:
libpff's error is then the user's), for a folder tree or an item it cannot
read (the item is then read, or skipped with libpff's reason, as before), and
to decompress large RTF bodies in C. `--opt pst_reader=libpff` reads all
through pypff. Either reader gives raw `(id, type, bytes)` properties to
`pst_read`, which decodes (`pst_props`) and maps (`pst_items`, `pst_ical`) an
item; `pst_tree` lays out folders and roles, `pst_mime` builds the bytes.
Embedded messages are read through `pst_ndb` in both cases.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pstkit.converters.pst import libpff as lib
from pstkit.converters.pst import tree as pst_tree
from pstkit.converters.pst.btree import READ_ERRORS, FormatError, Ndb
from pstkit.converters.pst.heap import HeapError
from pstkit.converters.pst.items import filter_reason, item_kind
from pstkit.converters.pst.mime import build_message
from pstkit.converters.pst.named import NAMED
from pstkit.converters.pst.ndb import Entry, Reader
from pstkit.converters.pst.nodes import (
    NID_MESSAGE_STORE,
    NID_NAME_TO_ID_MAP,
    NID_ROOT_FOLDER,
    RECOVERED_NOTE,
    Children,
    NodeReader,
    children,
    noted,
)
from pstkit.converters.pst.options import reader_option, system_option
from pstkit.converters.pst.props import (
    PR_CONTAINER_CLASS,
    PR_MESSAGE_CLASS,
    PR_PST_PASSWORD,
    PS_PSTKIT,
    PS_PUBLIC_STRINGS,
    codec_option,
    codepage_name,
    decode_props,
    parse_name_map,
    password_set,
)
from pstkit.converters.pst.read import Fallback, Item, ItemReader, Raw
from pstkit.errors import SourceError
from pstkit.location import Location
from pstkit.model import Fetched, FetchResult, FolderInfo, MessageMeta, Skipped
from pstkit.options import ConnectOptions, FetchFilter

if TYPE_CHECKING:
    from pstkit.protocols import NotExported, Source

log = logging.getLogger("pstkit")
_FOLDER_KINDS = (0x02, 0x03)  # NID types listed as sub-folders: folders, search folders


class PstSource:
    """Reads one PST/OST file. Folders below the IPM subtree, then the rest."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        path = Path(location.path).expanduser().resolve()
        self.key = f"pst:{path}"
        self.max_connections = 1
        self._path = path
        self._reader: Reader | None = None
        self._raw: BinaryIO | None = None
        forced = options.codepage or options.extra.get("codepage")
        #: an explicit --codepage wins over the code pages the file and its items name
        self._forced = codec_option(forced, str(path)) if forced else None
        kind = lib.check_header(path)
        self._lib = lib.Libpff(path, self._forced)  # pypff: opened only when needed
        self._nodes: tuple[NodeReader, Children] | None = None
        #: why the node reader could not read the file, when that was damage: every item
        #: libpff then reads is noted (libpff checks no block checksums)
        self._file_damage = ""
        #: what every item lost because a node of the whole file is damaged
        self._file_notes: list[str] = []
        #: folders whose own properties (name, class) the node reader could not read: why
        self._damaged_folders: dict[int, str] = {}
        include_system = system_option(options, str(path))
        #: checks the blocks of each item libpff reads (it checks no CRC), when it can
        self._checker: NodeReader | None = None
        if reader_option(options, str(path)) == "nodes":
            self._nodes = self._open_nodes()
            self._checker = self._nodes[0] if self._nodes is not None else None
        else:
            self._checker = self._open_checker()
        if self._nodes is None:
            self._lib.file()  # libpff reads the file, or its error is the user's
        try:
            self._codepage = self._forced or codepage_name(None, self._file_codepage())
            self._named = self._read_name_map()
            self._items = ItemReader(self._codepage, self._forced is not None, self._named,
                                     self._ndb)
            store = decode_props(self._node_entries(
                NID_MESSAGE_STORE, "message_store", "folder roles may be guessed wrong"),
                self._codepage)
            tree = pst_tree.layout(self._folders(), store)
            self._tree = [n for n in tree if include_system or not n.system]
            #: items of Outlook's own folders, left out on purpose (counted, not problems)
            self._system_items = sum(n.info.message_count or 0 for n in tree
                                     if n.system and not include_system)
            #: the folder that holds items of the top-of-store folder itself, if any
            self.top_folder = next((n.info.path for n in self._tree if n.top), None)
        except (*lib.PYPFF_ERRORS, HeapError) as e:
            self.close()
            raise SourceError(str(path), f"unreadable PST/OST ({lib.one_line(e)})") from e
        #: PidTagPstPassword is set: Outlook asks for a password, libpff does not need it.
        self.password_protected = password_set(store.integer(PR_PST_PASSWORD), kind)
        if self.password_protected:
            log.warning("%s is password-protected; libpff reads it without the password", path)
        for lost in self._nodes[0].ndb.report() if self._nodes is not None else []:
            log.warning("%s: %s", path, lost)

    def not_exported(self) -> dict[str, int]:
        """Items left out on purpose: Outlook's own folders (see `pst_system`)."""
        return {"system items, not exported": self._system_items} if self._system_items \
            else {}

    @property
    def _file(self) -> Any:
        """pypff's file object, opened on first use."""
        return self._lib.file()

    def _file_codepage(self) -> str:
        """libpff's code page for ANSI strings: Windows-1252 unless set (it is not in the
        file), so the node reader need not open pypff to ask."""
        return lib.file_codepage(self._file) if self._nodes is None else "cp1252"

    def _open_nodes(self) -> tuple[NodeReader, Children] | None:
        """The node reader and every folder's children; None when it cannot read the file."""
        try:
            self._raw = self._path.open("rb")
            ndb = Ndb.open(self._raw)
            return NodeReader(ndb), children(ndb)
        except READ_ERRORS as e:
            log.debug("%s: read through libpff (%s)", self._path, lib.one_line(e))
            if not isinstance(e, FormatError):
                self._file_damage = lib.one_line(e)
            return None

    def _node_entries(self, nid: int, attr: str, lost: str) -> list[Entry]:
        """A special node's properties; pypff's `attr` of the file when the node reader fails;
        none when neither can read it: then every item says what is `lost`."""
        why = ""
        if self._nodes is not None:
            try:
                return self._nodes[0].entries(nid)
            except READ_ERRORS as e:
                why = lib.one_line(e)
        try:
            return lib.entries(getattr(self._file, attr))
        except (*lib.PYPFF_ERRORS, SourceError) as e:
            if not why:
                raise
            note = f"{lost} (the file's node {nid:#x} is damaged: {why}; libpff: {lib.one_line(e)})"
            log.warning("%s: %s", self._path, note)
            self._file_notes.append(note)
            return []

    def _folders(self) -> list[pst_tree.RawFolder]:
        if self._nodes is not None:
            try:
                return list(self._node_walk(*self._nodes, NID_ROOT_FOLDER, None, set()))
            except READ_ERRORS as e:
                log.debug("%s: folder tree read through libpff (%s)", self._path, e)
                self._nodes = None  # counts and items then all come from pypff
                self._file_damage = lib.one_line(e)
        return list(self._lib.walk(self._codepage))

    def _node_walk(self, reader: NodeReader, kids: Children, nid: int, parent: int | None,
                   seen: set[int], depth: int = 0) -> Iterator[pst_tree.RawFolder]:
        """The folder tree as libpff walks it: depth first, sub-folders in NID order."""
        if nid in seen or depth > 64:
            return  # a damaged file can make the tree cyclic
        seen.add(nid)
        try:
            props = decode_props(reader.entries(nid), self._codepage)
            name = props.text(0x3001)
        except READ_ERRORS as e:  # one damaged folder: its items are still there
            self._damaged_folders[nid] = lib.one_line(e)
            log.warning("%s: folder %#x is damaged (%s)", self._path, nid, lib.one_line(e))
            props, name = decode_props([], self._codepage), f"(damaged folder {nid})"
        yield pst_tree.RawFolder(nid, parent, name, props.text(PR_CONTAINER_CLASS),
                                 len(kids.messages.get(nid, ())), props)
        for index, child in enumerate(kids.folders.get(nid, ())):
            self._lib.parents.setdefault(child, (nid, index))
            yield from self._node_walk(reader, kids, child, nid, seen, depth + 1)

    def _read_name_map(self) -> dict[int, str]:
        """Named property id -> our key (see pst_items.NAMED, plus "Keywords")."""
        streams = {pid: raw for pid, _t, raw in self._node_entries(
            NID_NAME_TO_ID_MAP, "name_to_id_map", "named properties (categories, contact and "
            "event fields) are lost")}
        keywords, uid = (PS_PUBLIC_STRINGS, "Keywords"), (PS_PSTKIT, "Uid")
        mid, tzid = (PS_PSTKIT, "MessageId"), (PS_PSTKIT, "Tzid")
        names = parse_name_map(streams.get(2, b""), streams.get(3, b""), streams.get(4, b""),
                               {*NAMED, keywords, uid, mid, tzid})
        out = {pid: NAMED[name] for name, pid in names.items() if name in NAMED}
        if keywords in names:
            out[names[keywords]] = "Keywords"
        if uid in names:  # the iCalendar UID of an item pstkit wrote
            out[names[uid]] = "PstkitUid"
        if mid in names:  # and the Message-ID its stored form had
            out[names[mid]] = "PstkitMessageId"
        if tzid in names:  # and the TZID its series had (the file has Windows' name)
            out[names[tzid]] = "PstkitTzid"
        return out

    # --- Source protocol -------------------------------------------------

    def folders(self) -> list[FolderInfo]:
        return [node.info for node in self._tree]

    def fetch(
        self,
        folder: FolderInfo,
        cursor: str | None,
        filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:
        node = self._node(folder)
        start = int(cursor) if cursor and cursor.isdigit() else 0
        for index in range(start, node.info.message_count or 0):
            result = self._fetch_one(node, index, filt, known)
            if result is not None:
                yield result

    def kinds(self, folder: FolderInfo) -> dict[str, int]:
        """Item count per kind ("mail", "contact"… and "skipped"), for `pstkit folders`."""
        node = self._node(folder)
        counts: Counter[str] = Counter()
        for index in range(node.info.message_count or 0):
            try:
                kind = item_kind(self._items.props(self._class_entries(node.nid, index)).text(
                    PR_MESSAGE_CLASS))
            except (*lib.PYPFF_ERRORS, *READ_ERRORS, SourceError):
                kind = None
            counts["skipped" if kind is None or node.skip_reason else kind.value] += 1
        return dict(counts)

    def _class_entries(self, folder: int, index: int) -> list[Entry]:
        """An item's own properties only (enough for its class); raises on damage."""
        if self._nodes is not None:
            try:
                return self._nodes[0].entries(self._nodes[1].messages[folder][index])
            except READ_ERRORS:
                pass  # libpff decides
        return lib.entries(self._lib.item(folder, index))

    def _node(self, folder: FolderInfo) -> pst_tree.Node:
        node = next((n for n in self._tree if n.info.path == folder.path), None)
        if node is None:
            raise SourceError(str(self._path), f"no folder {'/'.join(folder.path)!r}")
        return node

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        """Nothing to do: a PST is never changed."""

    def close(self) -> None:
        self._lib.close()
        if self._nodes is not None:  # the caches go now, not when the collector gets here
            self._nodes[0].ndb.drop_caches()
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    # --- items -----------------------------------------------------------

    def _locate(self, folder: int, index: int, known: Container[tuple[str, str]] = ()
                ) -> Raw | str | None:
        """The index-th item of a folder (None: known; a string: why it cannot be read)."""
        if self._nodes is not None:
            reader, kids = self._nodes
            nid = kids.messages[folder][index]
            if ("", str(nid)) in known:
                return None
            lenient = False
            try:
                item = reader.item(nid)
            except READ_ERRORS as e:  # damage: libpff reads it or says why it cannot
                notes = [*self._item_notes(folder, nid), *self._damage(nid, e)]
                got = self._pypff_item(folder, index, nid, notes=notes)
                if not isinstance(got, str):
                    return got
                try:  # neither can: keep what the node reader can still read, with notes
                    item, lenient = reader.item(nid, lenient=True), True
                except READ_ERRORS:
                    return f"unreadable item ({lib.one_line(e)}); libpff: {got}"
            item = noted(item, self._item_notes(folder, nid))
            return Raw(str(nid), lambda: item.entries, lambda: item, lambda packed: self._lib.rtf(
                folder, kids.position(folder, nid), nid, packed), not lenient)
        notes = [f"read by libpff only, whose reading checks no block checksums: the file's "
                 f"index is damaged ({self._file_damage})"] if self._file_damage else []
        notes += self._file_notes
        return self._pypff_item(folder, index, None, known, notes)

    def _item_notes(self, folder: int, nid: int) -> list[str]:
        """What the item's place in the file's damaged index says about it."""
        assert self._nodes is not None
        notes = [*self._file_notes]
        if nid in self._nodes[0].ndb.recovered:
            notes.append(RECOVERED_NOTE)
        above, depth = folder, 0
        while above not in self._damaged_folders and above in self._lib.parents and depth < 64:
            above, depth = self._lib.parents[above][0], depth + 1
        if above in self._damaged_folders:
            notes.append(f"the name and class of its folder {above} are lost (damaged: "
                         f"{self._damaged_folders[above]}); that folder is named by its id")
        return notes

    def _damage(self, nid: int, error: BaseException | None) -> list[str]:
        """Notes for an item libpff reads: the parts the node reader finds damaged."""
        found = self._checker.damage(nid) if self._checker is not None else []
        return [f"{note}; libpff read it anyway, so it may be changed" for note in found] or (
            [f"read by libpff after the node reader found damage ({lib.one_line(error)})"]
            if error is not None else [])

    def _open_checker(self) -> NodeReader | None:
        """With pst_reader=libpff: the node reader, only to check each item's blocks."""
        try:
            self._raw = self._path.open("rb")
            return NodeReader(Ndb.open(self._raw))
        except READ_ERRORS:
            return None

    def _pypff_item(self, folder: int, index: int, nid: int | None,
                    known: Container[tuple[str, str]] = (), notes: Sequence[str] = ()
                    ) -> Raw | str | None:
        try:
            handle = self._lib.item(folder, index)
            source_id = str(handle.identifier)
        except (*lib.PYPFF_ERRORS, SourceError) as e:
            return f"unreadable item: {lib.one_line(e)}"
        if nid is not None and source_id != str(nid):
            return f"unreadable item: node {nid:#x} is damaged"
        if ("", source_id) in known:
            return None
        if nid is None and self._nodes is None and source_id.isdigit():  # read by libpff alone
            notes = [*notes, *self._damage(int(source_id), None)]
        return Raw(source_id, lambda: lib.entries(handle),
                   lambda: noted(lib.item_body(handle, []), notes),
                   lambda packed: lib.libpff_rtf(handle, packed), False)

    def _fetch_one(self, node: pst_tree.Node, index: int, filt: FetchFilter,
                   known: Container[tuple[str, str]]) -> FetchResult | None:
        cursor = str(index + 1)
        path = node.info.path
        raw = self._locate(node.nid, index, known)
        if raw is None:
            return None
        if isinstance(raw, str):
            return Skipped(MessageMeta(folder=path, source_id=f"index-{index}"), raw, cursor)
        try:
            item = self._items.read(raw, path, node.skip_reason)
        except Fallback as e:
            nid = int(raw.source_id)
            notes = self._damage(nid, e.__cause__ or e)
            again = self._pypff_item(node.nid, index, nid, notes=notes)
            if not isinstance(again, Raw):
                return Skipped(MessageMeta(path, raw.source_id), str(again), cursor)
            item = self._items.read(again, path, node.skip_reason)
        return self._result(item, filt, cursor)

    def _result(self, item: Item, filt: FetchFilter, cursor: str) -> FetchResult:
        if item.message is None:
            return Skipped(item.meta, item.reason, cursor)
        reason = filter_reason(item.meta, filt)
        if reason:
            return Skipped(item.meta, reason, cursor)
        try:
            raw = build_message(item.message)
        except (ValueError, UnicodeError, LookupError) as e:  # a bug or odd data: one item
            return Skipped(item.meta, f"cannot build MIME: {lib.one_line(e)}", cursor)
        meta = replace(item.meta, size=len(raw))
        if filt.max_size is not None and len(raw) > filt.max_size:
            return Skipped(meta, f"larger than {filt.max_size} bytes ({len(raw)})", cursor)
        notes = tuple(n for name, n in item.message.extra_headers if name == "X-Pstkit-Note")
        return Fetched(meta, raw, cursor, notes)  # notes: also in the message's own header

    def _ndb(self) -> Reader:
        """The sub-node reader: the node reader's, else opened on first use."""
        if self._reader is None:
            if self._nodes is not None:
                ndb = self._nodes[0].ndb
            else:
                self._raw = self._raw or self._path.open("rb")
                ndb = Ndb.open(self._raw)
            self._reader = Reader(ndb, self._codepage, self._named)
        return self._reader


if TYPE_CHECKING:
    _: type[Source] = PstSource
    _n: type[NotExported] = PstSource
