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


def for_messages() -> None:
    """glibc raises its mmap threshold after freeing a large block, so later
    multi-megabyte messages come from the heap and fragment it: peak memory
    then grows with the number of large messages. Pinning it keeps it flat.

    At 4 MiB, not lower: every block above it is a fresh mmap whose pages the kernel
    zeroes and faults in again for every message read (issue 19: at 256 KiB, 123,000
    page faults for the 5,000-message bench mailbox, 84 % of whose bytes are in
    messages over 256 KiB; 11 % are over 4 MiB). Measured on a fresh ext4, export of
    that mailbox 1.45-1.72 s -> 1.28-1.30 s, 10,000 faults, peak RSS 46 -> 55 MiB;
    300 and 600 messages of 0.3-12 MB: RSS 54-68 / 85-92 MiB before, 65 / 94-98 after
    (the same growth). Freed heap up to 32 MiB is kept for the next messages."""
    tune(mmap_threshold=4 << 20, trim_threshold=32 << 20)
