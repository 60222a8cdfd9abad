"""The fast LZFu decompressors (Python and the optional C twin) against a direct
transcription of MS-OXRTFCP 3.1.3.1."""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst import rtf, speedups
from pstkit.converters.pst.rtf import _PREBUF, RtfError

_BUILT = speedups.C
IMPLS = ["python", pytest.param("c", marks=pytest.mark.skipif(_BUILT is None,
                                                                reason="C not built"))]


def decompress(data: bytes, limit: int | None = None, *, impl: str) -> bytes:
    """rtf.decompress with its Python twin ("python") or its C twin ("c")."""
    saved, speedups.C = speedups.C, (_BUILT if impl == "c" else None)
    try:
        return rtf.decompress(data, limit)
    finally:
        speedups.C = saved


def outcome(run: Callable[[], bytes]) -> bytes | type[RtfError]:
    """What `run` gives: its bytes, or RtfError when it refuses the data."""
    try:
        return run()
    except RtfError:
        return RtfError


def reference(body: bytes, raw_size: int) -> bytes:
    """The specification's algorithm, byte by byte through a 4096-byte circular window."""
    window = bytearray(4096)
    window[: len(_PREBUF)] = _PREBUF
    wpos, out, pos = len(_PREBUF), bytearray(), 0
    while pos < len(body) and len(out) < raw_size:
        control = body[pos]
        pos += 1
        for bit in range(8):
            if pos >= len(body):
                break
            if not control & (1 << bit):
                out.append(body[pos])
                window[wpos] = body[pos]
                wpos, pos = (wpos + 1) & 0xFFF, pos + 1
                continue
            if pos + 1 >= len(body):
                raise RtfError("ends inside a reference")
            ref = (body[pos] << 8) | body[pos + 1]
            pos += 2
            offset, length = ref >> 4, (ref & 0xF) + 2
            if offset == wpos:
                return bytes(out[:raw_size])
            for i in range(length):
                c = window[(offset + i) & 0xFFF]
                out.append(c)
                window[wpos] = c
                wpos = (wpos + 1) & 0xFFF
    return bytes(out[:raw_size])


def packed(body: bytes, raw_size: int) -> bytes:
    return struct.pack("<IIII", len(body) + 12, raw_size, 0x75465A4C, 0) + body


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=3000))
def test_same_as_the_specification(impl: str, body: bytes, raw_size: int) -> None:
    """Random streams: references overlap their output, reach back into the pre-loaded
    dictionary and the zeroed window, hit the end marker, or are cut short."""
    assert outcome(lambda: decompress(packed(body, raw_size), impl=impl)) == outcome(
        lambda: reference(body, raw_size))


@pytest.mark.parametrize("impl", IMPLS)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=4000))
def test_long_runs_and_wraparound(impl: str, seed: bytes, raw_size: int) -> None:
    """Mostly references (control bytes 0xFF): output longer than the window wraps it."""
    body = b"".join(b"\xff" + bytes([seed[i % len(seed)]]) * 16 for i in range(64))
    assert decompress(packed(body, raw_size), impl=impl) == reference(body, raw_size)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200), st.integers(min_value=0, max_value=3000),
       st.integers(min_value=1, max_value=400))
def test_limited_output_is_the_specification_s_prefix(impl: str, body: bytes, raw_size: int,
                                                      limit: int) -> None:
    """With a limit only the start of the body is read; the output (or the error) is what
    the specification gives for the first `limit` bytes."""
    assert outcome(lambda: decompress(packed(body, raw_size), limit, impl=impl)) == outcome(
        lambda: reference(body, min(raw_size, limit)))


@pytest.mark.parametrize("impl", IMPLS)
def test_a_huge_size_in_the_header_allocates_nothing_for_it(impl: str) -> None:
    """raw_size comes from the file: 4 GiB with a 17-byte body gives the body's output."""
    body = b"\x00" + b"abcdefgh" + b"\xff" + b"\x00\x0f" * 8
    got = decompress(packed(body, 0xFFFFFFFF), impl=impl)
    assert got == reference(body, 0xFFFFFFFF)
    assert got.startswith(b"abcdefgh") and len(got) == 8 + 8 * 17


def test_the_c_twin_is_built_on_ci() -> None:
    """CI (CI=true) measures and tests the C build: its absence there is a build problem,
    not something to pass over. Elsewhere a missing compiler only costs speed."""
    built = importlib.util.find_spec("pstkit.converters.pst._pstspeed") is not None
    if os.environ.get("CI") and not built:
        pytest.fail("converters/pst/_pstspeed.c was not built (see setup.py)")
    if not built:
        pytest.skip("C speed-ups not built here")
    probe = "from pstkit.converters.pst import speedups; print(speedups.C is not None)"
    pure = subprocess.run([sys.executable, "-c", probe],
                          env={**os.environ, "PSTKIT_PURE_PYTHON": "1"}, capture_output=True,
                          text=True, check=True)
    assert pure.stdout.strip() == "False" and speedups.C is not None
