"""Outlook PST/OST files as a source (libpff through `pypff`). Thin I/O shell.

This is the only module that touches pypff. It reads raw MAPI properties
(`record_sets`) and hands them to pure modules: `pst_props` decodes values,
`pst_tree` lays out folders and roles, `pst_items`/`pst_ical` map items,
`pst_mime` builds bytes, `rtf` decompresses bodies. Embedded messages, which
pypff cannot open, are read from the file's sub-nodes by `pst_ndb`. pypff's
exceptions become pstkit errors (whole file) or per-item skips.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pypff

from converters import pst_tree
from converters.pst_ical import EXCEPTION_CLASS, event_ics, meeting_method
from converters.pst_items import (
    NAMED,
    attachment_name,
    file_attachment,
    filter_reason,
    item_bodies,
    item_flags,
    item_kind,
    mail_message,
    received_time,
    wrap_item,
)
from converters.pst_mime import Attachment, MapiMessage, build_message
from converters.pst_ndb import READ_ERRORS, Ndb, Reader, heap_only, to_mapi
from converters.pst_props import (
    ATTACH_EMBEDDED_MSG,
    PR_ATTACH_METHOD,
    PR_CONTAINER_CLASS,
    PR_MESSAGE_CLASS,
    PR_MESSAGE_CODEPAGE,
    PR_PST_PASSWORD,
    PS_PUBLIC_STRINGS,
    HeapError,
    Props,
    codec_option,
    codepage_name,
    decode_props,
    parse_name_map,
    password_set,
    strip_subject_prefix,
)
from pstkit.errors import SourceError
from pstkit.location import Location
from pstkit.model import Fetched, FetchResult, FolderInfo, ItemKind, MessageMeta, Skipped
from pstkit.options import ConnectOptions, FetchFilter

if TYPE_CHECKING:
    from pstkit.protocols import Source

log = logging.getLogger("pstkit")
#: what libpff raises for damaged data (libyal reports some failures as MemoryError)
_PYPFF_ERRORS = (OSError, ValueError, RuntimeError, MemoryError)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _open(path: Path) -> Any:
    """Open with pypff; every failure becomes a one-line SourceError."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise SourceError(str(path), e.strerror or _one_line(e)) from e
    if head != b"!BDN":
        raise SourceError(str(path), "not a PST/OST file")
    handle = pypff.file()
    try:
        handle.open(str(path))
    except _PYPFF_ERRORS as e:
        if "checksum" in str(e):
            raise SourceError(str(path), "corrupt PST header (checksum mismatch)") from e
        raise SourceError(str(path), f"unreadable PST/OST ({_one_line(e)})") from e
    return handle


def _entries(obj: Any) -> list[tuple[int, int, bytes]]:
    """(id, type, raw value) of every property; none for a missing object (damaged file)."""
    out: list[tuple[int, int, bytes]] = []
    if obj is None:
        return out
    for rs in obj.record_sets:
        for e in rs.entries:
            out.append((int(e.entry_type), int(e.value_type), e.data or b""))
    return out


@dataclass
class _Extras:
    """What reading one item's attachments found besides the attachments themselves."""

    notes: list[str] = field(default_factory=list)  # problems, kept in X-Pstkit-Note
    exceptions: list[Props] = field(default_factory=list)  # changed occurrences of a series


@dataclass(frozen=True)
class _Item:
    """One item as read: its bytes-to-be, or why it cannot be."""

    meta: MessageMeta
    message: MapiMessage | None
    reason: str = ""


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
        self._file = _open(path)
        try:
            if self._forced is not None:
                self._set_pypff_codepage(self._forced)
            self._codepage = self._forced or codepage_name(None, self._file_codepage())
            self._named = self._read_name_map()
            store = decode_props(_entries(self._file.message_store), self._codepage)
            self._handles: dict[int, Any] = {}
            root = self._file.root_folder
            if root is None:
                raise ValueError("no root folder")
            raw = list(self._walk(root, None, 0))
            self._tree = pst_tree.layout(raw, store)
            #: the folder that holds items of the top-of-store folder itself, if any
            self.top_folder = next((n.info.path for n in self._tree if n.top), None)
        except (*_PYPFF_ERRORS, HeapError) as e:
            self._file.close()
            raise SourceError(str(path), f"unreadable PST/OST ({_one_line(e)})") from e
        #: PidTagPstPassword is set: Outlook asks for a password, libpff does not need it.
        self.password_protected = password_set(store.integer(PR_PST_PASSWORD), self._kind())
        if self.password_protected:
            log.warning("%s is password-protected; libpff reads it without the password", path)

    def _set_pypff_codepage(self, codec: str) -> None:
        """Folder names are decoded by libpff itself; it knows the Windows code pages only."""
        try:
            self._file.set_ascii_codepage(codec)
        except _PYPFF_ERRORS:
            log.warning("libpff cannot decode folder names as %s; names use %s", codec,
                        self._file_codepage())

    def _kind(self) -> str:
        try:
            kind = self._file.content_type
        except _PYPFF_ERRORS:
            return ""
        if isinstance(kind, int):  # pypff gives the header byte: ord("p") PST, ord("o") OST
            return chr(kind)
        return kind.decode("ascii", "replace") if isinstance(kind, bytes) else str(kind or "")

    def _file_codepage(self) -> str:
        try:
            cp = self._file.ascii_codepage or "cp1252"
        except _PYPFF_ERRORS:
            return "cp1252"
        return cp.decode("ascii", "replace") if isinstance(cp, bytes) else str(cp)

    def _walk(self, handle: Any, parent: int | None, depth: int) -> Iterator[pst_tree.RawFolder]:
        """pypff's folder tree -> RawFolder records (and a nid -> handle map)."""
        if handle is None:
            raise ValueError(f"a sub-folder of node {parent} is missing")
        nid = int(handle.identifier)
        if nid in self._handles or depth > 64:
            return  # a damaged file can make the tree cyclic
        self._handles[nid] = handle
        props = decode_props(_entries(handle), self._codepage)
        yield pst_tree.RawFolder(nid, parent, handle.name or "", props.text(PR_CONTAINER_CLASS),
                                 int(handle.number_of_sub_messages or 0), props)
        for i in range(int(handle.number_of_sub_folders or 0)):
            yield from self._walk(handle.get_sub_folder(i), nid, depth + 1)

    def _read_name_map(self) -> dict[int, str]:
        """Named property id -> our key (see pst_items.NAMED, plus "Keywords")."""
        streams = {pid: raw for pid, _t, raw in _entries(self._file.name_to_id_map)}
        names = parse_name_map(streams.get(2, b""), streams.get(3, b""), streams.get(4, b""))
        out = {pid: NAMED[(g, k)] for (g, k), pid in names.items() if isinstance(k, int)
               and (g, k) in NAMED}
        if (PS_PUBLIC_STRINGS, "Keywords") in names:
            out[names[(PS_PUBLIC_STRINGS, "Keywords")]] = "Keywords"
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
                item = self._handles[node.nid].get_sub_message(index)
                kind = item_kind(self._props(item).text(PR_MESSAGE_CLASS))
            except _PYPFF_ERRORS:
                kind = None
            counts["skipped" if kind is None or node.skip_reason else kind.value] += 1
        return dict(counts)

    def _node(self, folder: FolderInfo) -> pst_tree.Node:
        node = next((n for n in self._tree if n.info.path == folder.path), None)
        if node is None:
            raise SourceError(str(self._path), f"no folder {'/'.join(folder.path)!r}")
        return node

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        """Nothing to do: a PST is never changed."""

    def close(self) -> None:
        self._file.close()
        if self._raw is not None:
            self._raw.close()

    # --- items -----------------------------------------------------------

    def _fetch_one(self, node: pst_tree.Node, index: int, filt: FetchFilter,
                   known: Container[tuple[str, str]]) -> FetchResult | None:
        cursor = str(index + 1)
        path = node.info.path
        try:
            handle = self._handles[node.nid].get_sub_message(index)
            if handle is None:
                raise ValueError("libpff returned no item")
            source_id = str(handle.identifier)
        except _PYPFF_ERRORS as e:
            meta = MessageMeta(folder=path, source_id=f"index-{index}")
            return Skipped(meta, f"unreadable item: {_one_line(e)}", cursor)
        if ("", source_id) in known:
            return None
        item = self._read_item(handle, path, source_id, node.skip_reason)
        if item.message is None:
            return Skipped(item.meta, item.reason, cursor)
        reason = filter_reason(item.meta, filt)
        if reason:
            return Skipped(item.meta, reason, cursor)
        try:
            raw = build_message(item.message)
        except (ValueError, UnicodeError, LookupError) as e:  # a bug or odd data: one item
            return Skipped(item.meta, f"cannot build MIME: {_one_line(e)}", cursor)
        meta = replace(item.meta, size=len(raw))
        if filt.max_size is not None and len(raw) > filt.max_size:
            return Skipped(meta, f"larger than {filt.max_size} bytes ({len(raw)})", cursor)
        notes = tuple(n for name, n in item.message.extra_headers if name == "X-Pstkit-Note")
        return Fetched(meta, raw, cursor, notes)  # notes: also in the message's own header

    def _props(self, obj: Any) -> Props:
        entries = _entries(obj)
        cp = self._codepage
        for pid, _t, raw in entries:  # ANSI strings are in the item's own code page
            if pid == PR_MESSAGE_CODEPAGE and len(raw) >= 4 and self._forced is None:
                cp = codepage_name(int.from_bytes(raw[:4], "little"), self._codepage)
        named: list[tuple[int | str, int, bytes]] = [
            (self._named.get(pid, pid), t, raw) for pid, t, raw in entries
            if pid < 0x8000 or pid in self._named
        ]
        return decode_props(named, cp)

    def _read_item(self, handle: Any, path: tuple[str, ...], source_id: str,
                   skip_reason: str) -> _Item:
        try:
            props = self._props(handle)
        except _PYPFF_ERRORS as e:
            return _Item(MessageMeta(path, source_id), None, f"unreadable item: {_one_line(e)}")
        mclass = props.text(PR_MESSAGE_CLASS)
        kind = item_kind(mclass)
        meta = MessageMeta(
            folder=path, source_id=source_id, flags=item_flags(props),
            keywords=frozenset(props.strings("Keywords")), received=received_time(props),
            kind=kind or ItemKind.MAIL, subject=strip_subject_prefix(props.text(0x0037)),
        )
        if skip_reason:
            return _Item(meta, None, skip_reason)
        if kind is None:
            return _Item(meta, None, f"{mclass or 'item without class'}: not a user item")
        try:
            return _Item(meta, self._message(handle, props, kind, source_id))
        except Exception as e:
            return _Item(meta, None, f"unreadable item ({type(e).__name__}: {_one_line(e)})")

    def _message(self, handle: Any, props: Props, kind: ItemKind, uid: str) -> MapiMessage:
        extras = _Extras()
        attachments = self._attachments(handle, extras)
        notes = extras.notes
        if kind is not ItemKind.MAIL:
            return wrap_item(props, kind, f"pst-{uid}", attachments, tuple(notes),
                             tuple(extras.exceptions))
        method = meeting_method(props.text(PR_MESSAGE_CLASS))
        if method:  # a meeting request/reply/cancellation carries its event, as iMIP does
            ics = event_ics(props, f"pst-{uid}", method).encode("utf-8")
            ctype = f"text/calendar; charset=utf-8; method={method}"
            attachments = (*attachments, Attachment("meeting.ics", ctype, ics))
        recipients = tuple(self._props_list(handle))
        return mail_message(props, recipients, self._bodies(props, notes, handle), attachments,
                            tuple(notes))

    def _props_list(self, handle: Any) -> Iterator[Props]:
        recips = getattr(handle, "recipients", None)  # bare pypff.item objects have none
        if recips is None:
            return
        for rs in recips.record_sets:
            entries = [(int(e.entry_type), int(e.value_type), e.data or b"") for e in rs.entries]
            yield decode_props(entries, self._codepage)

    def _bodies(self, props: Props, notes: list[str], handle: Any = None) -> tuple[Any, ...]:
        return item_bodies(props, notes, self._codepage, lambda p: _libpff_rtf(handle, p))

    def _attachments(self, handle: Any, extras: _Extras) -> tuple[Attachment, ...]:
        out = []
        count = int(getattr(handle, "number_of_attachments", 0) or 0)
        for i in range(count):
            try:
                att = handle.get_attachment(i)
                att_props = self._props(att)
                data = att.read_buffer(att.size) if att.size else b""
            except _PYPFF_ERRORS as e:
                extras.notes.append(f"attachment {i + 1} unreadable: {_one_line(e)}")
                continue
            where = (int(handle.identifier), int(att.identifier))
            built = self._attachment(att_props, bytes(data or b""), i, extras, where)
            if built is not None:
                out.append(built)
        return tuple(out)

    def _attachment(self, p: Props, data: bytes, i: int, extras: _Extras,
                    where: tuple[int, int]) -> Attachment | None:
        if p.integer(PR_ATTACH_METHOD) == ATTACH_EMBEDDED_MSG:
            return self._embedded(data, attachment_name(p), i, extras, where)
        return file_attachment(p, data, i, extras.notes)

    def _embedded(self, data: bytes, name: str, i: int, extras: _Extras,
                  where: tuple[int, int]) -> Attachment:
        """Read through the sub-nodes (pst_ndb); else only the property heap pypff gives."""
        try:
            sub = self._ndb().embedded(self._ndb().attachment_of(*where))
        except READ_ERRORS as e:
            extras.notes.append(f"embedded message {i + 1}: {_one_line(e)}; only its first "
                                "property block is read")
            att, props = heap_only(data, name, i, self._codepage, self._named, extras.notes)
            if props is not None and props.text(PR_MESSAGE_CLASS).lower() == EXCEPTION_CLASS:
                extras.exceptions.append(props)
            return att
        if sub.props.text(PR_MESSAGE_CLASS).lower() == EXCEPTION_CLASS:
            extras.exceptions.append(sub.props)
        return Attachment(name, "message/rfc822", b"", embedded=to_mapi(sub, self._codepage))

    def _ndb(self) -> Reader:
        """The sub-node reader, opened on first use (a second handle on the same file)."""
        if self._reader is None:
            self._raw = self._path.open("rb")
            self._reader = Reader(Ndb.open(self._raw), self._codepage, self._named)
        return self._reader


def _libpff_rtf(handle: Any, packed: bytes) -> bytes | None:
    """libpff's decompression (C, fast); None when it fails (e.g. on a zero CRC) or there is
    no item handle (embedded messages): the caller then decompresses in Python."""
    if handle is None or len(packed) < 8:
        return None
    try:
        data = handle.rtf_body
    except _PYPFF_ERRORS:
        return None
    size = int.from_bytes(packed[4:8], "little")
    return bytes(data[:size]) if isinstance(data, bytes) and len(data) >= size else None


if TYPE_CHECKING:
    _: type[Source] = PstSource
