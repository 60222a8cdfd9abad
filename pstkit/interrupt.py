"""Prompt Ctrl-C (issue 15.9): the first SIGINT/SIGTERM says "stopping…" at once and
lets the run finish the item at hand; if that item is still waiting on the network a
moment later (a silent server keeps a read blocked for the whole --timeout), the wait
is abandoned.

Only a wait the loop marked with `Stopper.waiting()` (the next item from a source, one
batch to a sink) is ever cut: the store's files and catalog rows are never written by
the code inside such a wait, so cutting it leaves what was committed intact. An export
then commits what it took; an import leaves the cut batch marked "sending", so the
next run looks in the target for it before sending (exactly once). A second signal
stops at once, wherever the run is.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import TypeVar

log = logging.getLogger("pstkit")

T = TypeVar("T")

#: seconds the item at hand gets after the first signal before its wait is cut
GRACE = 1.0

STOPPING = "stopping… (finishing the message at hand; Ctrl-C again to stop at once)"


class StopNow(KeyboardInterrupt):
    """The grace after the first Ctrl-C ran out while a source or sink was waiting."""


class Stopper:
    """The run's stop flag, set by the first signal; `waiting()` marks the waits that
    may be cut once the grace has run out."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.expired = False
        self._waiting = False

    def is_set(self) -> bool:
        return self.event.is_set()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        if self.expired:
            raise StopNow
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread takes signals; it waits for its workers
            return
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """A store write inside a wait (a two-step sink noting what it created) is
        never cut: the cut, if due, comes right after it."""
        was, self._waiting = self._waiting, False
        try:
            yield
        finally:
            self._waiting = was
        if was and self.expired:
            raise StopNow

    def guard(self, items: Iterator[T]) -> Iterator[T]:
        """`items`, each `next()` a wait that may be cut: `waiting()` written out, since
        a context manager per message was a measurable part of an export's time."""
        main = threading.current_thread() is threading.main_thread()
        while True:
            if self.expired:
                raise StopNow
            if main:  # only the main thread takes signals (see waiting())
                self._waiting = True
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                if main:
                    self._waiting = False
            yield item

    def grace_over(self) -> None:
        """Called in the main thread when the grace runs out (SIGALRM)."""
        self.expired = True
        if self._waiting:
            raise StopNow


@contextlib.contextmanager
def stop_on_signal(grace: float = GRACE) -> Iterator[Stopper]:
    """The first SIGINT or SIGTERM sets the flag and says so; after `grace` seconds a
    wait still in progress is cut (StopNow); a second signal acts at once. Only the
    main thread can take signals: elsewhere (batch runs) the caller's handling stays.

    The handlers write nothing: a handler runs in the main thread between any two of
    its steps, also in the middle of a log line being written to the run log, and a
    log line from there re-entered that file's buffer ("reentrant call inside
    BufferedWriter": an internal error, exit 70, for a quick double Ctrl-C). The
    "stopping…" line is written by a thread of its own, which only waits for it."""
    stopper = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
    old = {sig: signal.getsignal(sig) for sig in sigs}
    wake = threading.Event()  # a first signal, or the end of the run

    def first(signum: int, _frame: object) -> None:
        if stopper.event.is_set():  # a second one before this one put the others in place
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, old[signal.SIGINT])  # the next one interrupts anything
        signal.signal(signal.SIGTERM, _interrupt)
        stopper.event.set()
        wake.set()
        signal.setitimer(signal.ITIMER_REAL, grace)

    def alarm(signum: int, _frame: object) -> None:
        stopper.grace_over()

    def say() -> None:
        wake.wait()
        if stopper.event.is_set():
            log.warning(STOPPING)

    speaker = threading.Thread(target=say, name="pstkit-stopping", daemon=True)
    speaker.start()
    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)
    signal.signal(signal.SIGALRM, alarm)
    try:
        yield stopper
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        wake.set()
        speaker.join()  # "stopping…" comes before whatever the caller says next


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
