"""A TCP proxy on 127.0.0.1 whose connections can go silent: a server that stops
answering in the middle of a session (a hung backend, a dead NAT entry) without
closing anything, so the client's read blocks until its own timeout.

`silence_after(n, upstream=…)`: once a connection has carried more than `n` bytes in
that direction, it forwards nothing more either way (the sockets stay open). New
connections made after `speak()` are forwarded normally (a re-run goes through).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.servers.listener import close_listener


class StallProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.stalled = threading.Event()  # set when some connection went silent
        self._limit: int | None = None
        self._upstream = True
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def silence_after(self, nbytes: int, upstream: bool) -> None:
        """Connections opened from now on go silent after `nbytes` towards the server
        (`upstream`) or towards the client."""
        with self._lock:
            self._limit, self._upstream = nbytes, upstream

    def speak(self) -> None:
        """Connections opened from now on are never silenced."""
        with self._lock:
            self._limit = None

    def __enter__(self) -> StallProxy:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        close_listener(self._listener, self._thread)
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                return
            server.settimeout(None)
            with self._lock:
                self._socks += [client, server]
                limit, upstream = self._limit, self._upstream
            gate = threading.Event()  # set: this connection is silent
            up_limit = limit if upstream else None
            down_limit = None if upstream else limit
            for args in ((client, server, up_limit), (server, client, down_limit)):
                threading.Thread(target=self._pipe, args=(*args, gate), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None,
              gate: threading.Event) -> None:  # fmt: skip
        carried = 0
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            if limit is not None and carried + len(data) > limit:
                data = data[: max(0, limit - carried)]
                gate.set()
                self.stalled.set()
            if gate.is_set():
                with contextlib.suppress(OSError):
                    if data:
                        dst.sendall(data)
                _swallow(src)
                return
            carried += len(data)
            try:
                dst.sendall(data)
            except OSError:
                return


def _swallow(src: socket.socket) -> None:
    """Read and drop whatever still comes (so the sender never blocks on a full
    window and learns nothing), until the socket is closed."""
    while True:
        try:
            if not src.recv(65536):
                return
        except OSError:
            return
