"""The writer's B-tree entries wait in spill files, not in memory (17-pstbig.md): the NBT
entries in sorted runs merged at `finish`, the BBT entries in BID order. Many small runs
must give the very bytes one run gives, a NID used twice must still be refused when the two
entries sit in different runs, and the spill files live on the output's file system."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.mapi import to_mapi
from pstkit.converters.pst.write.messaging import PstWriter
from pstkit.converters.pst.write.ndb import NdbWriter

from .write_readers import libpff_top

UID = bytes(range(16))


def _mail(i: int) -> bytes:
    attach = ""
    if i % 3 == 0:  # attachments: sub-node trees, and data trees over one block
        data = (f"attachment {i} " * (400 + 97 * i)).encode()
        attach = ("--b\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n"
                  + base64.encodebytes(data).decode().replace("\n", "\r\n"))
    return (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: spill {i}\r\n"
            f"Message-ID: <spill{i}@example.org>\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain\r\n\r\nbody {i}\r\n{attach}--b--\r\n").encode()


def _write(out: Path, node_run: int | None, count: int) -> NdbWriter:
    with out.open("w+b") as f:
        w = PstWriter(f, "spill", UID)
        if node_run:
            w.ndb.nodes.run = node_run
        boxes = [w.folder(None, "Inbox", role="inbox")]
        boxes += [w.folder(boxes[0], f"sub {k}") for k in range(3)]
        for i in range(count):
            w.message(boxes[i % len(boxes)], to_mapi(_mail(i)))
        w.finish()
    return w.ndb


def test_many_sorted_runs_give_the_same_file_as_one(tmp_path: Path) -> None:
    one, many = tmp_path / "one" / "x.pst", tmp_path / "many" / "x.pst"
    one.parent.mkdir()
    many.parent.mkdir()
    _write(one, None, 120)
    ndb = _write(many, 7, 120)
    assert len(ndb.nodes.runs) > 15  # the merge was taken (120 messages + fixed nodes, runs of 7)
    assert one.read_bytes() == many.read_bytes()
    with many.open("rb") as f:
        assert check(f).findings == []
    pst = pypff.file()
    pst.open(str(many))
    try:
        inbox = libpff_top(pst).get_sub_folder(0)
        counts = [inbox.number_of_sub_messages] + [
            inbox.get_sub_folder(k).number_of_sub_messages for k in range(3)]
        assert counts == [30, 30, 30, 30]
    finally:
        pst.close()
    assert os.listdir(many.parent) == ["x.pst"]  # nothing left beside it


def test_a_nid_used_twice_is_refused_across_runs(tmp_path: Path) -> None:
    with (tmp_path / "dup.pst").open("w+b") as f:
        w = PstWriter(f, "dup", UID)
        w.ndb.nodes.run = 3
        w.ndb.node(0x200004, w.ndb.block(b"first"))
        for k in range(10):  # pushes the first entry into an earlier run than the second
            w.ndb.node(0x300004 + (k << 5), w.ndb.block(b"filler"))
        w.ndb.node(0x200004, w.ndb.block(b"second"))
        with pytest.raises(ValueError, match="used twice"):
            w.finish()


def test_spill_files_are_on_the_outputs_file_system(tmp_path: Path) -> None:
    with (tmp_path / "where.pst").open("w+b") as f:
        ndb = PstWriter(f, "where", UID).ndb
        here = os.fstat(f.fileno()).st_dev
        assert os.fstat(ndb.blocks.file.fileno()).st_dev == here
        assert os.fstat(ndb.nodes.file.fileno()).st_dev == here
