"""Run as a child process by the kill-and-resume test: import N messages, one per call.

    python -m tests.servers.graph.child_import LOCATION CA_FILE COUNT
(the client secret comes from $PSTKIT_TEST_GRAPH_SECRET, as in the fixtures)
"""

from __future__ import annotations

import sys
from pathlib import Path

from pstkit.converters.graph.sink import GraphSink
from pstkit.location import parse_location
from pstkit.options import ConnectOptions, SecretSpec
from tests.servers.graph.fixtures import APP, SECRET_ENV, stored


def message(n: int) -> bytes:
    head = f"From: a@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@kill>\r\n"
    return f"{head}\r\n{n}\r\n".encode()


def main(location: str, ca_file: str, count: int) -> None:
    opts = ConnectOptions(
        client_id=APP, ca_file=Path(ca_file), client_secret=SecretSpec(env=SECRET_ENV, prompt=False)
    )
    sink = GraphSink(parse_location(location), opts)
    for n in range(1, count + 1):
        raw = message(n)
        sink.put_batch(("Inbox",), [(stored(n, raw, message_id=f"<{n}@kill>"), raw)])
        print(n, flush=True)
    sink.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
