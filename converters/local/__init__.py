"""Local files: Maildir (Maildir++ and nested), mbox (single file or Thunderbird tree), .eml.

Sources and sinks on the local file system. Imports only pstkit core."""
