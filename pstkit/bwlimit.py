"""`--bwlimit`: a token bucket on the bytes a run moves (issue 15.13).

The bucket sits where every message's bytes pass exactly once, whatever the converter:
export takes each fetched message's size before storing it, import takes each batch's
size before handing it to the sink. Since the loop that pulls from a source (or pushes
to a sink) waits, the source's reads and the sink's writes slow down with it, so the
network (IMAP/POP3 FETCH, APPEND, EWS/Graph uploads) and local copies stay at the
limit on average. The granularity is one message (one batch on import): a burst of
one item may go at full speed, the average does not exceed the rate.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from pstkit.errors import UsageError

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_rate(text: str | None) -> float | None:
    """"512K" -> 524288.0 bytes/s; "1.5M", "2G", "800" (bytes/s); "off"/"0"/None -> None.
    Suffixes are binary (K = 1024), as rclone's; an optional "B", "iB" or "/s" is allowed."""
    if text is None:
        return None
    t = text.strip()
    if t.lower() in ("off", "0", ""):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGkmg]?)(?:i?[Bb])?(?:/s)?", t)
    if m is None:
        raise UsageError(f"cannot read --bwlimit {text!r} (use bytes per second, e.g. 800K, 2M)")
    rate = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if rate < 1:
        raise UsageError(f"--bwlimit {text!r} is below one byte per second")
    return rate


class TokenBucket:
    """Thread-safe; `take(n)` returns once `n` bytes fit the rate. The bucket holds at
    most `burst` bytes (default: one second's worth); a take larger than what is there
    leaves a debt that this and later takes wait off, so no size is ever refused."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> float:
        """Wait until `n` bytes are allowed; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


def limiter(text: str | None) -> TokenBucket | None:
    rate = parse_rate(text)
    return TokenBucket(rate) if rate is not None else None
