"""Quota-limited users on the test Dovecot (wraps tests.servers.dovecot, does
not change it): a per-user storage quota and a per-user maximum mail size,
set through userdb extra fields read by Dovecot's quota plugin."""

from __future__ import annotations

from tests.servers.dovecot import Account, Dovecot


def add_limited_user(server: Dovecot, name: str, password: str, *,
                     quota_bytes: int | None = None,
                     max_mail_size: int | None = None) -> Account:
    """A user whose APPENDs get `NO [OVERQUOTA]` beyond `quota_bytes` and
    `NO [LIMIT]` for a single message larger than `max_mail_size`."""
    account = server.add_user(name, password, quota_bytes=quota_bytes)
    if max_mail_size is not None:
        path = server.users_dir / name
        line = path.read_text().rstrip("\n")
        sep = " " if line.split(":")[-1] else ""
        path.write_text(f"{line}{sep}userdb_quota_max_mail_size={max_mail_size}B\n")
    return account
