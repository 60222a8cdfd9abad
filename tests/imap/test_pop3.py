"""Pop3Source against a real Dovecot, plus its pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pstkit.converters.imap.pop3 import (
    Pop3Source,
    read_multiline,
    received_from_headers,
    trim_added_crlf,
)
from pstkit.errors import AuthError, ConnectError, TLSError, TransientError
from pstkit.location import parse_location
from pstkit.model import Fetched, FetchResult, Role, Skipped
from pstkit.options import FetchFilter
from tests.servers.dovecot import Account, Dovecot, free_port, unique_user
from tests.servers.mail_helpers import options, password_file, server_bodies, sha


def pop3(server: Dovecot, account: Account, tmp: Path, scheme: str = "pop3s",
         **kw: object) -> Pop3Source:
    port = {"pop3s": server.pop3s_port, "pop3": server.pop3_port}[scheme]
    kw.setdefault("ca_file", server.ca_file)
    loc = parse_location(f"{scheme}://{account.name}@127.0.0.1:{port}")
    return Pop3Source(loc, options(password_file(tmp, account), **kw))


def run(src: Pop3Source, filt: FetchFilter | None = None,
        known: frozenset[tuple[str, str]] = frozenset()) -> list[FetchResult]:
    (inbox,) = src.folders()
    return list(src.fetch(inbox, None, filt or FetchFilter(), known))


def msg(n: int, extra: bytes = b"") -> bytes:
    return (b"Received: from x by mx; Tue, 2 Mar 2021 10:00:%02d +0100\r\n"
            b"Date: Mon, 1 Mar 2021 09:00:00 +0000\r\n"
            b"Subject: p%d\r\n\r\nbody\r\n%s" % (n, n, extra))


@pytest.fixture()
def user(dovecot: Dovecot) -> Account:
    return dovecot.add_user(unique_user("p"), "popsecret")


# --- pure ----------------------------------------------------------------------


def test_read_multiline_unstuffs_and_keeps_endings() -> None:
    wire = [b"a\r\n", b"..leading dot\r\n", b".\r\n", b"after\r\n"]
    assert read_multiline(iter(wire)) == b"a\r\n.leading dot\r\n"
    assert read_multiline(iter([b"x" * 5000 + b"\r\n", b".\r\n"])) == b"x" * 5000 + b"\r\n"
    with pytest.raises(EOFError):
        read_multiline(iter([b"no end\r\n"]))


def test_trim_added_crlf() -> None:
    assert trim_added_crlf(b"a\r\nb\r\n", 4) == b"a\r\nb"
    assert trim_added_crlf(b"a\r\nb\r\n", 6) == b"a\r\nb\r\n"
    assert trim_added_crlf(b"a\r\nb\r\n", 999) == b"a\r\nb\r\n"


def test_received_from_headers() -> None:
    assert received_from_headers(msg(7)) == datetime(2021, 3, 2, 9, 0, 7, tzinfo=UTC)
    folded = b"Received: from a\r\n\tby b;\r\n Wed, 3 Mar 2021 00:00:00 +0000\r\n\r\nx"
    assert received_from_headers(folded) == datetime(2021, 3, 3, tzinfo=UTC)
    assert received_from_headers(b"Date: Thu, 4 Mar 2021 01:02:03 -0000\r\n\r\n") == \
        datetime(2021, 3, 4, 1, 2, 3, tzinfo=UTC)
    assert received_from_headers(b"Subject: none\r\n\r\nDate: in body\r\n") is None


# --- against Dovecot -------------------------------------------------------------


def test_bytes_equal_imap_body(dovecot: Dovecot, user: Account, tmp_path: Path,
                               corpus: Path) -> None:
    tricky = [msg(1), msg(2, b"." * 3 + b"\r\n.\r\n" + b"L" * 9000 + b"\r\n"),
              b"Subject: 8bit\r\n\r\n\xe4\xf6\xfc\r\n"]
    for raw in tricky:
        dovecot.append(user, "INBOX", raw)
    for p in sorted((corpus / "eml").iterdir()):
        try:
            dovecot.append(user, "INBOX", p.read_bytes())
        except Exception:  # a few corpus files are not acceptable to APPEND (e.g. NUL)
            continue
    src = pop3(dovecot, user, tmp_path)
    results = run(src)
    src.close()
    truth = server_bodies(dovecot, user, "INBOX")
    assert len(results) == len(truth) > 40
    for r, uid in zip(results, sorted(truth), strict=True):
        assert isinstance(r, Fetched)
        # Dovecot's IMAP turns NUL into 0x80 (IMAP literals cannot carry NUL);
        # its POP3 sends the stored byte.
        assert sha(r.raw.replace(b"\0", b"\x80")) == sha(truth[uid])
        assert r.meta.size == len(r.raw)
        assert r.meta.folder == ("INBOX",) and r.meta.source_epoch == ""
        assert r.cursor is None
    assert [r.raw for r in results[:3] if isinstance(r, Fetched)] == tricky  # as appended


def test_folders_and_uidl_incremental(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    for i in range(3):
        dovecot.append(user, "INBOX", msg(i))
    src = pop3(dovecot, user, tmp_path)
    (inbox,) = src.folders()
    assert inbox.path == ("INBOX",) and inbox.role is Role.INBOX
    first = run(src)
    src.close()
    ids = [r.meta.source_id for r in first]
    assert len(set(ids)) == 3
    dovecot.append(user, "INBOX", msg(9))
    src = pop3(dovecot, user, tmp_path)
    again = run(src, known=frozenset(("", i) for i in ids))
    src.close()
    assert len(again) == 1 and again[0].meta.source_id not in ids
    assert isinstance(again[0], Fetched) and b"Subject: p9" in again[0].raw


def test_no_delete_without_flag(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    for i in range(2):
        dovecot.append(user, "INBOX", msg(i))
    src = pop3(dovecot, user, tmp_path)
    results = run(src)
    src.committed(src.folders()[0], [r.meta.source_id for r in results])
    src.close()
    assert len(server_bodies(dovecot, user, "INBOX")) == 2


def test_delete_after_export_only_committed_and_at_quit(dovecot: Dovecot, user: Account,
                                                        tmp_path: Path) -> None:
    for i in range(4):
        dovecot.append(user, "INBOX", msg(i))
    src = pop3(dovecot, user, tmp_path, delete_after_export=True)
    (inbox,) = src.folders()
    results = list(src.fetch(inbox, None, FetchFilter(), frozenset()))
    src.committed(inbox, [results[0].meta.source_id, results[2].meta.source_id])
    assert len(server_bodies(dovecot, user, "INBOX")) == 4  # nothing before QUIT
    src.close()
    left = server_bodies(dovecot, user, "INBOX")
    kept = [r for i, r in enumerate(results) if i in (1, 3) and isinstance(r, Fetched)]
    assert [sha(b) for b in left.values()] == [sha(r.raw) for r in kept]
    assert len(kept) == 2


def test_crash_before_quit_deletes_nothing(dovecot: Dovecot, user: Account,
                                           tmp_path: Path) -> None:
    dovecot.append(user, "INBOX", msg(1))
    src = pop3(dovecot, user, tmp_path, delete_after_export=True)
    (inbox,) = src.folders()
    results = list(src.fetch(inbox, None, FetchFilter(), frozenset()))
    src.committed(inbox, [r.meta.source_id for r in results])
    assert dovecot.kick(user), dovecot.kick_failure  # the session dies before QUIT
    with pytest.raises(TransientError, match="nothing deleted"):
        src.close()
    assert len(server_bodies(dovecot, user, "INBOX")) == 1


def test_filters(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    for i in range(4):
        dovecot.append(user, "INBOX", msg(i, b"z" * (50_000 if i == 1 else 0)))
    src = pop3(dovecot, user, tmp_path)
    big = run(src, FetchFilter(max_size=20_000))
    assert [type(r) for r in big] == [Fetched, Skipped, Fetched, Fetched]
    assert isinstance(big[1], Skipped) and big[1].reason == "larger than --max-size (20000 bytes)"
    window = run(src, FetchFilter(since=datetime(2021, 3, 2, 9, 0, 1, tzinfo=UTC),
                                  before=datetime(2021, 3, 2, 9, 0, 3, tzinfo=UTC)))
    assert [r.meta.received for r in window] == [datetime(2021, 3, 2, 9, 0, s, tzinfo=UTC)
                                                 for s in (1, 2)]
    newest = run(src, FetchFilter(newest_first=True))
    assert [r.meta.source_id for r in newest] == [r.meta.source_id for r in big][::-1]
    src.close()


def test_dropped_connection_continues(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    for i in range(6):
        dovecot.append(user, "INBOX", msg(i))
    src = pop3(dovecot, user, tmp_path)
    (inbox,) = src.folders()
    out = []
    for r in src.fetch(inbox, None, FetchFilter(), frozenset()):
        out.append(r)
        if len(out) == 2:
            assert dovecot.kick(user), dovecot.kick_failure
    src.close()
    assert len(out) == 6 and len({r.meta.source_id for r in out}) == 6


@pytest.mark.parametrize(("scheme", "kw"), [
    ("pop3", {}),  # STLS
    ("pop3s", {}),
    ("pop3s", {"auth": "apop"}),
])
def test_tls_and_login_variants(dovecot: Dovecot, user: Account, tmp_path: Path, scheme: str,
                                kw: dict[str, object]) -> None:
    dovecot.append(user, "INBOX", msg(1))
    src = pop3(dovecot, user, tmp_path, scheme, **kw)
    assert len(run(src)) == 1
    src.close()


@pytest.mark.parametrize("scheme", ["pop3", "pop3s"])
def test_untrusted_certificate(dovecot: Dovecot, user: Account, tmp_path: Path,
                               scheme: str) -> None:
    with pytest.raises(TLSError, match="certificate not trusted"):
        pop3(dovecot, user, tmp_path, scheme, ca_file=None).folders()


def test_clear_text_refused_without_insecure(dovecot: Dovecot, user: Account,
                                             tmp_path: Path) -> None:
    with pytest.raises(TLSError, match="in clear"):
        pop3(dovecot, user, tmp_path, "pop3", starttls=False).folders()
    src = pop3(dovecot, user, tmp_path, "pop3", starttls=False, insecure=True)
    assert len(src.folders()) == 1
    src.close()


def test_wrong_password_and_refused(dovecot: Dovecot, user: Account, tmp_path: Path) -> None:
    bad = Account(user.name, "nope", user.home)
    with pytest.raises(AuthError) as e:
        pop3(dovecot, bad, tmp_path).folders()
    assert "nope" not in str(e.value) and e.value.exit_code == 6
    loc = parse_location(f"pop3s://x@127.0.0.1:{free_port()}")
    with pytest.raises(ConnectError, match="connection refused"):
        Pop3Source(loc, options(password_file(tmp_path, user))).folders()
