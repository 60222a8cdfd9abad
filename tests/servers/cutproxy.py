"""A TCP proxy on 127.0.0.1 that can cut one connection in the middle of a request.

Put between a client and a real server (TLS passes through untouched), it makes
the drop a real server does under load (gromox 3.10: "SSLEOFError: EOF occurred
in violation of protocol") happen on demand: after `arm(n)`, the next
connection that has sent more than `n` bytes towards the server since then is
closed on both sides, with the request half sent.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.servers.listener import close_listener


class CutProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cuts = 0  # connections cut so far
        self._armed: int | None = None
        self._generation = 0  # bumped by arm(): connections count their bytes afresh
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def arm(self, after_bytes: int) -> None:
        with self._lock:
            self._armed = after_bytes
            self._generation += 1

    def start(self) -> CutProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        close_listener(self._listener, self._thread)

    def __enter__(self) -> CutProxy:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            pair = (client, server)
            threading.Thread(target=self._upstream, args=pair, daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        sent, generation = 0, -1
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            with self._lock:
                if generation != self._generation:
                    sent, generation = 0, self._generation
            sent += len(data)
            if self._cut_now(sent):
                for s in (client, server):
                    _close_hard(s)
                return
            try:
                server.sendall(data)
            except OSError:
                break
        for s in (client, server):
            _close_hard(s)

    def _cut_now(self, sent: int) -> bool:
        with self._lock:
            if self._armed is not None and sent > self._armed:
                self._armed = None
                self.cuts += 1
                return True
        return False

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            _close_hard(s)


def _close_hard(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
