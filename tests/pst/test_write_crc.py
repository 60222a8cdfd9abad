"""The PST writer's CRC (converters/pst/write/crc.py): zlib-ng's crc32, which the `pst`
extra installs, gives the numbers of a bit-by-bit CRC written from [MS-PST] 5.3 (IEEE polynomial,
reflected, register from 0, no final inversion) and of the stdlib's zlib, for any bytes,
any start value, bytes, bytearrays and memoryview slices."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from zlib_ng import zlib_ng

from pstkit.converters.pst.write import crc


def _bitwise(data: bytes) -> int:
    """[MS-PST] 5.3's CRC one bit at a time (its table is this loop, tabulated)."""
    reg = 0
    for byte in data:
        reg ^= byte
        for _ in range(8):
            reg = (reg >> 1) ^ (0xEDB88320 if reg & 1 else 0)
    return reg


def test_the_fast_crc_is_the_one_in_use() -> None:
    """CI installs the `pst` extra: the writer's and reader's CRC must be zlib-ng's there,
    or the speed the benchmarks print is not the one users get."""
    assert crc.crc32 is zlib_ng.crc32


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=3000), st.integers(0, 0xFFFFFFFF), st.integers(0, 64))
def test_crc_agrees_with_the_spec_and_the_stdlib(data: bytes, start: int, cut: int) -> None:
    assert crc.pst_crc(data) == _bitwise(data)
    assert crc.crc32(data, start) == zlib.crc32(data, start)
    view = memoryview(data)[cut:]
    assert crc.pst_crc(view) == crc.pst_crc(bytearray(view)) == _bitwise(bytes(view))


def test_crc_of_large_blocks() -> None:
    """Block-sized and larger inputs (the folding paths of a vectorised CRC)."""
    data = bytes(range(256)) * 300  # 76,800 bytes
    for size in (8176, 8192, 65536, len(data)):
        assert crc.pst_crc(data[:size]) == zlib.crc32(data[:size], 0xFFFFFFFF) ^ 0xFFFFFFFF
    assert crc.pst_crc(data[:8176]) == _bitwise(data[:8176])


def test_without_zlib_ng_the_stdlib_gives_the_same_crcs(tmp_path: Path) -> None:
    """Where zlib-ng is missing (a stand-in module on PYTHONPATH raises ImportError, as
    when the package is not installed) the stdlib's crc32 is used, with the same results."""
    (tmp_path / "zlib_ng").mkdir()
    (tmp_path / "zlib_ng" / "__init__.py").write_text(
        'raise ImportError("No module named \'zlib_ng\'")\n')
    data = bytes(range(256)) * 40
    code = ("import sys, zlib; from pstkit.converters.pst.write import crc; "
            "assert crc.crc32 is zlib.crc32; "
            "print(crc.pst_crc(bytes(range(256)) * 40), crc.pst_crc(b''))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(crc.pst_crc(data)), "0"]
