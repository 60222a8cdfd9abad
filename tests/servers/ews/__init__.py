"""A protocol-level EWS test server (see server.py)."""

from tests.servers.ews.faults import FaultPlan, Kind
from tests.servers.ews.mailbox import Item, Mailbox
from tests.servers.ews.ops import User
from tests.servers.ews.server import EwsServer

__all__ = ["EwsServer", "FaultPlan", "Item", "Kind", "Mailbox", "User"]
