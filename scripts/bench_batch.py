#!/usr/bin/env python3
"""A batch export of many mailboxes from Dovecot: local engine vs celery
with 1 and 3 workers, all on this machine (127.0.0.1).

Starts its own Dovecot and redis-server (the test fixtures' classes), makes
MAILBOXES users with MESSAGES messages each (2-20 KB), then times
`pstkit export --batch` from start to the last mailbox done, and adds up the
mailboxes' own run times ("mailbox time": wall time minus it, spread over the
processes, is what the engine itself costs):

    local -p1     --engine local --parallel 1
    local -p3     --engine local --parallel 3
    celery 1w     --engine celery, one `pstkit worker` (concurrency 1)
    celery 3w     --engine celery, three workers (concurrency 1 each)

On a 2-core machine the gain of 3 processes is bounded by the 2 cores
(Dovecot and Redis share them too); the figures say so honestly.

    python scripts/bench_batch.py [--mailboxes 20] [--messages 500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pstkit.batch.secretbox import new_key_file  # noqa: E402
from pstkit.store import Store  # noqa: E402
from tests.helpers import make_message  # noqa: E402
from tests.servers.common import make_tls  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.redis import Redis, Workers  # noqa: E402


def populate(dovecot: Dovecot, mailboxes: int, messages: int) -> list[tuple[str, str]]:
    rng = random.Random(1)
    users = []
    for i in range(mailboxes):
        user = dovecot.add_user(f"bench{i:02d}", f"Bench-pw-{i}")
        batch = [(make_message(i * 100_000 + j, size=rng.randint(2_000, 20_000)), (), None)
                 for j in range(messages)]  # fmt: skip
        dovecot.append_many(user, "INBOX", batch)
        users.append((user.name, user.password))
    return users


def pstkit(*args: str) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "pstkit", "--quiet", "--json", *args], cwd=REPO,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"pstkit {' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return list(json.loads(done.stdout))


def totals(stores: Path) -> tuple[int, int]:
    n = size = 0
    for path in stores.iterdir():
        with Store.open(path) as st:
            for count, nbytes in st.catalog.counts().values():
                n, size = n + count, size + nbytes
    return n, size


def timed(label: str, stores: Path, args: list[str]) -> None:
    start = time.monotonic()
    results = pstkit("export", *args)
    seconds = time.monotonic() - start
    n, size = totals(stores)
    busy = sum(float(str(r["seconds"])) for r in results)  # the mailboxes' own run times
    rate = f"{n / seconds:9.0f} msg/s {size / seconds / 1e6:7.1f} MB/s"
    print(f"{label:<12} {seconds:8.1f} s {rate}   mailbox time {busy:6.1f} s "
          f"({n} messages, {size / 1e6:.0f} MB)", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mailboxes", type=int, default=20)
    ap.add_argument("--messages", type=int, default=500)
    opts = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pstkit-bench-batch-"))
    os.chmod(root, 0o755)
    dovecot = Dovecot(root / "dovecot", make_tls(root / "tls"))
    redis = Redis(root / "redis")
    (root / "redis").mkdir()
    workers = Workers(redis, root / "machines", root / "batch.key", 12 * 3600)
    try:
        dovecot.start()
        redis.start()
        new_key_file(root / "batch.key")
        start = time.monotonic()
        users = populate(dovecot, opts.mailboxes, opts.messages)
        print(f"{opts.mailboxes} mailboxes x {opts.messages} messages in Dovecot "
              f"({time.monotonic() - start:.0f} s to fill); {os.cpu_count()} cores", flush=True)
        csv_file = root / "users.csv"
        csv_file.write_text("EmailAddress,UserName,Password\n"
                            + "".join(f"{u}@example.com,{u},{p}\n" for u, p in users))  # fmt: skip
        common = ["--batch", str(csv_file), "--server", f"imap://127.0.0.1:{dovecot.imap_port}",
                  "--ca-file", str(dovecot.ca_file)]  # fmt: skip
        celery = ["--engine", "celery", "--broker", redis.url,
                  "--secret-key-file", str(root / "batch.key")]  # fmt: skip
        for parallel in (1, 3):
            stores = root / f"local{parallel}"
            timed(f"local -p{parallel}", stores, [*common[:2], str(stores), *common[2:],
                                                  "--parallel", str(parallel)])  # fmt: skip
        for n in (1, 3):
            while len(workers.procs) < n:
                workers.start(f"w{len(workers.procs) + 1}")
            time.sleep(3)  # the workers are up before the clock starts
            stores = root / f"celery{n}"
            timed(f"celery {n}w", stores, [*common[:2], str(stores), *common[2:], *celery])
    finally:
        workers.stop_all()
        redis.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
