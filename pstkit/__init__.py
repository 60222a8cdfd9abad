"""pstkit: move mailboxes through a verifiable on-disk store."""

__version__ = "0.1.0"
