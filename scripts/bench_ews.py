#!/usr/bin/env python3
"""Benchmark: EwsSink vs a bare exchangelib bulk_create loop, same messages, same server.

    python scripts/bench_ews.py [--messages 5000] [--seed 1] [--schema ../shared/ews-schema]

The EWS test server runs in a child process (so it does not share the
client's GIL) and validates every request against Microsoft's schema, as in
the tests. Messages are generated from a seed, one batch at a time, so
client memory should not grow with the message count. Prints msg/s of both
loops with 1 and 4 connections, their ratio, and the client's peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exchangelib import (  # noqa: E402  # noqa: E402
    BASIC,
    DELEGATE,
    Account,
    Configuration,
    Credentials,
    FailFast,
    Folder,
    Message,
)

from pstkit.converters.ews.sink import EwsSink  # noqa: E402
from pstkit.location import Location  # noqa: E402
from pstkit.model import Flag, StoredMessage  # noqa: E402
from pstkit.options import ConnectOptions, SecretSpec  # noqa: E402

BATCH = 100
WORDS = ["alpha", "beta", "gamma", "delta", "Grüße", "Überweisung", "report", "meeting",
         "budget", "плана", "会議"]  # fmt: skip
Batch = list[tuple[int, bytes]]


def message(seed: int, i: int) -> bytes:
    """Message `i`: 2-30 KB of text (log-uniform), 5% with a 50-200 KB attachment."""
    rng = random.Random(seed * 1_000_003 + i)
    size = int(2000 * 15 ** rng.random())
    text = " ".join(rng.choice(WORDS) for _ in range(size // 7))
    body = text.encode("utf-8")
    head = (
        f"From: Sender {i} <s{i}@example.com>\r\nTo: bench@example.com\r\n"
        f"Subject: bench message {i}\r\nMessage-ID: <bench-{seed}-{i}@example.com>\r\n"
        f"Date: Mon, {1 + i % 28} Jan 2024 10:{i % 60:02d}:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    if rng.random() >= 0.05:
        return (
            head + "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode() + body
    blob = rng.randbytes(rng.randint(50_000, 200_000))
    att = base64.encodebytes(blob)
    return (
        (
            head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + body
        + (
            b'\r\n--b\r\nContent-Type: application/octet-stream; name="a.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + att + b"\r\n--b--\r\n"
        )
    )


def batches(seed: int, n: int, part: int, parts: int) -> Iterator[Batch]:
    mine = [i for i in range(n) if i % parts == part]
    for start in range(0, len(mine), BATCH):
        yield [(i, message(seed, i)) for i in mine[start : start + BATCH]]


def stored(i: int, raw: bytes) -> StoredMessage:
    return StoredMessage(
        id=i,
        folder=("Inbox",),
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        flags=frozenset({Flag.SEEN} if i % 3 else set()),
        keywords=frozenset(),
        received=None,
        message_id=f"<bench-{i}@example.com>",
        subject="",
        source_id=str(i),
        source_epoch="",
        store_id="bench",
    )


def run_pstkit(url: str, user: str, connections: int, seed: int, n: int, tag: str) -> float:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    loc = Location("ews", "/EWS/Exchange.asmx", user, host, int(port), {"scheme": "http"})
    opts = ConnectOptions(
        password=SecretSpec(command="printf %s pw", prompt=False),
        auth="basic",
        connections=connections,
    )
    sink = EwsSink(loc, opts)
    folders = [("bench", f"{tag}-{k}") for k in range(connections)]
    for f in folders:
        sink.ensure_folder(f, None)

    def work(k: int) -> int:
        failed = 0
        for b in batches(seed, n, k, connections):
            results = sink.put_batch(folders[k], [(stored(i, raw), raw) for i, raw in b])
            failed += sum(type(r).__name__ != "Delivered" for r in results)
        return failed

    elapsed, failed = timed(work, connections)
    count = sum(sum(1 for _ in sink.inventory(f)) for f in folders)
    sink.close()
    check(count, failed, n, f"pstkit {tag}")
    return elapsed


def run_bare(url: str, user: str, connections: int, seed: int, n: int, tag: str) -> float:
    config = Configuration(
        service_endpoint=url,
        credentials=Credentials(user, "pw"),
        auth_type=BASIC,
        retry_policy=FailFast(),
        max_connections=connections,
    )
    account = Account(user, config=config, autodiscover=False, access_type=DELEGATE)
    account.protocol.max_connections = connections  # exchangelib caches protocols per user
    folders = []
    for k in range(connections):
        folder = Folder(parent=account.inbox, name=f"{tag}-{k}")
        folder.save()
        folders.append(folder)

    def work(k: int) -> int:
        failed = 0
        for b in batches(seed, n, k, connections):
            msgs = [Message(account=account, folder=folders[k], mime_content=raw) for _, raw in b]
            out = account.bulk_create(folders[k], msgs, chunk_size=BATCH)
            failed += sum(isinstance(r, Exception) for r in out)
        return failed

    elapsed, failed = timed(work, connections)
    count = sum(f.all().count() for f in folders)
    check(count, failed, n, f"bare {tag}")
    return elapsed


def timed(work: Callable[[int], int], connections: int) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        failed = sum(pool.map(work, range(connections)))
    return time.perf_counter() - start, failed


def check(count: int, failed: int, n: int, what: str) -> None:
    if count != n or failed:
        sys.exit(f"{what}: {count} items in the server, {failed} failed, expected {n}")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--schema", type=Path, default=REPO.parent / "shared" / "ews-schema")
    ap.add_argument("--latency-ms", type=float, default=200.0,
                    help="second round: server latency per request (0 = CPU-bound)")  # fmt: skip
    args = ap.parse_args()
    total = sum(len(message(args.seed, i)) for i in range(args.messages))
    print(f"{args.messages} messages, {total / 2**20:.1f} MiB of MIME, batches of {BATCH}")
    for latency in (0, args.latency_ms):
        code = run_against_server(args, latency)
        if code:
            print("the test server reported schema-invalid responses", file=sys.stderr)
            return code
    return 0


def run_against_server(args: argparse.Namespace, latency: float) -> int:
    users = ["pstkit@example.com", "bare@example.com"]
    cmd = [sys.executable, "-m", "tests.servers.ews", "--schema", str(args.schema),
           f"--latency-ms={latency}", *[f"--user={u}:pw:{u}" for u in users]]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    url = server.stdout.readline().strip()
    print(f"server latency {latency:g} ms per request:")
    try:
        rates = {}
        for connections in (1, 4):
            tag = f"c{connections}"
            bare = args.messages / run_bare(
                url, users[1], connections, args.seed, args.messages, tag
            )
            rss_bare = peak_rss_mib()
            ours = args.messages / run_pstkit(
                url, users[0], connections, args.seed, args.messages, tag
            )
            rates[connections] = ours
            print(f"  connections={connections}: bare bulk_create {bare:7.1f} msg/s"
                  f" | pstkit EwsSink {ours:7.1f} msg/s | pstkit/bare {ours / bare:.2f}"
                  f" | peak RSS after bare {rss_bare:.0f} MiB,"
                  f" after pstkit {peak_rss_mib():.0f} MiB")  # fmt: skip
        print(f"  pstkit 4 connections / 1 connection: {rates[4] / rates[1]:.2f}")
    finally:
        server.stdin.close()
        code = server.wait(timeout=60)
    return code


if __name__ == "__main__":
    sys.exit(main())
