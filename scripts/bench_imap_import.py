#!/usr/bin/env python3
"""Import speed into IMAP: `pstkit import STORE imaps://…` vs `mbsync` pushing
the same Maildir to the same Dovecot, in the same run.

Self-contained: generates the bench mailbox with ../shared/bench/genmail.py,
starts a private Dovecot on 127.0.0.1 with tests/servers/dovecot.py (IMAPS,
its own CA), exports the Maildir into a pstkit store (not timed), then per run
gives each tool a fresh account and times it as a child process (wall time,
user+sys CPU, peak RSS via wait4). Both use IMAPS with certificate checks.
Afterwards it counts what each account holds: a tool that lost or doubled
messages is reported as such.

    python scripts/bench_imap_import.py --messages 2000 --runs 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers.common import make_tls  # noqa: E402
from tests.servers.dovecot import Account, Dovecot, serve  # noqa: E402

GENMAIL = REPO.parent / "shared" / "bench" / "genmail.py"
PSTKIT = "from pstkit.cli import main; main()"
# mbsync checks the certificate by host name only (not IP SANs): "localhost",
# which resolves to 127.0.0.1 here.
MBSYNCRC = """IMAPAccount far
Host localhost
Port {port}
User {user}
Pass {password}
SSLType IMAPS
CertificateFile {ca}
AuthMechs LOGIN

IMAPStore far
Account far

MaildirStore near
Inbox {near}
SubFolders Maildir++

Channel push
Far :far:
Near :near:
Patterns *
Create Far
Remove None
Expunge None
Sync Push
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


def timed(tool: str, cmd: list[str], env: dict[str, str], server: Dovecot, user: Account
          ) -> Measured:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"{tool} failed: {err.strip()[-500:]}", file=sys.stderr)
    return Measured(tool, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                    count(server, user))


def count(server: Dovecot, user: Account) -> int:
    total = 0
    with server.client(user) as c:
        for attrs, _, name in c.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(attrs):
                continue
            total += int(c.folder_status(name, ["MESSAGES"])[b"MESSAGES"])
    return total


def run(args: argparse.Namespace, tmp: Path, server: Dovecot) -> list[Measured]:
    src, store = tmp / "src", tmp / "store"
    subprocess.run([sys.executable, str(GENMAIL), "--messages", str(args.messages),
                    "--seed", str(args.seed), "--out", str(src)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "pstkit", "export", f"maildir:{src}", str(store)],
                   cwd=REPO, check=True, capture_output=True)
    env = {**os.environ, "PSTKIT_PASSWORD": "pw"}
    out: list[Measured] = []
    for n in range(args.runs):
        p = server.add_user(f"pstkit{n}", "pw")
        cmd = [sys.executable, "-c", PSTKIT, "import", str(store),
               f"imaps://{p.name}@127.0.0.1:{server.imaps_port}", "--ca-file",
               str(server.ca_file)]
        if args.connections is not None:  # else the CLI's default (2 into an IMAP server)
            cmd += ["--connections", str(args.connections)]
        out.append(timed("pstkit", cmd, env, server, p))
        m = server.add_user(f"mbsync{n}", "pw")
        near = tmp / f"near{n}"
        shutil.copytree(src, near)  # mbsync writes its state into the Maildir
        rc = tmp / f"mbsyncrc{n}"
        rc.write_text(MBSYNCRC.format(port=server.imaps_port, user=m.name, password="pw",
                                      ca=server.ca_file, near=near))
        out.append(timed("mbsync", ["mbsync", "-q", "-c", str(rc), "push"], env, server, m))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--connections", type=int, default=None,
                    help="pstkit's --connections (default: the CLI's own; mbsync has one)")
    args = ap.parse_args()
    for tool in ("dovecot", "mbsync", "openssl"):
        if shutil.which(tool) is None:
            print(f"needs {tool}", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="pstkit-bench-imap-"))
    os.chmod(tmp, 0o755)
    try:
        with contextlib.contextmanager(serve)(make_tls(tmp / "tls")) as server:
            results = run(args, tmp, server)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'tool':8} {'wall s':>8} {'cpu s':>8} {'RSS MiB':>8} {'msg/s':>8} {'held':>6}")
    for r in results:
        print(f"{r.tool:8} {r.wall:8.2f} {r.cpu:8.2f} {r.rss_mib:8.1f} "
              f"{r.messages / r.wall:8.0f} {r.messages:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
