"""Telling an implicit-TLS port from a slow server (issue 15.11).

A plain `imap://`/`pop3://` client waits for the server's greeting; a TLS port waits
for our ClientHello: both wait, silently, until the timeout. So the greeting gets
GREETING_WAIT seconds; if none came, a second connection sends a ClientHello. A port
that answers it with a handshake speaks TLS (the user meant imaps:// or pop3s://); a
port that does not is a slow server, and the first connection is tried again with the
full timeout. The probe verifies nothing and sends nothing but the hello: it only asks
which protocol the port speaks, and is closed before any credentials exist.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from pstkit.errors import TLSPortError

T = TypeVar("T")

#: seconds a plain server gets to greet before the port is probed for TLS
GREETING_WAIT = 3.0


def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Does the port answer a TLS ClientHello with a handshake?"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host):
            return True
    except ssl.SSLError as e:
        # An alert back is TLS talking too (e.g. no shared cipher); a plain-text answer
        # gives WRONG_VERSION_NUMBER or another record-layer error.
        return "ALERT" in str(e).upper()
    except OSError:
        return False


def greet_or_probe(connect: Callable[[float], T], host: str, port: int, timeout: float,
                   key: str, tls_url: str) -> T:  # fmt: skip
    """`connect(greeting_timeout)` opens a plain connection and reads the greeting.
    No greeting within GREETING_WAIT and a TLS port: TLSPortError naming `tls_url`."""
    wait = min(GREETING_WAIT, timeout)
    try:
        return connect(wait)
    except TimeoutError:
        if speaks_tls(host, port, wait):
            raise TLSPortError(key, f"this port speaks TLS (it sent no greeting, but answered "
                               f"a TLS hello): try {tls_url}") from None
        if wait >= timeout:
            raise
    return connect(timeout)
