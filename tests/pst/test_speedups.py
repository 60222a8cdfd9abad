"""The optional C twins (converters/pst/_pstspeed.c) give what their Python twins give.

On the whole PST corpus, intact and damaged, the export with the C twins equals the export
with the Python ones, byte for byte and skip for skip; on random input each C function
returns what its twin returns, or both fail with a read error. (LZFu's twins are compared
with the specification in test_pst_rtf.py.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst import mime as pst_mime
from pstkit.converters.pst import ndb as pst_ndb
from pstkit.converters.pst import rtf, speedups
from pstkit.converters.pst.btree import READ_ERRORS, NdbError

C = speedups.C
pytestmark = pytest.mark.skipif(C is None, reason="C speed-ups not built")


@contextmanager
def pure_python() -> Iterator[None]:
    """Everything through the Python twins (what runs where nothing was compiled)."""
    saved, speedups.C = speedups.C, None
    try:
        yield
    finally:
        speedups.C = saved


@pytest.mark.parametrize("name", ["SampleOstFile.ost", "aspose_source.pst", "msgInMsg.pst",
                                  "attachAndInline.pst", "dist-list.pst", "testPST.pst",
                                  "pstsdk_submessage.pst", "testPST_variousBodyTypes.pst"])
def test_corpus_export_is_the_same_without_c(corpus: Path, name: str) -> None:
    pytest.importorskip("pypff")
    from tests.pst.test_nodes import export  # noqa: PLC0415 - needs pypff

    with_c = export(corpus / "pst" / name, "nodes")
    with pure_python():
        assert export(corpus / "pst" / name, "nodes") == with_c
    assert len(with_c) > 1


@pytest.mark.parametrize("seed", range(6))
def test_damaged_export_is_the_same_without_c(corpus: Path, tmp_path: Path, seed: int) -> None:
    """Bit flips in the data of testPST.pst: the same skips, notes and bytes either way."""
    pytest.importorskip("pypff")
    from tests.pst.test_nodes import export  # noqa: PLC0415 - needs pypff

    data = bytearray((corpus / "pst" / "testPST.pst").read_bytes())
    rng = random.Random(seed)
    for _ in range(40):
        data[rng.randrange(0x4400, len(data))] ^= 1 << rng.randrange(8)
    path = tmp_path / "damaged.pst"
    path.write_bytes(bytes(data))
    try:
        with_c: Any = export(path, "nodes")
    except Exception as e:  # the same error is expected without C
        with_c = repr(e)
    with pure_python():
        try:
            without: Any = export(path, "nodes")
        except Exception as e:
            without = repr(e)
    assert without == with_c


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_b64_lines(data: bytes) -> None:
    assert C is not None
    assert C.b64_lines(data) == pst_mime._b64_py(data)


def test_b64_lines_at_line_edges() -> None:
    assert C is not None
    for n in [*range(0, 240), 57 * 1000, 57 * 1000 + 1, 1_000_003]:
        data = random.Random(n).randbytes(n)
        assert C.b64_lines(data) == pst_mime._b64_py(data), n


def _heap(rng: random.Random) -> pst_ndb.Heap:
    """A few heap blocks of items, each with its page map, now and then a damaged one."""
    blocks = []
    for _ in range(rng.randint(1, 3)):
        items = [rng.randbytes(rng.randint(0, 40)) for _ in range(rng.randint(0, 6))]
        offs = [4]
        for it in items:
            offs.append(offs[-1] + len(it))
        page_map = [len(items), 0, *offs]
        if rng.random() < 0.1:  # damage: offsets anywhere
            page_map[2:] = [rng.randrange(0x1000) for _ in offs]
        elif rng.random() < 0.05:  # damage: a map longer than its page (it cannot be read)
            page_map[0] = 0x7FFF
        body = b"".join(items)
        blocks.append((4 + len(body)).to_bytes(2, "little") + b"\xec\xbc" + body
                      + b"".join(v.to_bytes(2, "little") for v in page_map))

    def load(hnid: int) -> bytes:  # a sub-node: present for most NIDs, missing for some
        if hnid % 17 == 0:
            raise NdbError(f"sub-node {hnid:#x} missing")
        return hnid.to_bytes(4, "little") * 3

    return pst_ndb.Heap(tuple(blocks), load)


def _hnid(rng: random.Random) -> int:
    """Mostly HIDs of items that exist, sub-node NIDs and 0; now and then anything."""
    roll = rng.random()
    if roll < 0.6:
        return rng.randrange(3) << 16 | rng.randrange(7) << 5  # index 0 is no item
    if roll < 0.8:
        return rng.randrange(1, 1 << 16) << 5 | rng.randrange(1, 32)
    return 0 if roll < 0.9 else rng.randrange(1 << 32)


_TYPES = (2, 3, 0xB, 0x1F, 0x102, 0x40)


def _compare(c: Callable[[], Any], py: Callable[[], Any]) -> bool:
    """`same`, and whether the twins returned something (rather than both failing)."""
    try:
        expected = py()
    except READ_ERRORS:
        with pytest.raises(READ_ERRORS):
            c()
        return False
    assert c() == expected
    return True


def test_pc_entries_twins() -> None:
    """Random heaps and BTH leaves: the same entries, or both fail; most cases read."""
    assert C is not None
    read = 0
    for seed in range(3000):
        rng = random.Random(seed)
        heap = _heap(rng)
        leaves = [b"".join(rng.randrange(0x10000).to_bytes(2, "little")
                           + rng.choice(_TYPES).to_bytes(2, "little")
                           + _hnid(rng).to_bytes(4, "little") for _ in range(rng.randint(0, 6)))
                  + rng.randbytes(rng.choice([0, 0, 0, 3, 7])) for _ in range(rng.randint(0, 2))]
        try:
            maps = [heap.offsets(i) for i in range(len(heap.blocks))]
        except READ_ERRORS:
            continue  # pc_entries stops here, before either twin runs
        args = (leaves, heap.blocks, maps, heap.load)
        read += _compare(partial(C.pc_entries, *args), partial(pst_ndb._pc_entries_py, *args))
    assert read > 1000


def test_tc_rows_twins() -> None:
    """Random row matrices and column sets: the same cells, or both fail; most cases read."""
    assert C is not None
    read = 0
    for seed in range(3000):
        rng = random.Random(seed)
        heap = _heap(rng)
        row_size = rng.choice([0, *range(8, 41)])
        cols = []
        for _ in range(rng.randint(0, 6)):
            cb = rng.choice([1, 2, 4, 4, 8])
            ib = rng.randrange(max(1, row_size - cb + 1)) if rng.random() < 0.95 else 50
            at = rng.randrange(max(1, row_size)) if rng.random() < 0.95 else row_size
            cols.append((rng.randrange(0x10000), rng.choice(_TYPES), ib, cb, at,
                         1 << rng.randrange(8)))
        rows = []
        for _ in range(rng.randint(0, 2)):
            row = bytearray(rng.randbytes(row_size * rng.randint(0, 4) + rng.choice([0, 0, 5])))
            for r in range(0, len(row) - 3, max(row_size, 1)):  # HNIDs in the 4-byte cells
                for _pid, _t, ib, cb, _at, _bit in cols:
                    if cb == 4 and r + ib + 4 <= len(row):
                        row[r + ib : r + ib + 4] = _hnid(rng).to_bytes(4, "little")
            rows.append(bytes(row))
        maps = pst_ndb._page_maps(heap)
        read += _compare(partial(C.tc_rows, rows, row_size, cols, heap.blocks, maps, heap.value),
                         partial(pst_ndb._tc_rows_py, rows, row_size, cols, heap.value))
    assert read > 1000


def test_named_props_twins() -> None:
    """Random entry lists (repeated ids, named ids known or not, short and long code page
    values): the same mapping, in the same order, and the same code page value."""
    assert C is not None
    from pstkit.converters.pst.read import named_props  # noqa: PLC0415

    for seed in range(2000):
        rng = random.Random(seed)
        named = {rng.randrange(0x8000, 0x8040): f"Name{i}" for i in range(rng.randint(0, 8))}
        entries = [(rng.choice([rng.randrange(0x8000), rng.randrange(0x8000, 0x8040), 0x3FFD]),
                    rng.choice(_TYPES), rng.randbytes(rng.choice([0, 2, 4, 8])))
                   for _ in range(rng.randint(0, 30))]
        got, expected = C.named_props(entries, named, 0x3FFD), named_props(entries, named, 0x3FFD)
        assert got == expected and list(got[0]) == list(expected[0])


_RTF_TOKENS = [
    b"{", b"}", b"{\\*", b"\\*", b"\\htmltag84 ", b"\\htmltag", b"\\htmlrtf", b"\\htmlrtf0 ",
    b"\\htmlrtf-0", b"\\par", b"\\par ", b"\\line", b"\\tab", b"\\uc2", b"\\uc0 ", b"\\uc-1",
    b"\\uc", b"\\u-3913?", b"\\u8364 ", b"\\u65", b"\\u", b"\\'e9", b"\\'82\\'a0", b"\\'8",
    b"\\'", b"\\'zz", b"\\~", b"\\_", b"\\-", b"\\{", b"\\}", b"\\\\", b"\\fonttbl", b"\\f0 ",
    b"\\colortbl", b"\\mhtmltag", b"\\pntext", b"\\x12345678901234", b"\\-5", b"\\", b"\r\n",
    b"\n", b"\r", b" ", b"<p>", b"text", b"caf\xe9", b"\x82\xa0\x93\xfa", b"\xe6\x97\xa5",
    b"\\abcdefghijklmnopqrstuvwxyzabcdefghijkl", b"\\\r\n", b"\\1", b"\\:",
]


def test_deencapsulate_twins() -> None:
    """Random RTF made of the tokens that matter (destinations, \\htmlrtf, \\uN with \\ucN
    skips, \\'hh runs, symbols, cut tokens, long words and numbers, a lone backslash at the
    end), in single- and multi-byte code pages: the same HTML, character for character."""
    import codecs  # noqa: PLC0415

    assert C is not None
    for seed in range(3000):
        rng = random.Random(seed)
        codec = rng.choice(["cp1252", "cp932", "utf-8", "cp1251"])
        rtf_bytes = b"{\\rtf1\\ansi\\fromhtml1 " + b"".join(
            rng.choice(_RTF_TOKENS) for _ in range(rng.randint(0, 60))) + rng.choice(
            [b"", b"}", b"\\", b"\\'e"])
        expected = rtf._Deencapsulator(codec).run(rtf_bytes)
        assert C.deencapsulate(rtf_bytes, codecs.getdecoder(codec)) == expected, seed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["cp1252", "cp932"]))
def test_deencapsulate_twins_on_any_bytes(data: bytes, codec: str) -> None:
    import codecs  # noqa: PLC0415

    assert C is not None
    assert C.deencapsulate(data, codecs.getdecoder(codec)) == rtf._Deencapsulator(codec).run(data)
