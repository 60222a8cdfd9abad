"""MS-PST's CRC (5.3): CRC-32 with the IEEE polynomial, its register started at 0 and not
inverted at the end, which is zlib's crc32 given 0xFFFFFFFF (its own inversion of the
start undone) with the result inverted. Every block and page of a PST carries one.

Computed by zlib-ng's crc32 when the package is there (the `pst` extra): it folds with
carry-less multiplies, ~30 GB/s against the system zlib's ~3.5 GB/s on this machine,
and the stdlib's took a seventh of the PST writer's thread (py-spy, 20,000 bench mails:
2 GB of blocks). Without it, the stdlib's gives the same numbers, only slower."""

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
