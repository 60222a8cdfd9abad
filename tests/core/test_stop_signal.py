"""`stop_on_signal` in-process: its handlers write nothing, so a Ctrl-C that lands in the
middle of a log line, or a second one as "stopping…" is said, is handled as a Ctrl-C.

Found by test_ctrl_c once it sent the second Ctrl-C as soon as "stopping…" was read: the
first handler was still writing that line to the run log when the second came, ran
again, and re-entered the log file's buffer: "internal error: RuntimeError: reentrant
call inside BufferedWriter", exit 70 instead of 130.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from pstkit.interrupt import STOPPING, stop_on_signal

log = logging.getLogger("pstkit")


class _Lines(logging.Handler):
    """Keeps the messages; `on_emit(message)` runs inside each emit, and a second emit
    that begins on a thread already inside one (what a log line from a signal handler
    does) is noted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.reentered: list[str] = []
        self.on_emit = lambda message: None
        self._inside: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        me, message = threading.get_ident(), record.getMessage()
        if me in self._inside:
            self.reentered.append(message)
            return
        self._inside.add(me)
        try:
            self.lines.append(message)
            self.on_emit(message)
        finally:
            self._inside.discard(me)


@pytest.fixture
def lines() -> Iterator[_Lines]:
    handler = _Lines()
    log.addHandler(handler)
    level, log.level = log.level, logging.DEBUG
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.level = level


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _spin() -> None:
    """Python steps, between which the main thread runs a pending signal's handler."""
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        pass


def _until(test: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not test() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_a_ctrl_c_in_the_middle_of_a_log_line_writes_nothing_there(lines: _Lines) -> None:
    """The signal comes while the main thread is inside a handler's emit (writing a
    progress line to the run log): the handler that runs there writes nothing, and
    "stopping…" follows once that line is done, written once."""
    def in_the_middle(message: str) -> None:
        if message == "a progress line":
            _sigint_self()
            _spin()  # the signal is taken here, inside this emit

    lines.on_emit = in_the_middle
    with stop_on_signal() as stop:
        log.info("a progress line")
        assert stop.is_set()
        _until(lambda: STOPPING in lines.lines)
    assert lines.reentered == []
    assert lines.lines == ["a progress line", STOPPING]


def test_a_second_ctrl_c_as_stopping_is_said_stops_at_once(lines: _Lines) -> None:
    """A second Ctrl-C right as "stopping…" appears (a user pressing twice) stops the
    run at once: it is not swallowed by the first one's handler, nor taken for a first
    one again."""
    def second(message: str) -> None:
        if message == STOPPING:
            _sigint_self()

    lines.on_emit = second
    with pytest.raises(KeyboardInterrupt), stop_on_signal():
        _sigint_self()
        _spin()  # the first is taken here
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the second must end this wait
            time.sleep(0.01)
    assert lines.reentered == []
    assert lines.lines.count(STOPPING) == 1


def test_no_stopping_line_without_a_signal(lines: _Lines) -> None:
    """A run without a signal says nothing of stopping, and leaves the handlers and
    threads as they were."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signal() as stop:
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
        log.info("work")
    assert not stop.is_set()
    assert lines.lines == ["work"]
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert not [t for t in threading.enumerate() if t.name == "pstkit-stopping"]
