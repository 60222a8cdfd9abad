"""TLS for imaplib with large socket reads (ssl.SSLObject over memory BIOs).

An `ssl.SSLSocket` lets OpenSSL read the socket itself: a 5-byte record header, then
the record, two read(2) calls per TLS record. Dovecot sends records of about 4 KiB,
so an export of 550 MB made 275,000 reads, about a second of CPU in the kernel
(strace and perf, issue 19). Here the socket is read 256 KiB at a time into
OpenSSL's incoming memory BIO and decrypted from there: the same library, the same
context (certificate and host name checks, SNI), a few thousand reads.

imaplib sees a plain TCP socket as `sock` (timeouts, shutdown from another thread,
TCP options behave as before) and a buffered reader of the decrypted stream as
`file`; `send` encrypts. Used for implicit TLS (imaps) and after STARTTLS.
"""

from __future__ import annotations

import imaplib
import io
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from imapclient import IMAPClient
from imapclient.imap4 import IMAP4WithTimeout

CHUNK = 256 * 1024  # bytes per socket read
READ_BUFFER = 64 * 1024  # imaplib's line reads come out of this


class TlsChannel(io.RawIOBase):
    """One TLS session on a connected socket: `readinto` gives decrypted bytes (b"" at
    the end, clean or not, as SSLSocket's suppress_ragged_eofs), `send` encrypts."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, host: str) -> None:
        super().__init__()
        self._sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=host)
        self._buf = bytearray(CHUNK)
        self._view = memoryview(self._buf)
        # One call per TLS record (about 3 KiB from Dovecot, 170,000 for the bench
        # mailbox): the C method itself, not SSLObject.read's Python wrapper around it.
        # With a buffer, read() fills it and returns a count (typeshed: bytes).
        self._read = cast(Callable[[int, memoryview], int],
                          getattr(self._tls, "_sslobj", self._tls).read)
        self._handshake()

    def _handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ssl.SSLEOFError("the server closed the connection during the TLS "
                                          "handshake") from None
        self._flush()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Decrypt into `buffer`: every whole record already read from the socket (one
        call here, not one per 4 KiB record), blocking only while nothing is in hand."""
        view = memoryview(buffer)
        want, got = len(view), 0
        read = self._read
        while got < want:
            try:
                n = read(want - got, view[got:])
            except ssl.SSLWantReadError:
                if got:
                    break  # the rest of a record is still on its way: hand this out
                self._flush()  # a TLS 1.3 key update may have to be answered
                if not self._fill():
                    return 0
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if n == 0:  # the server's close_notify: the end of the stream
                break
            got += n
        if self._out.pending:
            self._flush()
        return got

    def send(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    def _fill(self) -> bool:
        """One socket read into the incoming BIO; False at the end of the stream."""
        n = self._sock.recv_into(self._view)
        if n == 0:
            self._in.write_eof()
            return False
        self._in.write(self._view[:n])
        return True

    def _flush(self) -> None:
        if self._out.pending:
            self._sock.sendall(self._out.read())


class _ChannelMixin:
    """What imaplib.IMAP4 needs changed: `file` reads the channel, `send` writes it."""

    sock: socket.socket
    file: Any
    host: str
    _channel: TlsChannel | None = None

    def _start_tls(self, context: ssl.SSLContext) -> None:
        plain = getattr(self, "file", None)  # STARTTLS: the reader of the clear text
        self._channel = TlsChannel(self.sock, context, self.host)
        self.file = io.BufferedReader(self._channel, READ_BUFFER)
        if plain is not None:
            plain.close()  # the socket's makefile reference, not the socket

    def send(self, data: bytes) -> None:
        if self._channel is None:
            self.sock.sendall(data)
        else:
            self._channel.send(data)


class Imap4Tls(_ChannelMixin, IMAP4WithTimeout):  # type: ignore[misc]
    """Implicit TLS (imaps): TCP connect, handshake, then the greeting."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext,
                 timeout: float | None) -> None:
        self._context = context
        super().__init__(host, port, timeout)

    def open(self, host: str = "", port: int = 143,
             timeout: float | None = None) -> None:
        self.host, self.port = host, port
        self.sock = self._create_socket(timeout)
        self._start_tls(self._context)


class Imap4StartTls(_ChannelMixin, IMAP4WithTimeout):  # type: ignore[misc]
    """Plain IMAP that STARTTLS upgrades onto the channel instead of an SSLSocket."""

    def starttls(self, ssl_context: ssl.SSLContext | None = None) -> tuple[str, list[Any]]:
        name = "STARTTLS"
        if self._tls_established:  # type: ignore[has-type]
            raise self.abort("TLS session already established")
        if name not in self.capabilities:
            raise self.abort("TLS not supported by server")
        typ, dat = self._simple_command(name)
        if typ != "OK":
            raise self.error("Couldn't establish TLS session")
        self._start_tls(ssl_context or ssl.create_default_context())
        self._tls_established = True
        self._get_capabilities()
        return cast(tuple[str, list[Any]], self._untagged_response(typ, dat, name))


class FastTlsClient(IMAPClient):  # type: ignore[misc]
    """IMAPClient whose TLS (imaps or STARTTLS) reads the socket in large chunks."""

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return Imap4Tls(self.host, self.port,
                            self.ssl_context or ssl.create_default_context(), timeout)
        return Imap4StartTls(self.host, self.port, timeout)
