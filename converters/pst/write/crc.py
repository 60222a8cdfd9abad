"""MS-PST's CRC (5.3): CRC-32 with the IEEE polynomial, its register started at 0 and not
inverted at the end, which is zlib's crc32 given 0xFFFFFFFF (its own inversion of the
start undone) with the result inverted. Every block and page of a PST carries one.

The writer's: computed by zlib-ng's crc32 when the package is there (the `pst` extra),
which folds with carry-less multiplies, ~30 GB/s against the stdlib zlib's ~3.5 GB/s on
this machine, for the 2 GB of blocks of 20,000 bench mails. Without it, the stdlib's
gives the same numbers, only slower. The reader (btree.py) and the checker keep the
stdlib's: they check the writer's CRCs with another implementation, and the reader's
start-up (a 1-item PST export, issue 19) does not pay for the package's import."""

from __future__ import annotations

import zlib
from collections.abc import Callable

Crc32 = Callable[[bytes | bytearray | memoryview, int], int]

try:
    from zlib_ng.zlib_ng import crc32 as _fast

    crc32: Crc32 = _fast
except ImportError:  # not installed (or no wheel for this platform): the stdlib's
    crc32 = zlib.crc32


def pst_crc(data: bytes | bytearray | memoryview) -> int:
    """The CRC a PST stores for these bytes."""
    return crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
