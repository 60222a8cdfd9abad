"""APPEND throughput of the IMAP sink against Dovecot, Cyrus and Courier (issue 13).

    .venv/bin/python scripts/bench_imap_servers.py [N]   # N messages (default 300)

Starts each server of the test matrix (tests/servers/), puts N small messages into a
fresh account with ImapSink (batches of 50; MULTIAPPEND where offered) and prints
messages per second. Needs bash scripts/setup.sh --dev.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pstkit.converters.imap.sink import ImapSink
from pstkit.location import parse_location
from tests.helpers import make_message
from tests.imap.test_sink_helpers import stored
from tests.servers import courier, cyrus, dovecot
from tests.servers.common import ImapServer, make_tls, unique_user
from tests.servers.mail_helpers import options, password_file


def bench(server: ImapServer, n: int, tmp: Path) -> float:
    user = server.add_user(unique_user("b"), "pw")
    loc = parse_location(f"imap://{user.name}@127.0.0.1:{server.imap_port}")
    sink = ImapSink(loc, options(password_file(tmp, user), insecure=True, starttls=False))
    batch = [(stored(i, make_message(i)), make_message(i)) for i in range(n)]
    start = time.perf_counter()
    for k in range(0, n, 50):
        sink.put_batch(("INBOX",), batch[k:k + 50])
    took = time.perf_counter() - start
    sink.close()
    return n / took


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    tmp = Path(tempfile.mkdtemp())
    tls = make_tls(tmp / "tls")
    tmp.chmod(0o755)
    (tmp / "tls").chmod(0o755)
    servers: list[Iterator[ImapServer]] = [dovecot.serve(tls), cyrus.serve(tls),
                                            courier.serve(tls)]
    for gen in servers:
        server = next(gen)
        print(f"{server.name:8} {bench(server, n, tmp):7.1f} msg/s ({n} messages)")
        gen.close()


if __name__ == "__main__":
    main()
