"""Connecting and logging in: TLS, STARTTLS, credentials, clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pstkit.converters.imap.conn import ImapConnector
from pstkit.converters.imap.source import ImapSource
from pstkit.errors import AuthError, ConnectError, SecretError, TLSError, UsageError
from pstkit.location import parse_location
from pstkit.options import ConnectOptions, SecretSpec
from tests.servers.dovecot import Account, Dovecot, TlsFiles, free_port, serve, unique_user
from tests.servers.mail_helpers import options, source
from tests.servers.oauth import TokenInfoServer


@pytest.fixture()
def user(dovecot: Dovecot) -> Account:
    return dovecot.add_user(unique_user(), "right")


def _login(dovecot: Dovecot, user: Account, tmp_path: Path, scheme: str, **kw: object) -> None:
    src = source(dovecot, user, tmp_path, scheme, **kw)
    try:
        assert ("INBOX",) in [f.path for f in src.folders()]
    finally:
        src.close()


def test_imaps_with_ca_file(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    _login(dovecot, user, tmp_path, "imaps")


def test_starttls_with_ca_file(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    src = source(dovecot, user, tmp_path, "imap")
    client = src._connector.open()
    try:
        assert client._starttls_done  # upgraded before LOGIN
    finally:
        client.logout()
        src.close()


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_untrusted_certificate_is_a_tls_error(
    dovecot: Dovecot, user: Account, tmp_path: Path, scheme: str
) -> None:
    with pytest.raises(TLSError, match="certificate not trusted") as e:
        _login(dovecot, user, tmp_path, scheme, ca_file=None)
    assert e.value.exit_code == 5
    assert "--ca-file" in e.value.hint_text()


def test_insecure_skips_verification(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    _login(dovecot, user, tmp_path, "imaps", ca_file=None, insecure=True)


def test_no_password_in_clear_without_insecure(
    dovecot: Dovecot, user: Account, tmp_path: Path
) -> None:
    with pytest.raises(TLSError, match="refusing to send credentials in clear"):
        _login(dovecot, user, tmp_path, "imap", starttls=False)
    _login(dovecot, user, tmp_path, "imap", starttls=False, insecure=True)


def test_wrong_password_is_auth_error_not_retried(
    dovecot: Dovecot, user: Account, tmp_path: Path
) -> None:
    pw = tmp_path / "wrong"
    pw.write_text("wrong\n")
    loc = parse_location(f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}")
    conn = ImapConnector(loc, options(pw, ca_file=dovecot.ca_file))
    before = dovecot.log_file.read_text().count(f"user=<{user.name}>")
    with pytest.raises(AuthError, match="AUTHENTICATIONFAILED") as e:
        conn.reopen(attempts=3, first_delay=0.01)
    assert e.value.exit_code == 6
    assert "wrong" not in str(e.value)
    # One attempt only: the log names the user once per failed login. The
    # login process writes that line when the client has gone, so wait for it.
    def seen() -> int:
        return dovecot.log_file.read_text().count(f"user=<{user.name}>") - before

    deadline = time.monotonic() + 20
    while seen() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a retry's line would be next
    assert seen() == 1


def test_refused_connection(tmp_path: Path) -> None:
    loc = parse_location(f"imaps://nobody@127.0.0.1:{free_port()}")
    pw = tmp_path / "pw"
    pw.write_text("x")
    with pytest.raises(ConnectError, match="connection refused"):
        ImapSource(loc, options(pw)).folders()


def test_unknown_host(tmp_path: Path) -> None:
    loc = parse_location("imaps://nobody@no-such-host.invalid")
    pw = tmp_path / "pw"
    pw.write_text("x")
    with pytest.raises(ConnectError, match="unknown host"):
        ImapSource(loc, options(pw)).folders()


def test_missing_password_is_a_secret_error(dovecot: Dovecot, user: Account) -> None:
    loc = parse_location(f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}")
    opts = ConnectOptions(
        password=SecretSpec(env="PSTKIT_TEST_UNSET_VAR", prompt=False), ca_file=dovecot.ca_file
    )
    with pytest.raises(SecretError):
        ImapSource(loc, opts).folders()


def test_bad_ca_file_is_a_tls_error(tmp_path: Path) -> None:
    loc = parse_location("imaps://u@127.0.0.1")
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TLSError, match="cannot load --ca-file"):
        ImapSource(loc, ConnectOptions(ca_file=bad))


@pytest.mark.parametrize("auth", ["auto", "xoauth2", "oauthbearer"])
def test_oauth_token_login(dovecot_tls: TlsFiles, tmp_path: Path, auth: str) -> None:
    tokens = TokenInfoServer()
    try:
        for server in serve(dovecot_tls, oauth=tokens):
            user = server.add_user("oauthuser", "unused-password")
            token_file = tmp_path / "token"
            token_file.write_text(tokens.issue(user.name) + "\n")
            spec = SecretSpec(file=token_file, prompt=False, label="token")
            loc = parse_location(f"imaps://{user.name}@127.0.0.1:{server.imaps_port}")
            opts = ConnectOptions(token=spec, auth=auth, ca_file=server.ca_file)
            src = ImapSource(loc, opts)
            assert ("INBOX",) in [f.path for f in src.folders()]
            src.close()
            token_file.write_text("not-a-valid-token")
            with pytest.raises(AuthError):
                ImapSource(loc, opts).folders()
    finally:
        tokens.close()


def test_imaplib_debug_trace_is_off(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    # imapclient turns imaplib's debug level to 5, which formats the repr of
    # every fetched message for a dropped log line (4x slower FETCH).
    src = source(dovecot, user, tmp_path)
    client = src._connector.open()
    try:
        assert client._imap.debug == 0
    finally:
        client.logout()
        src.close()


def test_bad_converter_option_is_a_usage_error(tmp_path: Path) -> None:
    loc = parse_location("imaps://u@127.0.0.1")
    with pytest.raises(UsageError, match="imap_fetch_batch"):
        ImapSource(loc, ConnectOptions(extra={"imap_fetch_batch": "0"}))
