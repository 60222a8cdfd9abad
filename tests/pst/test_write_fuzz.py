"""Hostile and odd MIME into a PST: every item is written or reported as failed, the file
passes the structural checker, and pstkit's reader and libpff count what was written."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Delivered, Flag, StoredMessage
from pstkit.options import ConnectOptions

from .write_readers import from_mime, libpff_read, libpff_top, pstkit_read

PLANES = "aé€ж中😀𝄞\U000e0041\U0010fffd"  # BMP, astral planes, plane 14 and 16


def stored(i: int) -> StoredMessage:
    return StoredMessage(i, ("Inbox",), "", 0, frozenset({Flag.SEEN}), frozenset({"fuzz"}),
                         datetime(2024, 1, 1, tzinfo=UTC), "", "", str(i), "e", store_id="s")


def nested(depth: int) -> bytes:
    raw = b"Subject: leaf\r\n\r\nleaf\r\n"
    for _ in range(depth):
        raw = (b"Subject: wrap\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
               + raw)
    return raw


def hostile(rng: random.Random, i: int) -> bytes:
    kind = i % 9
    name = "".join(rng.choice(PLANES) for _ in range(rng.randint(1, 40)))
    if kind == 0:  # huge header
        return b"Subject: big\r\nX-Big: " + b"y" * rng.randint(10_000, 200_000) + b"\r\n\r\nb"
    if kind == 1:  # 0-byte attachment with a name from every plane
        return (b"Subject: empty\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
                b"Content-Type: text/plain\r\n\r\nhi\r\n--q\r\nContent-Type: application/x-empty;"
                b" name=\"" + name.encode() + b"\"\r\nContent-Disposition: attachment\r\n\r\n"
                b"\r\n--q--\r\n")
    if kind == 2:
        return nested(rng.randint(1, 60))
    if kind == 3:  # many recipients with names from every plane
        to = ", ".join(f"\"{name}{n}\" <u{n}@example.com>" for n in range(rng.randint(1, 3000)))
        return f"Subject: {name}\r\nTo: {to}\r\n\r\nbody".encode()
    if kind == 4:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000)))
    if kind == 5:  # broken multipart, bad charset, bad date
        return (b"Subject: =?x-unknown?b?????=\r\nDate: Feb 31 99999 25:61\r\n"
                b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\nx")
    if kind == 6:  # a big attachment (several data blocks, an XBLOCK)
        data = rng.randbytes(rng.randint(8_000, 300_000))
        return (b"Subject: blob\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Disposition: attachment; filename=b.bin\r\n\r\n" + data)
    if kind == 7:  # a long subject and body in astral characters
        return (f"Subject: {name * 200}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{name * 2000}").encode()
    return b""  # nothing at all


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_mime_gives_valid_pst_or_reported_failure(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    out = tmp_path / "fuzz.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Inbox",), None)
    batch = [(stored(i), hostile(rng, i)) for i in range(27)]
    results = sink.put_batch(("Inbox",), batch)
    sink.close()
    written = [r for r in results if isinstance(r, Delivered)]
    failed = [r for r in results if not isinstance(r, Delivered)]
    assert len(written) + len(failed) == len(batch)
    assert all(f.reason for f in failed)
    with out.open("rb") as f:
        assert check(f).findings == []
    assert len(pstkit_read(out)[("Inbox",)]) == len(written)
    assert len(libpff_read(out)[("Inbox",)]) == len(written)


def test_fifty_thousand_recipients(tmp_path: Path) -> None:
    """A recipient table of 50,000 rows (a multi-block row matrix in a sub-node of a
    sub-node, names from astral planes): valid, and libpff counts every row."""
    to = ", ".join(f"\"Name 😀 {n}\" <u{n}@example.com>" for n in range(50_000))
    raw = f"Subject: many\r\nFrom: a@example.com\r\nTo: {to}\r\n\r\nbody".encode()
    out = tmp_path / "many.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Inbox",), None)
    assert isinstance(sink.put_batch(("Inbox",), [(stored(1), raw)])[0], Delivered)
    sink.close()
    with out.open("rb") as f:
        assert check(f).findings == []
    f = pypff.file()
    f.open(str(out))
    try:
        top = libpff_top(f)
        inbox = top.get_sub_folder(0)
        assert inbox.get_sub_message(0).recipients.number_of_record_sets == 50_000
    finally:
        f.close()


def test_four_hundred_attachments_take_a_two_level_sub_node_tree(tmp_path: Path) -> None:
    """Over 340 sub-nodes (SLENTRYs in one block) need an SIBLOCK over SLBLOCKs: valid,
    and pstkit's reader and libpff read every attachment. (readpst 0.6.76 reads only
    one-level sub-node trees: it shows such a message without attachments.)"""
    msg = EmailMessage()
    msg["Subject"], msg["From"] = "many attachments", "a@example.com"
    msg.set_content("body")
    for i in range(400):
        msg.add_attachment(f"data {i}".encode(), maintype="application",
                           subtype="octet-stream", filename=f"f{i}.bin")
    out = tmp_path / "si.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Inbox",), None)
    assert isinstance(sink.put_batch(("Inbox",), [(stored(1), msg.as_bytes())])[0], Delivered)
    sink.close()
    with out.open("rb") as f:
        assert check(f).findings == []
    [raw] = pstkit_read(out)[("Inbox",)]
    assert len(from_mime(raw).attachments) == 400
    [seen] = libpff_read(out)[("Inbox",)]
    assert sorted(n for n, _h in seen.attachments) == sorted(f"f{i}.bin" for i in range(400))
