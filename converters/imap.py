"""IMAP converters. The source lives in `imap_source`; a sink can be added
beside it and re-exported here, so the registry keeps one module name."""

from __future__ import annotations

from converters.imap_sink import ImapSink
from converters.imap_source import ImapSource

__all__ = ["ImapSink", "ImapSource"]
