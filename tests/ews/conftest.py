"""The EWS test server for this room's tests (a file may override `server` where it needs more)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.ews import EwsServer
from tests.servers.ews.testkit import start_server


@pytest.fixture
def server(ews_schema_dir: Path) -> Iterator[EwsServer]:
    srv = start_server(ews_schema_dir)  # validates every request against the schema
    yield srv
    srv.stop()
    assert srv.response_errors == []  # and every answer was schema-valid too
