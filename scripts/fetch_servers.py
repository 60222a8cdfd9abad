"""Fetch the IMAP servers of the test matrix that cannot be installed next to Dovecot.

Cyrus IMAP and Courier-IMAP conflict with the `dovecot-imapd` package (all three provide
`imap-server`), so they are not installed: `apt-get download` fetches their .deb files
and the library packages they need that this machine lacks, and `dpkg-deb -x` unpacks
them into one tree (no maintainer scripts run, nothing outside the cache is touched).
The test fixtures (tests/servers/cyrus.py, courier.py) run the binaries from there with
LD_LIBRARY_PATH pointing into the tree.

    python3 scripts/fetch_servers.py [CACHE]   # default: $PSTKIT_SERVERS, else
                          # /var/cache/pstkit-servers as root, ~/.cache/pstkit-servers if not

Re-running is cheap: a package already unpacked at its candidate version is skipped.
Where a package cannot be had (no such package, no network), CACHE/<server>.missing
says why, and the fixture skips with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What each server needs beyond what a Dovecot test machine has. Library dependencies
# are found by following `apt-cache depends` through packages named lib*.
SERVERS: dict[str, tuple[str, ...]] = {
    "cyrus": ("cyrus-imapd", "cyrus-common", "sasl2-bin"),
    "courier": ("courier-imap", "courier-base", "courier-authlib", "courier-authdaemon",
                "courier-authlib-userdb", "gamin", "libgamin0"),
}


def cache_dir(arg: str | None = None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("PSTKIT_SERVERS")
    if env:
        return Path(env)
    # As root the servers run as "nobody", who cannot enter /root.
    return (Path("/var/cache/pstkit-servers") if os.geteuid() == 0
            else Path.home() / ".cache" / "pstkit-servers")


def _out(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def installed(package: str) -> bool:
    return "install ok installed" in _out("dpkg-query", "-W", "-f=${Status}", package)


def depends(package: str) -> list[str]:
    """Direct Depends/PreDepends of `package`, first alternative of each only."""
    out = _out("apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
               "--no-breaks", "--no-replaces", "--no-enhances", package)
    found: list[str] = []
    take = True  # a line after " |Depends:" is an alternative to the one before
    for line in out.splitlines()[1:]:
        kind, _, name = line.strip().partition(": ")
        if kind.lstrip("|") in ("Depends", "PreDepends") and take and not name.startswith("<"):
            found.append(name.split(":")[0])
        take = not kind.startswith("|")
    return found


def closure(roots: tuple[str, ...]) -> list[str]:
    """The roots plus every lib* package they need, recursively, that is not installed."""
    want: list[str] = []
    todo = list(roots)
    seen: set[str] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        if p not in roots and (not p.startswith("lib") or installed(p)):
            continue
        want.append(p)
        todo.extend(depends(p))
    return sorted(want)


def candidate(package: str) -> str:
    for line in _out("apt-cache", "policy", package).splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    return ""


def fetch(server: str, cache: Path) -> str | None:
    """Download and unpack one server; None when done, else why not."""
    debs, root = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(exist_ok=True)
    done = cache / f"{server}.done"
    if done.exists() and done.read_text() == _versions(server):
        return None  # unpacked before, same versions: skip the slow dependency walk
    for p in closure(SERVERS[server]):
        version = candidate(p)
        if not version or version == "(none)":
            return f"package {p} is not available from apt (apt-get update? not Debian?)"
        stamp = cache / "unpacked" / f"{p}_{version.replace(':', '%3a')}"
        if stamp.exists():
            continue
        got = subprocess.run(["apt-get", "download", "-q", f"{p}={version}"], cwd=debs,
                             capture_output=True, text=True, check=False)
        deb = next(debs.glob(f"{p}_*.deb"), None)
        if got.returncode != 0 or deb is None:
            return f"apt-get download {p} failed: {got.stderr.strip()[-300:]}"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        deb.unlink()
        stamp.parent.mkdir(exist_ok=True)
        stamp.touch()
    done.write_text(_versions(server))
    return None


def _versions(server: str) -> str:
    return "".join(f"{p} {candidate(p)}\n" for p in SERVERS[server])


def main(argv: list[str]) -> int:
    cache = cache_dir(argv[1] if len(argv) > 1 else None)
    for server in SERVERS:
        missing = cache / f"{server}.missing"
        why = fetch(server, cache)
        if why is None:
            missing.unlink(missing_ok=True)
            print(f"{server}: ready in {cache / 'root'}", file=sys.stderr)
        else:
            missing.write_text(why + "\n")
            print(f"{server}: not available: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
