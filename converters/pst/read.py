"""One PST item, read by either reader, -> what `pst_mime` builds its bytes from.

`pstkit.converters.pst.source` finds items and hands over a `Raw`: calls that return raw
`(id, type, bytes)` properties, recipients and attachments (from `pst_nodes`
or from pypff). This module decodes them in the item's code page, resolves
named properties, reads embedded messages through `pst_ndb`, and maps the item
with `pst_items`/`pst_ical`. A failure becomes the item's skip reason; only an
embedded message the node reader cannot read raises `Fallback`, so that the
item is read again through pypff, which keeps what the old path kept.
"""

from __future__ import annotations

from collections.abc import Callable

from pstkit.converters.pst import libpff as lib
from pstkit.converters.pst import speedups
from pstkit.converters.pst.btree import READ_ERRORS
from pstkit.converters.pst.items import (
    attachment_name,
    display_recipients,
    file_attachment,
    item_bodies,
    item_flags,
    item_kind,
    mail_message,
    received_time,
    wrap_item,
)
from pstkit.converters.pst.mime import Attachment, MapiMessage
from pstkit.converters.pst.named import EXCEPTION_CLASS, is_meeting, meeting_method
from pstkit.converters.pst.ndb import Entry, Reader, heap_only, to_mapi
from pstkit.converters.pst.nodes import RawAttachment, RawItem
from pstkit.converters.pst.props import (
    ATTACH_EMBEDDED_MSG,
    PR_ATTACH_METHOD,
    PR_MESSAGE_CLASS,
    PR_MESSAGE_CODEPAGE,
    Props,
    codepage_name,
    decode_props,
    lazy_props,
    strip_subject_prefix,
)
from pstkit.model import ItemKind, MessageMeta


class Extras:
    """What reading one item's attachments found besides the attachments themselves."""

    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("exceptions", "notes")

    def __init__(self) -> None:
        self.notes: list[str] = []  # problems, kept in X-Pstkit-Note
        self.exceptions: list[Props] = []  # changed occurrences of a series


class Item:
    """One item as read: its bytes-to-be, or why it cannot be."""

    __slots__ = ("message", "meta", "reason")

    def __init__(self, meta: MessageMeta, message: MapiMessage | None, reason: str = "") -> None:
        self.meta, self.message, self.reason = meta, message, reason


class Fallback(Exception):
    """The node reader cannot read this item: read it with pypff instead."""


class Raw:
    """One item to read, whichever reader reads it; the calls raise on damage."""

    __slots__ = ("body", "entries", "nodes", "rtf", "source_id")

    def __init__(self, source_id: str, entries: Callable[[], list[Entry]],
                 body: Callable[[], RawItem], rtf: Callable[[bytes], bytes | None],
                 nodes: bool) -> None:
        self.source_id = source_id
        self.entries = entries
        self.body = body  # recipients and attachments
        self.rtf = rtf  # a faster RTF decompressor, if any
        self.nodes = nodes  # read by pst_nodes: an embedded message it cannot read -> Fallback


def named_props(entries: list[Entry], named: dict[int, str], watch: int
                ) -> tuple[dict[int | str, tuple[int, bytes]], bytes | None]:
    """Raw properties keyed for Props: ids below 0x8000 as they are, named ones by `named`
    (unknown ones left out), the first value of a key kept; and the last value of `watch`
    that has at least 4 bytes (the item's code page), or None. (C twin: _pstspeed.c)"""
    raw: dict[int | str, tuple[int, bytes]] = {}
    seen = None
    for pid, ptype, value in entries:
        if pid == watch and len(value) >= 4:
            seen = value
        key = pid if pid < 0x8000 else named.get(pid)
        if key is not None and key not in raw:
            raw[key] = (ptype, value)
    return raw, seen


class ItemReader:
    """Decodes and maps items of one file (its code page and named properties)."""

    def __init__(self, codepage: str, forced: bool, named: dict[int, str],
                 ndb: Callable[[], Reader]) -> None:
        self._codepage, self._forced, self._named, self._ndb = codepage, forced, named, ndb

    def props(self, entries: list[Entry]) -> Props:
        """Named properties under our names (pst_items.NAMED), unknown ones left out; ANSI
        strings in the item's own code page."""
        if speedups.C is not None:
            raw, item_cp = speedups.C.named_props(entries, self._named, PR_MESSAGE_CODEPAGE)
        else:
            raw, item_cp = named_props(entries, self._named, PR_MESSAGE_CODEPAGE)
        cp = self._codepage
        if item_cp is not None and not self._forced:
            cp = codepage_name(int.from_bytes(item_cp[:4], "little"), self._codepage)
        return lazy_props(raw, cp)

    def read(self, raw: Raw, path: tuple[str, ...], skip_reason: str) -> Item:
        source_id = raw.source_id
        try:
            props = self.props(raw.entries())
        except lib.PYPFF_ERRORS as e:
            return Item(MessageMeta(path, source_id), None, f"unreadable item: {lib.one_line(e)}")
        mclass = props.text(PR_MESSAGE_CLASS)
        kind = item_kind(mclass)
        meta = MessageMeta(
            folder=path, source_id=source_id, flags=item_flags(props),
            keywords=frozenset(props.strings("Keywords")), received=received_time(props),
            kind=kind or ItemKind.MAIL, subject=strip_subject_prefix(props.text(0x0037)),
        )
        if skip_reason:
            return Item(meta, None, skip_reason)
        if kind is None:
            return Item(meta, None, f"{mclass or 'item without class'}: not a user item")
        try:
            return Item(meta, self._message(raw, props, kind))
        except Fallback:
            raise
        except Exception as e:
            return Item(meta, None,
                         f"unreadable item ({type(e).__name__}: {lib.one_line(e)})")

    def _message(self, raw: Raw, props: Props, kind: ItemKind) -> MapiMessage:
        body = raw.body()
        extras = Extras()
        attachments = self._attachments(body, extras, raw.nodes)
        notes = extras.notes
        uid = f"pst-{raw.source_id}"
        recipients = tuple(decode_props(r, self._codepage) for r in body.recipients)
        if kind is not ItemKind.MAIL:  # an item pstkit wrote keeps the UID it came with
            return wrap_item(props, kind, props.text("PstkitUid") or uid, attachments, tuple(notes),
                             tuple(extras.exceptions),
                             recipients if kind is ItemKind.EVENT else ())
        cls = props.text(PR_MESSAGE_CLASS)
        # a meeting request/reply/cancellation carries its event, as iMIP does; one pstkit
        # wrote from an iMIP mail still has that mail's own calendar part
        if is_meeting(cls) and not any(a.mime_type.lower().startswith("text/calendar")
                                       for a in attachments):
            # Imported here: plain mail never needs the iCalendar writer (issue 19, start-up).
            from pstkit.converters.pst.ical import event_ics  # noqa: PLC0415

            method = meeting_method(cls, props.flag("CounterProposal"))
            ics = event_ics(props, uid, method, tuple(extras.exceptions), recipients
                            ).encode("utf-8")
            ctype = "text/calendar; charset=utf-8" + (f"; method={method}" if method else "")
            attachments = (*attachments, Attachment("meeting.ics", ctype, ics))
        if not body.recipients_read:
            recipients = display_recipients(props)
        bodies = item_bodies(props, notes, self._codepage, raw.rtf)
        return mail_message(props, recipients, bodies, attachments, tuple(notes))

    def _attachments(self, body: RawItem, extras: Extras, nodes: bool
                     ) -> tuple[Attachment, ...]:
        out = []
        failed = sorted(body.failed)  # notes in attachment order, as if read in one loop
        for att in body.attachments:
            while failed and failed[0][0] < att.index:
                extras.notes.append(failed.pop(0)[1])
            built = self._attachment(body.nid, att, extras, nodes)
            if built is not None:
                out.append(built)
        extras.notes += [note for _i, note in failed]
        return tuple(out)

    def _attachment(self, nid: int, att: RawAttachment, extras: Extras, nodes: bool
                    ) -> Attachment | None:
        p = self.props(att.entries)
        if p.integer(PR_ATTACH_METHOD) != ATTACH_EMBEDDED_MSG:
            return file_attachment(p, att.data, att.index, extras.notes)
        name, i = attachment_name(p), att.index
        try:
            ref = att.ref if att.ref is not None else self._ndb().attachment_of(nid, att.nid)
            sub = self._ndb().embedded(ref)
        except READ_ERRORS as e:
            if nodes:  # pypff's view of this attachment decides what can be kept
                raise Fallback from e
            extras.notes.append(f"embedded message {i + 1}: {lib.one_line(e)}; only its first "
                                "property block is read")
            att_, props = heap_only(att.data, name, i, self._codepage, self._named, extras.notes)
            if props is not None and props.text(PR_MESSAGE_CLASS).lower() == EXCEPTION_CLASS:
                extras.exceptions.append(props)
            return att_
        if sub.props.text(PR_MESSAGE_CLASS).lower() == EXCEPTION_CLASS:
            extras.exceptions.append(sub.props)
        return Attachment(name, "message/rfc822", b"", embedded=to_mapi(sub, self._codepage))

