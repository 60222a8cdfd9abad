"""The PST writer's optional C twins (converters/pst/_pstspeed_write.c) give what their
Python twins give: on generated input (hypothesis, derandomized), on seeded mutations of
real-looking input, and at the edges each one has. (b64_strict answers only well-formed
bodies and leaves the rest, None, to its twin: compared is what the caller gets, and that
the C twin does answer the well-formed ones.)"""

from __future__ import annotations

import base64
import random
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst import speedups
from pstkit.converters.pst.write import ltp, mapi, messaging, parts

C = speedups.C
pytestmark = pytest.mark.skipif(C is None, reason="C speed-ups not built")

_B64_CHARS = "ABCZaz09+/=\r\n \t-_.é\udc80\udcff\x00\x7f"


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.text(alphabet=_B64_CHARS, max_size=40))
def test_b64_strict_twins_on_any_text(text: str) -> None:
    assert C is not None
    assert parts.b64_strict(text) == parts.b64_strict_py(text)
    got = C.b64_strict(text)
    assert got is None or got == parts.b64_strict_py(text)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.binary(max_size=300), st.integers(0, 5), st.sampled_from(["\r\n", "\n", ""]))
def test_b64_strict_twins_on_encoded_data(data: bytes, cut: int, eol: str) -> None:
    """Real base64 bodies, their padding cut short or doubled, lines ending either way."""
    assert C is not None
    body = base64.encodebytes(data).decode().replace("\n", eol or "\n")
    if not eol:
        body = body.replace("\n", "")
    for text in (body, body.rstrip("=\r\n"), body.rstrip("\r\n")[: -cut or None],
                 body + "=" * cut, body + "QQ"[:cut], "=" + body):
        assert parts.b64_strict(text) == parts.b64_strict_py(text), text
        got = C.b64_strict(text)
        assert got is None or got == parts.b64_strict_py(text), text
    assert C.b64_strict(body) == data  # well-formed: answered by C


def test_b64_strict_twins_on_mutated_bodies() -> None:
    """Seeded: large bodies with one character changed, dropped or added anywhere."""
    assert C is not None
    rng = random.Random(17)
    for n in range(300):
        body = list(base64.encodebytes(rng.randbytes(rng.randint(0, 5000))).decode())
        for _ in range(rng.randint(0, 3)):
            at = rng.randint(0, len(body))
            what = rng.choice(["=", "\r", "\n", "A", " ", "é", "\udc99", "/"])
            op = rng.randint(0, 2)
            if op == 0 and at < len(body):
                body[at] = what
            elif op == 1 and at < len(body):
                del body[at]
            else:
                body.insert(at, what)
        text = "".join(body)
        assert parts.b64_strict(text) == parts.b64_strict_py(text), n
        got = C.b64_strict(text)
        assert got is None or got == parts.b64_strict_py(text), n


def test_b64_strict_decodes_what_the_stdlib_decodes() -> None:
    assert C is not None
    data = random.Random(3).randbytes(100_001)
    text = base64.encodebytes(data).decode().replace("\n", "\r\n")
    assert C.b64_strict(text) == data
    assert C.b64_strict(text.replace("\r\n", "").rstrip("=")) == data  # padding left out
    assert C.b64_strict("") == b""




# --- LTP: property and table contexts (_pstspeed_ltp.c against ltp.py) --------------

_TYPES = [0x0002, 0x0003, 0x0004, 0x000A, 0x000B, 0x0005, 0x0014, 0x0040, 0x001F, 0x0102,
          0x101F, 0x1102, 0x0048]
_VALUES = st.one_of(st.binary(max_size=12), st.binary(min_size=3575, max_size=3585),
                    st.binary(min_size=8170, max_size=8200))


def _pc_both(props: list[tuple[int, int, bytes]], start: int, pid: int) -> tuple[object, ...]:
    """(C result, Python result): blocks, slot, sub-nodes and next NID, or the error."""
    out = []
    for build in (ltp._property_context, ltp._property_context_py):
        subs = ltp.SubNodes(start)
        try:
            blocks, slot = build(props, subs, pid)
            out.append((blocks, slot, subs.items, subs.next))
        except (ValueError, struct.error) as e:
            out.append((type(e), str(e)))
    return tuple(out)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from([0x0E08, 0x0037, 0x1000, 0x3001, 0x8001, 0xFFFF,
                                           0]) | st.integers(0, 0xFFFF),
                          st.sampled_from(_TYPES), _VALUES), max_size=30),
       st.integers(0x400, 0x7000), st.sampled_from([-1, 0x0E08, 0x0037, 0]))
def test_pc_build_twins(props: list[tuple[int, int, bytes]], start: int, pid: int) -> None:
    """Any properties (ids given twice, values around the heap's and a block's limits)."""
    assert C is not None
    with_c, with_py = _pc_both(props, start, pid)
    assert with_c == with_py
    if len({p for p, _t, _r in props}) == len(props):  # no error: the C twin answered
        assert C.pc_build(props, start, pid) is not None


def test_pc_build_twins_large() -> None:
    """Seeded: BTHs of two and three levels, hundreds of heap blocks (the bitmap blocks
    at 8, 136, 264...), blocks that run out of allocations (2,047) before bytes."""
    assert C is not None
    rng = random.Random(11)
    shapes = [(447, 4), (448, 4), (1200, 3000), (5000, 0), (3000, 1), (40000, 0), (900, 60)]
    for n, size in shapes:
        pids = rng.sample(range(0x10000), n)
        props = [(p, rng.choice(_TYPES), rng.randbytes(rng.randint(0, size) if size else 0))
                 for p in pids]
        with_c, with_py = _pc_both(props, 0x400, pids[n // 2])
        assert with_c == with_py, (n, size)
        assert isinstance(with_c[0], list)


def test_pc_build_leaves_odd_input_to_python() -> None:
    """Values that are no bytes, ids over 16 bits: None from C, the twin decides."""
    assert C is not None
    assert C.pc_build([(0x3001, 0x1F, bytearray(b"ab"))], 0x400, -1) is None
    assert C.pc_build([(0x10000, 0x1F, b"ab")], 0x400, -1) is None
    for props in ([(0x3001, 0x1F, bytearray(b"ab"))], [(0x3001, True, b"a")]):
        with_c, with_py = _pc_both(props, 0x400, -1)
        assert with_c == with_py


def _tc_both(tags: list[int], rows: list[tuple[int, list[tuple[int, int, bytes]]]],
             start: int) -> tuple[object, ...]:
    out = []
    for build in (ltp.table_context, ltp.table_context_py):
        subs = ltp.SubNodes(start)
        try:  # the rows as a generator: taken once, as a folder's come from the spool
            blocks = build(tags, (r for r in rows), subs)
            out.append((blocks, subs.items, subs.next))
        except (ValueError, struct.error) as e:
            out.append((type(e), str(e)))
    return tuple(out)


_TAGS = [0x0C150003, 0x0E0F000B, 0x0FF90102, 0x3001001F, 0x39000003, 0x00390040,
         0x0E080003, 0x10970003, 0x0E200003, 0x3704001F, 0x67F20003, 0x00020002, 0x00050005]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_TAGS), min_size=1, max_size=8),
       st.lists(st.tuples(st.integers(0, 2**32 + 5) | st.sampled_from([0, 1, 7]),
                          st.lists(st.tuples(st.sampled_from(_TAGS), _VALUES), max_size=6)),
                max_size=12),
       st.integers(0x400, 0x7000))
def test_tc_build_twins(tags: list[int], rows: list[tuple[int, list[tuple[int, bytes]]]],
                        start: int) -> None:
    """Any columns and rows: cells for no column, a column given twice in a row (the last
    wins), values around the heap's limit, row ids out of range, the same id twice."""
    assert C is not None
    cells = [(rid, [(t >> 16, t & 0xFFFF, raw) for t, raw in cs]) for rid, cs in rows]
    with_c, with_py = _tc_both(tags, cells, start)
    assert with_c == with_py


def test_tc_build_twins_large() -> None:
    """Seeded: a contents table of thousands of rows (a matrix sub-node, a two-level
    index), wide rows, large cells, and the empty table."""
    assert C is not None
    rng = random.Random(23)
    contents = list(messaging.CONTENTS)
    for nrows, big in ((0, 0), (1, 0), (40, 0), (448, 0), (5000, 0), (300, 8000)):
        rows = []
        for _ in range(nrows):
            cells = [(t >> 16, t & 0xFFFF, rng.randbytes(rng.randint(0, 30)))
                     for t in contents if rng.random() < 0.7]
            if big and rng.random() < 0.3:
                cells.append((0x0037, 0x001F, rng.randbytes(rng.randint(3000, big))))
            rows.append((rng.randrange(0x10000, 0x90000) << 5 | 4, cells))
        if nrows > 10:
            rows.append(rows[3])  # a row id twice
        with_c, with_py = _tc_both(contents, rows, 0x400)
        assert with_c == with_py, nrows
        assert isinstance(with_c[0], list)


def test_written_pst_is_the_same_with_and_without_c(tmp_path: Path, corpus: Path) -> None:
    """Messages of the corpus into a PST with the C twins and without: the same bytes."""
    files = sorted(p for p in (corpus / "eml").iterdir() if p.is_file())
    if not files:
        pytest.skip("no corpus messages")
    out = []
    for use in (C, None):
        saved, speedups.C = speedups.C, use
        try:
            with (tmp_path / f"{use is None}.pst").open("w+b") as f:
                w = messaging.PstWriter(f, "x", b"U" * 16)
                folder = w.folder(None, "F")
                for p in files:
                    w.message(folder, mapi.to_mapi(p.read_bytes(), ("seen",),
                                                   datetime(2020, 1, 1, tzinfo=UTC)), (), "k")
                w.finish()
                f.seek(0)
                out.append(f.read())
        finally:
            speedups.C = saved
    assert out[0] == out[1]
    assert len(out[0]) > 300_000
