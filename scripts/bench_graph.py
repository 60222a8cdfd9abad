#!/usr/bin/env python3
"""Benchmark: pstkit into the Graph test server vs a bare httpx loop, same MIME, same run.

The Graph test server (tests/servers/graph) runs in a child process, so its
work does not share a GIL with the clients. Both sides do Graph's documented
sequence per message: POST the base64 MIME as text/plain to
…/mailFolders/inbox/importMime (201 Created), then PATCH the created message
with read state, flag, categories and the stamped key. The bare loop does
that from `--concurrency` threads (<= 4, Exchange Online's per-mailbox
limit), one message after another per thread; pstkit's sink caps itself at
4 in flight and is driven as the pipeline drives one folder: put_batch with
batches of `batch_limit.max_items` from one thread (its PATCHes go in $batch
calls). `--pipeline` also times the whole `pstkit import STORE graph://…`
(plan, duplicate checks, ledger).
Rounds alternate; the best round of each is reported (goal: >= 90%).

  python scripts/bench_graph.py --messages 300 --rounds 3 [--latency 0.02] [--pipeline]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import multiprocessing as mp
import os
import ssl
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pstkit.converters.graph.sink import GraphSink  # noqa: E402
from pstkit.location import parse_location  # noqa: E402
from pstkit.model import Flag, StoredMessage  # noqa: E402
from pstkit.options import ConnectOptions, SecretSpec  # noqa: E402
from tests.helpers import cli, write_maildir  # noqa: E402
from tests.servers.graph import GraphServer  # noqa: E402

APP, SECRET, UPN, SECRET_ENV = "bench-app", "bench-secret", "bench@contoso.example", "BENCH_SECRET"


def serve(conn: Any, directory: str, latency: float) -> None:
    """Child process: run the test server until the parent says stop."""
    server = GraphServer(Path(directory)).start()
    server.state.add_app(APP, secret=SECRET)
    server.state.add_mailbox(UPN)
    server.state.limits.delay = latency
    server.state.limits.mailbox_requests = 10**9  # measure speed, not the 10-minute budget
    server.state.limits.upload_bytes = 10**15
    conn.send((server.base, str(server.ca_file), server.state.tenant_id))
    with contextlib.suppress(EOFError):  # the parent went away: stop as well
        conn.recv()
    server.stop()


def messages(count: int) -> list[bytes]:
    corpus = Path(os.environ.get("PSTKIT_CORPUS", REPO.parent / "shared" / "corpus")) / "eml"
    pool = [p.read_bytes() for p in sorted(corpus.iterdir())] if corpus.is_dir() else []
    pool = pool or [b"From: a@example.org\r\nSubject: bench\r\n\r\n" + b"x" * 4000 + b"\r\n"]
    return [pool[n % len(pool)] for n in range(count)]


def bare(base: str, ca: str, tenant: str, raws: list[bytes], conc: int) -> float:
    ctx = ssl.create_default_context(cafile=ca)
    with httpx.Client(verify=ctx, limits=httpx.Limits(max_connections=conc), timeout=60) as c:
        form = {"grant_type": "client_credentials", "client_id": APP, "client_secret": SECRET,
                "scope": "https://graph.microsoft.com/.default"}  # fmt: skip
        token = c.post(f"{base}/{tenant}/oauth2/v2.0/token", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/beta/users/{UPN}/mailFolders/inbox/importMime"

        def send(method: str, url: str, **kw: Any) -> httpx.Response:
            hdrs = headers | kw.pop("hdr", {})
            while (r := c.request(method, url, headers=hdrs, **kw)).status_code == 429:
                time.sleep(float(r.headers.get("Retry-After", "1")))
            r.raise_for_status()
            return r

        def post(raw: bytes) -> None:
            made = send(
                "POST", url, content=base64.b64encode(raw), hdr={"Content-Type": "text/plain"}
            )
            if made.status_code != 201:
                raise RuntimeError(f"importMime answered {made.status_code}")
            key = "String {6b0c3e1d-7a2f-4c55-9e0b-2f5d8a61c4e7} Name PstkitSourceKey"
            patch = {
                "isRead": True,
                "flag": {"flagStatus": "notFlagged"},
                "categories": [],
                "singleValueExtendedProperties": [{"id": key, "value": made.json()["id"]}],
            }
            send("PATCH", f"{base}/v1.0/users/{UPN}/messages/{made.json()['id']}", json=patch)

        start = time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            list(pool.map(post, raws))
        return len(raws) / (time.perf_counter() - start)


def target(base: str, tenant: str) -> str:
    return f"graph://{tenant}/{UPN}?authority={base}&graph={base}/v1.0"


def sink_rate(base: str, ca: str, tenant: str, raws: list[bytes]) -> float:
    opts = ConnectOptions(client_id=APP, ca_file=Path(ca),
                          client_secret=SecretSpec(env=SECRET_ENV, prompt=False))  # fmt: skip
    sink = GraphSink(parse_location(target(base, tenant)), opts)
    run = f"bench-{time.time_ns()}"
    batch = [
        (StoredMessage(n, ("INBOX",), "", len(raw), frozenset({Flag.SEEN}), frozenset(),
                       datetime(2020, 1, 1, tzinfo=UTC), "", "", str(n), "1", store_id=run), raw)
        for n, raw in enumerate(raws, 1)
    ]  # fmt: skip
    try:
        sink.ensure_folder(("Inbox",), None)
        start = time.perf_counter()
        step = sink.batch_limit.max_items
        for i in range(0, len(batch), step):
            results = sink.put_batch(("Inbox",), batch[i : i + step])
            if not all(hasattr(r, "target_id") for r in results):
                raise RuntimeError(f"not delivered: {results}")
        rate = len(batch) / (time.perf_counter() - start)
        if sink.mode != "importMime":
            raise RuntimeError(f"pstkit ran in {sink.mode} mode; the comparison would be unfair")
        return rate
    finally:
        sink.close()


def make_store(tmp: Path, raws: list[bytes]) -> Path:
    write_maildir(tmp / "maildir", {"": [(raw, "S") for raw in raws]})
    code, _, err = cli("export", f"maildir:{tmp / 'maildir'}", str(tmp / "store"))
    if code not in (0, 1):
        raise RuntimeError(f"export failed: {err}")
    return tmp / "store"


def pipeline_rate(base: str, ca: str, tenant: str, store: Path, count: int) -> float:
    start = time.perf_counter()
    code, out, err = cli("import", str(store), target(base, tenant), "--client-id", APP,
                         "--client-secret-env", SECRET_ENV, "--ca-file", ca,
                         "--duplicates", "allow")  # fmt: skip
    if code != 0:
        raise RuntimeError(f"import failed: {out}{err}")
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=4, choices=range(1, 5))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the server spends per Graph request (network + service)",
    )
    ap.add_argument("--pipeline", action="store_true",
                    help="also time the whole `pstkit import` from a store")  # fmt: skip
    args = ap.parse_args()
    os.environ[SECRET_ENV] = SECRET
    raws = messages(args.messages)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        parent, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(target=serve, args=(child, tmp, args.latency))
        proc.start()
        base, ca, tenant = parent.recv()
        for n in range(args.rounds):
            # A fresh store each round: the ledger would make a second import a no-op.
            store = make_store(Path(tmp) / f"r{n}", raws) if args.pipeline else None
            rates = {"bare": bare(base, ca, tenant, raws, args.concurrency),
                     "sink": sink_rate(base, ca, tenant, raws)}  # fmt: skip
            if store is not None:
                rates["pipeline"] = pipeline_rate(base, ca, tenant, store, len(raws))
            line = "   ".join(f"{k} {v:7.1f} msg/s" for k, v in rates.items())
            print(f"round {n + 1}: {line}", flush=True)
            best = {k: max(v, best.get(k, 0.0)) for k, v in rates.items()}
        parent.send("stop")
        proc.join(10)
    mean = sum(map(len, raws)) / len(raws)
    print(f"{len(raws)} messages (mean {mean:.0f} bytes), concurrency {args.concurrency}, "
          f"server latency {args.latency * 1000:.0f} ms")  # fmt: skip
    for name in ("sink", "pipeline"):
        if name in best:
            print(f"best: bare {best['bare']:.1f} msg/s, pstkit {name} {best[name]:.1f} msg/s "
                  f"= {best[name] / best['bare']:.1%} of bare (goal >= 90%)")  # fmt: skip


if __name__ == "__main__":
    main()
