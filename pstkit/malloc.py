"""glibc malloc tuning in one place (the CLI, the PST writer and the seal child use it).

glibc reads MALLOC_*_ variables only at start, so a running process is tuned through
mallopt; a variable the user set wins over our value. Elsewhere nothing is done."""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_VARS = {M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_", M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_"}


def tune(mmap_threshold: int | None = None, trim_threshold: int | None = None) -> None:
    """Set the given thresholds (bytes) in this process, each unless its variable is set."""
    if sys.platform != "linux":
        return
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # glibc: else ValueError/OSError
        # The program's own symbols hold libc's (find_library would run ldconfig).
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return
    for param, value in ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold)):
        if value is not None and _VARS[param] not in os.environ:
            mallopt(param, value)


def child_env(
    mmap_threshold: int | None = None, trim_threshold: int | None = None
) -> dict[str, str]:
    """The same thresholds as variables for a child process (put under os.environ)."""
    pairs = ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold))
    return {_VARS[p]: str(v) for p, v in pairs if v is not None}
