"""A private Redis and `pstkit worker` processes for tests, all on 127.0.0.1.

`redis_server` (per module) runs Debian's `redis-server` on a free port with
an append-only file in a throw-away directory, so `restart()` keeps the
queue like a production Redis configured as the README says. `Workers`
starts `pstkit worker` processes, each in a working directory of its own
(as if on separate machines) and in its own process group, so that a test
can kill -9 one whole worker (its pool processes too).

Use with `pytest_plugins = ["tests.servers.redis"]`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.dovecot import HOST, free_port

REPO = Path(__file__).resolve().parents[2]


class Redis:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.log = root / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--bind", HOST, "--port", str(self.port), "--dir", str(self.root),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--logfile", str(self.log)]  # fmt: skip
        self._proc = subprocess.Popen(args, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log.read_text()[-2000:]}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not come up")

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)  # a clean shutdown: the AOF is complete
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def cli(self, *args: str, **kw: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["redis-cli", "-h", HOST, "-p", str(self.port), *args], **kw)  # type: ignore[call-overload]


class Workers:
    """`pstkit worker` processes by name; each in its own directory and session."""

    def __init__(self, redis: Redis, root: Path, key_file: Path, visibility: float) -> None:
        self.redis, self.root, self.key_file, self.visibility = redis, root, key_file, visibility
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "pstkit", "worker", "--broker", self.redis.url,
                "--name", f"{name}@test", "--secret-key-file", str(self.key_file),
                "--visibility-timeout", str(self.visibility), "--max-attempts", "2"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home)}
        with open(home / "worker.log", "ab") as log:
            self.procs[name] = subprocess.Popen(args, cwd=home, stdout=log, stderr=log, env=env,
                                                start_new_session=True)  # fmt: skip

    def kill(self, name: str) -> None:
        """kill -9 the worker and its pool processes (a machine gone)."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str) -> str:
        path = self.root / name / "worker.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def redis_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    if not redis_available():
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    pytest.importorskip("celery", reason="pip install 'pstkit[celery]'")
    root = Path(tempfile.mkdtemp(prefix="pstkit-redis-"))
    server = Redis(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
