#!/usr/bin/env python3
"""Export the bench mailbox from Dovecot with pstkit and with mbsync, in the
same run, and compare wall time, msg/s, MB/s and peak RSS.

Needs the bench Dovecot (../shared/bench/dovecot-up.sh: 127.0.0.1:10143,
user bench) and mbsync (Debian isync). Each tool runs as its own child
process so its peak RSS is its own (wait4). pstkit writes a real store via
`pstkit.pipeline.export` (`--pstkit-target store`, the default) or, for a
like-for-like comparison with mbsync's Maildir, plain Maildir files
(`--pstkit-target maildir`: the same work the store does minus the catalog).

    BENCH_MESSAGES=5000 BENCH_SEED=1 bash ../shared/bench/dovecot-up.sh
    nice -n 10 python scripts/bench_imap_export.py --runs 3 --tls imaps

Both tools use the same transport (`--tls plain`: both clear text, pstkit
with --insecure, which is what lets it send a password without TLS;
`--tls imaps`: both implicit TLS on --imaps-port, mbsync pinning the bench
certificate, pstkit not verifying it) and write under the same directory,
by default on tmpfs (/dev/shm), so neither storage nor TLS favours one.
Prints medians of wall and CPU (user+sys of the child) and both ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The repo on sys.path first, so the script runs from a checkout.
from pstkit import malloc  # noqa: E402
from pstkit.converters.imap.source import ImapSource  # noqa: E402
from pstkit.location import parse_location  # noqa: E402
from pstkit.model import Fetched, FolderInfo  # noqa: E402
from pstkit.options import ConnectOptions, FetchFilter, SecretSpec  # noqa: E402
from pstkit.pipeline import export  # noqa: E402
from pstkit.store import Store  # noqa: E402

MBSYNCRC = """{fsync}
IMAPAccount bench
Host {host}
Port {port}
User {user}
PassCmd "printenv BENCH_IMAP_PASSWORD"
{tls}
AuthMechs LOGIN

IMAPStore far
Account bench

MaildirStore near
Path {out}/
Inbox {out}/INBOX
SubFolders Verbatim

Channel bench
Far :far:
Near :near:
Patterns *
Create Near
Remove None
Expunge None
Sync Pull
SyncState *
CopyArrivalDate yes
"""


@dataclass(frozen=True)
class Measured:
    tool: str
    wall: float
    cpu: float
    rss_mib: float
    messages: int
    nbytes: int


# --- children ----------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Runs in the child process: one pstkit export, with the CLI's malloc settings."""
    malloc.for_messages()
    opts = ConnectOptions(password=SecretSpec(env="BENCH_IMAP_PASSWORD", prompt=False),
                          starttls=False, insecure=True, connections=args.connections)
    scheme = "imaps" if args.tls == "imaps" else "imap"
    src = ImapSource(parse_location(f"{scheme}://{args.user}@{args.host}:{_port(args)}"), opts)
    out = Path(args.out)
    try:
        if args.pstkit_target == "store":
            with Store.create(out / "store") as store:
                export(src, store, FetchFilter(), connections=args.connections)
        else:
            _to_maildir(src, out, args.connections)
    finally:
        src.close()


def _to_maildir(src: ImapSource, out: Path, connections: int) -> None:
    """What the store does per message (temp file, fsync, rename), no catalog."""

    def one(f: FolderInfo) -> None:
        d = out.joinpath(*f.path)
        for sub in ("tmp", "cur", "new"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for r in src.fetch(f, None, FetchFilter(), frozenset()):
            if isinstance(r, Fetched):
                name = f"{time.time():.0f}.U{r.meta.source_id}.{os.getpid()},S={len(r.raw)}:2,"
                tmp = d / "tmp" / name
                with tmp.open("wb") as fh:
                    fh.write(r.raw)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.rename(d / "cur" / name)

    with ThreadPoolExecutor(connections) as ex:
        list(ex.map(one, [f for f in src.folders() if f.selectable]))


# --- parent ------------------------------------------------------------------


def measure(tool: str, argv: list[str], out: Path, env: dict[str, str]) -> Measured:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{tool} failed with exit code {proc.returncode}")
    n, nbytes = _count(out)
    return Measured(tool, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, n,
                    nbytes)


def _count(out: Path) -> tuple[int, int]:
    n = nbytes = 0
    for p in out.rglob("*"):
        if p.is_file() and (p.parent.name in ("cur", "new") or p.suffix == ".eml"):
            n += 1
            nbytes += p.stat().st_size
    return n, nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=10143, help="plain IMAP port")
    ap.add_argument("--imaps-port", type=int, default=10993, help="IMAPS port")
    ap.add_argument("--tls", choices=["plain", "imaps"], default="imaps",
                    help="transport for both tools (default: imaps)")
    ap.add_argument("--cert", default="/tmp/bench-dovecot/ssl/cert.pem",
                    help="the bench server's certificate, pinned by mbsync for --tls imaps")
    ap.add_argument("--user", default="bench")
    ap.add_argument("--password-env", default="BENCH_IMAP_PASSWORD",
                    help="environment variable holding the password (default: benchpass)")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default="",
                    help="scratch directory for both tools (default: a new dir in /dev/shm)")
    ap.add_argument("--pstkit-target", choices=["store", "maildir"], default="store")
    ap.add_argument("--mbsync-fsync", choices=["default", "no"], default="default",
                    help="mbsync's FSync: its default (yes) or no")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    _check_server(args.host, _port(args))
    env = dict(os.environ, BENCH_IMAP_PASSWORD=os.environ.get(args.password_env, "benchpass"))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(args.out or tempfile.mkdtemp(prefix="pstkit-bench-", dir=shm))
    conf = root / "mbsyncrc"
    root.mkdir(parents=True, exist_ok=True)
    # The certificate names "localhost": mbsync checks the name against Host.
    tls = (f"SSLType IMAPS\nCertificateFile {args.cert}" if args.tls == "imaps"
           else "SSLType None")
    conf.write_text(MBSYNCRC.format(host="localhost" if args.tls == "imaps" else args.host,
                                    port=_port(args), user=args.user, out=root / "mbsync",
                                    tls=tls,
                                    fsync="FSync no" if args.mbsync_fsync == "no" else ""))
    pst = [sys.executable, __file__, "--worker", "--host", args.host, "--port", str(args.port),
           "--imaps-port", str(args.imaps_port), "--tls", args.tls,
           "--user", args.user, "--connections", str(args.connections),
           "--pstkit-target", args.pstkit_target, "--out", str(root / "pstkit")]
    mbs = ["mbsync", "-q", "-c", str(conf), "bench"]
    results: dict[str, list[Measured]] = {"pstkit": [], "mbsync": []}
    try:
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            results["mbsync"].append(measure("mbsync", mbs, root / "mbsync", env))
            results["pstkit"].append(measure("pstkit", pst, root / "pstkit", env))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _report(results, args)


def _report(results: dict[str, list[Measured]], args: argparse.Namespace) -> None:
    print(f"bench: {args.runs} run(s), medians; transport={args.tls} for both; "
          f"pstkit target={args.pstkit_target}, connections={args.connections}; "
          f"mbsync FSync={args.mbsync_fsync}")
    print(f"{'tool':8} {'wall s':>7} {'cpu s':>7} {'msg/s':>7} {'MB/s':>7} {'RSS MiB':>8} "
          f"{'messages':>9} {'MB':>7}")
    med: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for tool, runs in results.items():
        wall = statistics.median(r.wall for r in runs)
        m = runs[-1]
        med[tool] = wall
        cpu[tool] = statistics.median(r.cpu for r in runs)
        print(f"{tool:8} {wall:7.2f} {cpu[tool]:7.2f} "
              f"{m.messages / wall:7.0f} {m.nbytes / wall / 1e6:7.1f} "
              f"{max(r.rss_mib for r in runs):8.0f} {m.messages:9d} {m.nbytes / 1e6:7.1f}")
    print(f"wall ratio pstkit/mbsync: {med['pstkit'] / med['mbsync']:.2f} "
          f"(< 1 means pstkit is faster); CPU ratio: {cpu['pstkit'] / cpu['mbsync']:.2f}")
    for tool, runs in results.items():
        print(f"  {tool} runs: " + ", ".join(f"{r.wall:.2f}s/{r.cpu:.2f}cpu" for r in runs))
    counts = {t: r[-1].messages for t, r in results.items()}
    if counts["pstkit"] != counts["mbsync"]:
        print(f"WARNING: message counts differ: {counts}")


def _port(args: argparse.Namespace) -> int:
    return int(args.imaps_port if args.tls == "imaps" else args.port)


def _check_server(host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        sys.exit(f"no IMAP server at {host}:{port} ({e}); start it with "
                 "BENCH_MESSAGES=5000 BENCH_SEED=1 bash ../shared/bench/dovecot-up.sh")
    if shutil.which("mbsync") is None:
        sys.exit("mbsync not found: apt-get install isync")


if __name__ == "__main__":
    main()
