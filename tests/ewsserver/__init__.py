"""A protocol-level EWS test server (see server.py)."""

from tests.ewsserver.faults import FaultPlan, Kind
from tests.ewsserver.mailbox import Item, Mailbox
from tests.ewsserver.ops import User
from tests.ewsserver.server import EwsServer

__all__ = ["EwsServer", "FaultPlan", "Item", "Kind", "Mailbox", "User"]
