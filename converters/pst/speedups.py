"""The optional C twins of a few hot PST loops (converters/pst/_pstspeed.c), or None.

setup.py builds them when a C compiler is there; each has a pure-Python twin that gives the
same result, which runs when they were not built or PSTKIT_PURE_PYTHON=1 is set (the tests
compare the two).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, cast


class Speedups(Protocol):
    """What _pstspeed.c offers (its stub is converters/pst/_pstspeed.pyi)."""

    def lzfu(self, body: bytes, raw_size: int, start: bytes, shift: int, /) -> bytes: ...

    def pc_entries(self, leaves: list[bytes], blocks: tuple[bytes, ...],
                   maps: list[tuple[int, ...]], load: Callable[[int], bytes], /
                   ) -> list[tuple[int, int, bytes]]: ...

    def tc_rows(self, rows: list[bytes], row_size: int,
                cols: list[tuple[int, int, int, int, int, int]], blocks: tuple[bytes, ...],
                maps: list[tuple[int, ...] | None], value: Callable[[int], bytes], /
                ) -> list[list[tuple[int, int, bytes]]]: ...

    def named_props(self, entries: list[tuple[int, int, bytes]], named: dict[int, str],
                    watch: int, /) -> tuple[dict[int | str, tuple[int, bytes]], bytes | None]: ...

    def deencapsulate(self, rtf: bytes, decoder: Callable[[bytes, str], tuple[str, int]], /
                      ) -> str: ...

    def b64_lines(self, data: bytes, /) -> bytes: ...

    def b64_strict(self, text: str, /) -> bytes | None: ...

    def pc_build(self, props: Sequence[tuple[int, int, bytes]], next_sub: int, pid: int, /
                 ) -> tuple[list[bytes], list[bytes], tuple[int, int] | None] | None: ...

    def tc_build(self, plan: Sequence[tuple[int, int, int, bool, int, int]], size: int,
                 rows: Iterable[tuple[int, Sequence[tuple[int, int, bytes]]]], next_sub: int,
                 ncols: int, rgib: tuple[int, int, int, int], cols: bytes, /
                 ) -> tuple[list[bytes], list[bytes], list[bytes] | None]: ...


def _load() -> Speedups | None:
    if os.environ.get("PSTKIT_PURE_PYTHON"):
        return None
    try:
        from pstkit.converters.pst import _pstspeed  # noqa: PLC0415 - optional: may not be built
    except ImportError:
        return None
    return cast(Speedups, _pstspeed)


C = _load()
