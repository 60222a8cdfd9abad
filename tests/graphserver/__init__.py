"""A protocol-level Microsoft Graph + Entra ID test server (see README.md here)."""

from tests.graphserver.server import GraphServer
from tests.graphserver.state import State

__all__ = ["GraphServer", "State"]
