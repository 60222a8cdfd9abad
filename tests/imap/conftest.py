"""The IMAP server matrix: `server` runs a test against Dovecot, Cyrus and Courier
(their fixtures are declared in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.imap.servers_helpers import SERVERS
from tests.servers.common import ImapServer


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> ImapServer:
    """Each test that asks for `server` runs against every server of the matrix."""
    got: ImapServer = request.getfixturevalue(request.param)
    return got


@pytest.fixture(params=SERVERS)
def fresh_server(request: pytest.FixtureRequest) -> ImapServer:
    """A server of its own (to restart), of every kind in the matrix."""
    got: ImapServer = request.getfixturevalue(f"fresh_{request.param}")
    return got
