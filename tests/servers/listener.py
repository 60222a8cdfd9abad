"""Closing a listening socket that another thread accepts on.

`close()` alone is not enough: a thread blocked in `accept()` keeps the old
socket listening (the kernel holds it for the call), and a thread about to
call `accept()` may reach the descriptor number after it was closed and
reused by a new socket of the same process — then it accepts another test's
connections. A full run once saw the EWS client greeted by a fake IMAP
server's "* OK" this way. So: wake the thread (`shutdown` makes a blocked
`accept` fail at once on Linux, without freeing the descriptor), wait for
it to end, and only then close.
"""

from __future__ import annotations

import contextlib
import socket
import threading


def close_listener(listener: socket.socket, thread: threading.Thread | None,
                   timeout: float = 5.0) -> None:  # fmt: skip
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout)
    listener.close()
