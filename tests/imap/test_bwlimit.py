"""`--bwlimit` (issue 15.13) over a real Dovecot: an export and an import limited to
RATE bytes/s take at least (bytes - one second's burst) / RATE. A lower bound only: a
loaded machine makes a run slower, never faster, so this cannot flake."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pstkit.bwlimit import TokenBucket, parse_rate
from pstkit.errors import UsageError
from tests.helpers import cli, make_message, run_pstkit, write_maildir
from tests.imap.servers_helpers import server_digests, store_digests
from tests.servers.dovecot import Dovecot, unique_user

PW = "pw"
N, SIZE = 12, 20_000
RATE = 64 * 1024  # --bwlimit 64K


def _expected_seconds(store: Path) -> float:
    total = sum(p.stat().st_size for p in (store / "mail").rglob("*") if p.is_file())
    assert total > 3 * RATE, total  # the limit must matter
    return (total - RATE) / RATE


def test_export_and_import_honour_bwlimit(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user(), PW)
    dovecot.append_many(user, "INBOX", [(make_message(i, size=SIZE), (), None)
                                        for i in range(N)])  # fmt: skip
    store = tmp_path / "store"
    url = f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}"
    env = {"PSTKIT_PASSWORD": PW}
    start = time.monotonic()
    done = run_pstkit("export", url, store, "--ca-file", dovecot.ca_file, "--bwlimit", "64K",
                      env=env)  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    least = _expected_seconds(store)
    assert took >= least, f"export took {took:.2f} s, a 64K limit needs >= {least:.2f} s"

    target = dovecot.add_user(unique_user(), PW)
    start = time.monotonic()
    done = run_pstkit("import", store, f"imaps://{target.name}@127.0.0.1:{dovecot.imaps_port}",
                      "--ca-file", dovecot.ca_file, "--bwlimit", "64K", env=env)  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert took >= least, f"import took {took:.2f} s, a 64K limit needs >= {least:.2f} s"
    assert server_digests(dovecot, target) == store_digests(store)


def test_local_copy_honours_bwlimit(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_maildir(src, {"": [(make_message(i, size=SIZE), "") for i in range(N)]})
    start = time.monotonic()
    code, out, err = cli("export", f"maildir:{src}", str(tmp_path / "st"), "--bwlimit", "128K")
    took = time.monotonic() - start
    assert code == 0, out + err
    total = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    assert took >= (total - 128 * 1024) / (128 * 1024)


def test_bad_bwlimit_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pstkit("export", f"maildir:{tmp_path}", tmp_path / "st", "--bwlimit", "fast")
    assert done.returncode == 2
    assert "cannot read --bwlimit 'fast'" in done.stderr
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize(("text", "rate"), [
    ("800", 800.0), ("512K", 524288.0), ("1.5M", 1.5 * 1024**2), ("2G", 2.0 * 1024**3),
    ("10MiB", 10.0 * 1024**2), ("4kB/s", 4096.0), ("off", None), ("0", None), (None, None),
])  # fmt: skip
def test_parse_rate(text: str | None, rate: float | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-1K", "1T", "0.5"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_rate(text)


def test_bucket_waits_off_its_debt() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(1000.0, clock=lambda: now[0], sleep=sleep)
    assert bucket.take(1000) == 0.0  # the first second's burst
    assert bucket.take(500) == pytest.approx(0.5)
    assert bucket.take(3000) == pytest.approx(3.0)  # larger than the bucket: a debt
    now[0] += 10.0  # idle: refills to the burst, not beyond
    assert bucket.take(1000) == 0.0
    assert bucket.take(1) == pytest.approx(0.001)
    assert sum(slept) == pytest.approx(3.501)
