"""`imap://` or `pop3://` to an implicit-TLS port (issue 15.11): the server waits for our
TLS hello while we wait for its greeting. pstkit must notice within seconds (not the
60 s timeout) and say "this port speaks TLS: try imaps://"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pstkit.converters.imap.tlsprobe import speaks_tls
from tests.helpers import run_pstkit
from tests.servers.dovecot import Dovecot, unique_user

#: GREETING_WAIT (3 s) plus the probe and a loaded machine's slack; far below 60 s
BOUND = 15.0


@pytest.mark.parametrize(("scheme", "port_of", "tls_scheme"), [
    ("imap", "imaps_port", "imaps"), ("pop3", "pop3s_port", "pop3s"),
])  # fmt: skip
def test_plain_scheme_on_a_tls_port_says_try_tls(
    dovecot: Dovecot, tmp_path: Path, scheme: str, port_of: str, tls_scheme: str
) -> None:
    user = dovecot.add_user(unique_user(), "pw")
    port = getattr(dovecot, port_of)
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    start = time.monotonic()
    done = run_pstkit("folders", f"{scheme}://{user.name}@127.0.0.1:{port}", "--ca-file",
                      str(dovecot.ca_file), "--password-file", str(secret), timeout=60)  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 5, done.stderr
    assert "this port speaks TLS" in done.stderr, done.stderr
    assert f"try {tls_scheme}://{user.name}@127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert took < BOUND, f"took {took:.1f} s"


def test_the_probe_tells_tls_from_plain_ports(dovecot: Dovecot) -> None:
    assert speaks_tls("127.0.0.1", dovecot.imaps_port, 5)
    assert speaks_tls("127.0.0.1", dovecot.pop3s_port, 5)
    assert not speaks_tls("127.0.0.1", dovecot.imap_port, 5)
    assert not speaks_tls("127.0.0.1", dovecot.pop3_port, 5)


def test_the_right_scheme_still_connects(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user(), "pw")
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    done = run_pstkit("folders", f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}",
                      "--ca-file", str(dovecot.ca_file), "--password-file", str(secret))
    assert done.returncode == 0, done.stderr
    assert "INBOX" in done.stdout
