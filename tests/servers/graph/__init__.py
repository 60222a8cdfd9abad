"""A protocol-level Microsoft Graph + Entra ID test server (see README.md here)."""

from tests.servers.graph.server import GraphServer
from tests.servers.graph.state import State

__all__ = ["GraphServer", "State"]
