"""Appending to a PST that pstkit wrote: the earlier file's folders and items are carried
into a new file (at the work name) that then takes the new items; `close` renames it over
the earlier file. I/O.

Why a new file and not the earlier one extended in place: the earlier file is never
written to, so a killed append leaves it exactly as it was (bytes identical), and the
new file is made by the same code path as a fresh one (B-trees bottom-up, maps, header
last), which the checker and three readers already vouch for. The cost is a copy of the
earlier file's blocks on every append (about the speed of writing it), paid only when
something is appended: a re-run that delivers nothing opens no file.

What is carried, and how:
- every message node: its data tree and sub-node tree block for block (the same block
  boundaries, so heap ids stay valid), with its NID; its bytes, properties and
  PR_MESSAGE_SIZE are unchanged. Its contents-table row is made from its properties
  as for a new message.
- every folder with its NID, name and container class; its property context, hierarchy,
  contents and FAI tables are written anew with the counts of old and new items.
- the store's record key and display name, and the name-to-id map's ids (a carried
  message names its named properties by the earlier file's ids).
Everything else (store, root, search folders, templates, queues, maps) is what a fresh
writer makes; a node of the earlier file that is none of these is refused before
anything is written, so an append never drops what it does not understand.

Only files pstkit wrote are appended to: they are recognised by pstkit's stable-key named
property (PS_PSTKIT "SourceKey") in the name-to-id map, which every pstkit-written PST
holds and no other writer makes; a foreign PST is refused in one line.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import BinaryIO

from pstkit.converters.pst.btree import READ_ERRORS, Ndb
from pstkit.converters.pst.nodes import children
from pstkit.converters.pst.props import parse_name_map
from pstkit.errors import TargetReadError, TargetWriteError
from pstkit.model import FolderPath

from .existing import Existing
from .messaging import CONTENTS, NID_NAME_MAP, NID_STORE, NID_SUBTREE, PstWriter
from .namemap import SOURCE_KEY, NameMap
from .ndb import NdbWriter

NID_FOLDER, NID_MESSAGE = 0x02, 0x04
_TABLE_KINDS = (0x0D, 0x0E, 0x0F)  # a folder's hierarchy, contents and FAI tables
_ROW_TAGS = frozenset(CONTENTS)


class ForeignPst(TargetWriteError):
    """cannot append to {}: {}"""

    hint = "give a new file name: pstkit appends only to PSTs it wrote"


@dataclass
class Carried:
    """What an append carried over: folder NIDs by path, and how many items."""

    paths: dict[FolderPath, int] = field(default_factory=dict)
    items: int = 0


def refuse_foreign(old: Existing, path: Path) -> None:
    """One line when `old` is not a PST pstkit wrote (pstkit appends only to its own)."""
    if not old.key_id:
        raise ForeignPst(path, "this PST was not written by pstkit (it lacks pstkit's "
                         "source-key property)")


def reopen(old: Existing, path: Path, f: BinaryIO, roles: Mapping[FolderPath, str],
           uid: bytes) -> tuple[PstWriter, Carried]:
    """A writer on the empty file `f` that already holds everything of `old` (the PST at
    `path`), with the record key `uid` (the earlier file's, or a new one after a killed
    run: sink.py); `roles` gives the role of a folder path (Outlook's special folders)."""
    refuse_foreign(old, path)
    reader = old.reader
    try:
        store = {p: r for p, _t, r in reader.entries(NID_STORE)}
        name = store.get(0x3001, b"").decode("utf-16-le", "replace")
        writer = PstWriter(f, name, uid, _names(old, path))
        _refuse_unknown(reader.ndb, old.paths, path)
        carried = Carried(dict(old.paths))
        for sub in sorted(old.paths, key=len):
            fid = old.paths[sub]
            props = {p: r for p, _t, r in reader.entries(fid)}
            parent = old.paths[sub[:-1]] if len(sub) > 1 else None
            cls = props.get(0x3613, b"").decode("utf-16-le", "replace") or "IPF.Note"
            writer.adopt_folder(fid, parent, sub[-1], cls, roles.get(sub, ""))
        kids = children(reader.ndb)
        for fid in old.paths.values():
            for mid in kids.messages.get(fid, ()):
                data, sub_bid = reader.ndb.node(mid)
                new_data = copy_tree(reader.ndb, writer.ndb, data)
                new_sub = copy_subnodes(reader.ndb, writer.ndb, sub_bid)
                row = [e for e in reader.entries(mid) if (e[0] << 16 | e[1]) in _ROW_TAGS]
                writer.adopt_message(fid, mid, new_data, new_sub, row)
                carried.items += 1
    except READ_ERRORS as e:
        raise TargetReadError(path, f"cannot read this PST to append to it ({e})") from e
    return writer, carried


def copy_tree(src: Ndb, dst: NdbWriter, bid: int) -> int:
    """A data tree copied block for block (the blocks' bytes and boundaries unchanged)."""
    return dst.tree(src.blocks(bid))


def copy_subnodes(src: Ndb, dst: NdbWriter, bid: int) -> int:
    """A sub-node tree copied with every sub-node's data and own sub-nodes (attachments,
    embedded messages); 0 when there is none."""
    if bid == 0:
        return 0
    return dst.subnodes([(nid, copy_tree(src, dst, data), copy_subnodes(src, dst, sub))
                         for nid, (data, sub) in sorted(src.subnodes(bid).items())])


def _names(old: Existing, path: Path) -> NameMap:
    """A name map holding the earlier file's names with their ids (pstkit allocates ids
    densely from 0x8000, so carrying them in id order keeps every id)."""
    streams = {p: r for p, _t, r in old.reader.entries(NID_NAME_MAP)}
    found = parse_name_map(streams.get(2, b""), streams.get(3, b""), streams.get(4, b""))
    names = NameMap()
    for name, pid in sorted(found.items(), key=lambda x: x[1]):
        if names.id(name) != pid:
            raise ForeignPst(path, "its named-property ids are not the ones pstkit "
                             "allocates")
    if SOURCE_KEY not in names.ids:
        raise ForeignPst(path, "this PST was not written by pstkit")
    return names


@cache
def fixed_nids() -> frozenset[int]:
    """The nodes a fresh writer makes by itself (store, root, search folders, templates,
    queues, the name map): an append makes them anew."""
    with tempfile.TemporaryFile() as f:  # an empty store is 0x42400 bytes
        PstWriter(f, "").finish()
        return frozenset(nid for nid, _parent in Ndb.open(f).nodes())


def _refuse_unknown(ndb: Ndb, folders: Mapping[FolderPath, int], path: Path) -> None:
    """Every node of the earlier file must be made anew or carried: a fixed node, a
    folder below the IPM subtree or one of its tables, or a message in such a folder."""
    fids = set(folders.values())
    known = fixed_nids() | fids | {f & ~0x1F | k for f in fids for k in _TABLE_KINDS}
    for nid, parent in ndb.nodes():
        if nid in known or (nid & 0x1F == NID_MESSAGE and parent in fids):
            continue
        raise ForeignPst(path, f"it holds a node pstkit does not carry over ({nid:#x} "
                         f"under {parent:#x})")
    if ndb.lost:
        raise TargetReadError(path, "its index is damaged (" + "; ".join(ndb.lost) + ")")


__all__ = ["NID_FOLDER", "NID_SUBTREE", "Carried", "ForeignPst", "reopen"]
