"""Run the EWS test server on its own: `python -m tests.servers.ews --schema DIR`.

Prints `URL` on the first line of stdout and serves until stdin is closed.
Users (name:password:mailbox) come from --user; used by scripts/bench_ews.py
so that the server does not share the client's process (and GIL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.servers.ews.ops import User
from tests.servers.ews.server import EwsServer


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.servers.ews")
    ap.add_argument("--schema", type=Path, required=True, help="directory with ews-lxml.xsd")
    ap.add_argument("--user", action="append", default=[], help="name:password:mailbox")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    args = ap.parse_args()
    server = EwsServer(args.schema)
    server.latency = args.latency_ms / 1000
    for spec in args.user:
        name, password, mailbox = spec.split(":", 2)
        server.add_mailbox(mailbox)
        server.add_user(User(name, password, mailbox))
    with server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    if server.response_errors:
        print(
            f"{len(server.response_errors)} invalid responses: {server.response_errors[:3]}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
