"""ImapSink against the real Dovecot of tests/servers: delivery, folders,
duplicates, delete, inventory, drops and quota."""

from __future__ import annotations

import concurrent.futures
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pstkit.converters.imap.sink import ImapSink
from pstkit.errors import AuthError, QuotaExceeded, UsageError
from pstkit.location import parse_location
from pstkit.model import Delivered, Flag, Role
from pstkit.options import ConnectOptions, FetchFilter, SecretSpec
from pstkit.protocols import Failed
from tests.helpers import make_message
from tests.imap.test_sink_helpers import CuttingProxy, mailbox, sink, stored
from tests.servers.dovecot import Dovecot, TlsFiles, serve, unique_user
from tests.servers.dovecot_quota import add_limited_user
from tests.servers.mail_helpers import fetched, source
from tests.servers.oauth import TokenInfoServer

T0 = datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_put_batch_exact_bytes_flags_dates_and_appenduid(dovecot: Dovecot, tmp_path: Path
                                                         ) -> None:
    user = dovecot.add_user(unique_user("sk"), "pw")
    s = sink(dovecot, user, tmp_path)
    path = ("Факторы", "Überweisungen & Co", "2024")
    s.ensure_folder(path, None)
    flag_sets = [frozenset(), frozenset({Flag.SEEN}), frozenset({Flag.ANSWERED, Flag.SEEN}),
                 frozenset({Flag.FLAGGED, Flag.DRAFT}), frozenset({Flag.FORWARDED})]
    batch = [(stored(i, make_message(i), path, flag_sets[i], frozenset({"Work"}) if i == 2
                     else frozenset(), T0 + timedelta(days=i)), make_message(i))
             for i in range(5)]
    results = s.put_batch(path, batch)
    s.close()
    assert all(isinstance(r, Delivered) for r in results)
    got = mailbox(dovecot, user, "/".join(path))
    assert len(got) == 5
    by_uid = {int(r.target_id.split(":")[1]): i for i, r in enumerate(results)
              if isinstance(r, Delivered)}
    for uid, (raw, flags, when) in got.items():
        i = by_uid[uid]
        assert hashlib.sha256(raw).hexdigest() == hashlib.sha256(make_message(i)).hexdigest()
        want = {a for a, f in (("\\Seen", Flag.SEEN), ("\\Answered", Flag.ANSWERED),
                               ("\\Flagged", Flag.FLAGGED), ("\\Draft", Flag.DRAFT),
                               ("$Forwarded", Flag.FORWARDED)) if f in flag_sets[i]}
        assert flags - {"\\Recent"} == want | ({"Work"} if i == 2 else set())
        assert when.astimezone(UTC) == T0 + timedelta(days=i)


def test_folders_report_special_use_roles_and_created_tree(dovecot: Dovecot, tmp_path: Path
                                                           ) -> None:
    user = dovecot.add_user(unique_user("sk"), "pw")
    s = sink(dovecot, user, tmp_path)
    s.ensure_folder(("Q1/Q2",), None)  # the delimiter inside a name: one folder, not two
    s.ensure_folder(("A", "B", "C"), None)
    roles = {f.path: f.role for f in s.folders()}
    s.close()
    assert roles[("INBOX",)] is Role.INBOX and roles[("Sent",)] is Role.SENT
    assert roles[("Trash",)] is Role.TRASH and roles[("Junk",)] is Role.JUNK
    assert ("Q1/Q2",) in roles and ("Q1",) not in roles
    assert ("A", "B", "C") in roles
    with dovecot.client(user) as c:
        subscribed = {n for _, _, n in c.list_sub_folders()}
    assert {"A/B/C", "Q1\u2215Q2"} <= subscribed


def test_find_duplicates_by_message_id_and_by_bytes(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("sk"), "pw")
    with_id = make_message(1)
    no_id = b"From: a@b\r\nSubject: no id\r\n\r\nbody one\r\n"
    same_size = b"From: a@b\r\nSubject: no id\r\n\r\nbody two\r\n"
    dovecot.append(user, "INBOX", with_id)
    dovecot.append(user, "INBOX", no_id)
    s = sink(dovecot, user, tmp_path)
    s.folders()
    assert len(s.find_duplicates(stored(1, with_id), with_id, ("INBOX",))) == 1
    assert len(s.find_duplicates(stored(2, no_id), no_id, ("INBOX",))) == 1
    assert s.find_duplicates(stored(3, same_size), same_size, ("INBOX",)) == []
    other = make_message(9)
    assert s.find_duplicates(stored(4, other), other, ("INBOX",)) == []
    # what this sink delivers is found too (the index is kept up to date)
    [res] = s.put_batch(("INBOX",), [(stored(4, other), other)])
    assert isinstance(res, Delivered)
    assert s.find_duplicates(stored(4, other), other, ("INBOX",)) == [res.target_id]
    s.close()


def test_delete_and_inventory(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("sk"), "pw")
    s = sink(dovecot, user, tmp_path)
    s.ensure_folder(("Box",), None)
    raws = [make_message(i) for i in range(3)]
    res = s.put_batch(("Box",), [(stored(i, r, ("Box",)), r) for i, r in enumerate(raws)])
    items = list(s.inventory(("Box",)))
    assert sorted(i.sha256 for i in items) == sorted(hashlib.sha256(r).hexdigest() for r in raws)
    assert {i.message_id for i in items} == {"<m0@test.example>", "<m1@test.example>",
                                            "<m2@test.example>"}
    assert {i.target_id for i in items} == {r.target_id for r in res if isinstance(r, Delivered)}
    first = res[0]
    assert isinstance(first, Delivered)
    s.delete(("Box",), [first.target_id])
    assert len(list(s.inventory(("Box",)))) == 2
    s.close()


def test_plain_literals_without_multiappend_or_literal_plus(dovecot: Dovecot, tmp_path: Path
                                                            ) -> None:
    """The slow path a minimal server gets: one synchronizing literal at a time."""
    user = dovecot.add_user(unique_user("sk"), "pw")
    s = sink(dovecot, user, tmp_path)
    s._caps = s._caps - {"MULTIAPPEND", "LITERAL+"}
    raws = [make_message(i) for i in range(3)]
    res = s.put_batch(("INBOX",), [(stored(i, r), r) for i, r in enumerate(raws)])
    s.close()
    assert all(isinstance(r, Delivered) and r.target_id for r in res)
    assert sorted(b for b, _, _ in mailbox(dovecot, user, "INBOX").values()) == sorted(raws)


def test_connection_cut_after_server_stored_batch_sends_nothing_twice(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """The server stored the batch but the client never heard: after the
    reconnect the sink finds the messages instead of sending them again."""
    user = dovecot.add_user(unique_user("sk"), "pw")
    proxy = CuttingProxy(dovecot.imap_port, cut_after=1)
    s = sink(dovecot, user, tmp_path, port=proxy.port)
    with_id = [make_message(i) for i in range(4)]
    no_id = [b"From: a@b\r\nSubject: x\r\n\r\nbody %d\r\n" % i for i in range(2)]
    raws = with_id + no_id
    res = s.put_batch(("INBOX",), [(stored(i, r), r) for i, r in enumerate(raws)])
    s.close()
    proxy.close()
    assert proxy.cuts == 1
    assert all(isinstance(r, Delivered) and r.target_id for r in res)
    assert len({r.target_id for r in res if isinstance(r, Delivered)}) == len(raws)
    got = sorted(b for b, _, _ in mailbox(dovecot, user, "INBOX").values())
    assert got == sorted(raws)  # each exactly once


def test_server_restart_between_batches_reconnects(fresh_dovecot: Dovecot, tmp_path: Path
                                                   ) -> None:
    user = fresh_dovecot.add_user(unique_user("sk"), "pw")
    s = sink(fresh_dovecot, user, tmp_path)
    first = make_message(1)
    assert isinstance(s.put_batch(("INBOX",), [(stored(1, first), first)])[0], Delivered)
    fresh_dovecot.restart()
    second = make_message(2)
    assert isinstance(s.put_batch(("INBOX",), [(stored(2, second), second)])[0], Delivered)
    s.close()
    assert sorted(b for b, _, _ in mailbox(fresh_dovecot, user, "INBOX").values()) == [
        first, second]


def test_over_quota_stops_with_clear_error(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("sq"), "pw", quota_bytes=20_000)
    s = sink(dovecot, user, tmp_path)
    raws = [make_message(i, size=4000) for i in range(10)]
    with pytest.raises(QuotaExceeded) as info:
        s.put_batch(("INBOX",), [(stored(i, r), r) for i, r in enumerate(raws)])
    s.close()
    assert "over quota" in info.value.message and "\n" not in info.value.message
    assert info.value.exit_code == 5


def test_too_big_message_fails_alone_and_batch_goes_on(dovecot: Dovecot, tmp_path: Path
                                                      ) -> None:
    """`NO [LIMIT]` for one message of a MULTIAPPEND batch: that message is a
    Failed with the server's reason, the others arrive once each."""
    user = add_limited_user(dovecot, unique_user("sl"), "pw", max_mail_size=10_000)
    s = sink(dovecot, user, tmp_path)
    good = [make_message(i) for i in range(3)]
    big = make_message(99, size=20_000)
    batch = [(stored(0, good[0]), good[0]), (stored(1, big), big),
             (stored(2, good[1]), good[1]), (stored(3, good[2]), good[2])]
    res = s.put_batch(("INBOX",), batch)
    s.close()
    assert [isinstance(r, Delivered) for r in res] == [True, False, True, True]
    assert isinstance(res[1], Failed) and "[LIMIT]" in res[1].reason
    assert sorted(b for b, _, _ in mailbox(dovecot, user, "INBOX").values()) == sorted(good)


@pytest.fixture()
def courier_like(dovecot_tls: TlsFiles) -> Iterator[Dovecot]:
    """Namespace prefix "INBOX." and "." as delimiter, as Courier/cPanel have."""
    yield from serve(dovecot_tls, prefix="INBOX.", separator=".")


def test_prefix_and_dot_delimiter_server(courier_like: Dovecot, tmp_path: Path) -> None:
    user = courier_like.add_user(unique_user("sc"), "pw")
    s = sink(courier_like, user, tmp_path)
    paths = [("Projekte", "v1.2"), ("Über",), ("INBOX", "Sub")]
    for i, p in enumerate(paths):
        s.ensure_folder(p, None)
        raw = make_message(i)
        assert isinstance(s.put_batch(p, [(stored(i, raw, p), raw)])[0], Delivered)
    found = {f.path: f for f in s.folders()}
    s.close()
    for p in paths:
        assert p in found, sorted(found)
    assert found[("Projekte", "v1.2")].source_name == "INBOX.Projekte.v1&ICQ-2"
    assert found[("Sent",)].role is Role.SENT
    with courier_like.client(user) as c:
        names = {n for _, _, n in c.list_folders()}
    assert {"INBOX.Projekte.v1\u20242", "INBOX.Über", "INBOX.Sub"} <= names
    # A new session sees INBOX.Sub the way this server shows it: top-level "Sub".
    again = sink(courier_like, user, tmp_path)
    assert ("Sub",) in {f.path for f in again.folders()}
    again.close()


def test_parallel_connections_each_thread_its_own(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("sp"), "pw")
    s = sink(dovecot, user, tmp_path)
    folders = [(f"F{n}",) for n in range(4)]
    for f in folders:
        s.ensure_folder(f, None)

    def work(f: tuple[str, ...]) -> list[Delivered | Failed]:
        raws = [make_message(100 * int(f[0][1:]) + i) for i in range(10)]
        return s.put_batch(f, [(stored(i, r, f), r) for i, r in enumerate(raws)])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, folders))
    s.close()
    assert all(isinstance(r, Delivered) for rs in results for r in rs)
    assert len(s._clients) == 0
    for n, f in enumerate(folders):
        assert len(mailbox(dovecot, user, f[0])) == 10, n


def test_xoauth2_token_login_delivers(dovecot_tls: TlsFiles, tmp_path: Path) -> None:
    tokens = TokenInfoServer()
    try:
        for server in serve(dovecot_tls, oauth=tokens):
            user = server.add_user("oauthsink", "unused-password")
            token_file = tmp_path / "token"
            token_file.write_text(tokens.issue(user.name) + "\n")
            spec = SecretSpec(file=token_file, prompt=False, label="token")
            loc = parse_location(f"imaps://{user.name}@127.0.0.1:{server.imaps_port}")
            s = ImapSink(loc, ConnectOptions(token=spec, auth="xoauth2", ca_file=server.ca_file))
            raw = make_message(1)
            assert isinstance(s.put_batch(("INBOX",), [(stored(1, raw), raw)])[0], Delivered)
            s.close()
            assert [b for b, _, _ in mailbox(server, user, "INBOX").values()] == [raw]
    finally:
        tokens.close()


def test_wrong_password_is_auth_error_at_once(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("sa"), "right")
    wrong = replace(user, password="wrong")
    with pytest.raises(AuthError) as info:
        sink(dovecot, wrong, tmp_path)
    assert info.value.exit_code == 6 and "wrong" not in info.value.message


def test_contract_sink_then_imap_source_gives_the_same(dovecot: Dovecot, tmp_path: Path
                                                       ) -> None:
    """The shared contract (tests/core/test_contract.py) against Dovecot: what the
    sink delivers, the IMAP source reads back with the same bytes, flags,
    dates and folders. A "/" inside a name comes back as its look-alike."""
    user = dovecot.add_user(unique_user("sct"), "pw")
    s = sink(dovecot, user, tmp_path)
    folders = [("INBOX",), ("Sent Items",), ("Projekte", "Überweisungen"), ("a.b/c:d",)]
    sent = {}
    for n, folder in enumerate(folders):
        s.ensure_folder(folder, None)
        batch = []
        for i in range(3):
            raw = make_message(10 * n + i)
            flags = frozenset({Flag.SEEN, Flag.FLAGGED} if i % 2 else {Flag.ANSWERED})
            batch.append((stored(10 * n + i, raw, folder, flags, frozenset({"$label1"}),
                                 T0 + timedelta(minutes=i)), raw))
        assert all(isinstance(r, Delivered) for r in s.put_batch(folder, batch))
        assert s.find_duplicates(batch[0][0], batch[0][1], folder)
        assert len(list(s.inventory(folder))) == 3
        sent[folder] = sorted((r, m.flags, m.keywords, m.received) for m, r in batch)
    s.close()
    src = source(dovecot, user, tmp_path)
    got = {}
    for info in src.folders():
        items = [r for r in fetched(list(src.fetch(info, None, FetchFilter(), set())))]
        if items:
            got[info.path] = sorted((r.raw, r.meta.flags, r.meta.keywords, r.meta.received)
                                    for r in items)
    src.close()
    assert got == sent


def test_bad_batch_option_is_a_usage_error(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("so"), "pw")
    with pytest.raises(UsageError, match="imap_batch_items"):
        sink(dovecot, user, tmp_path, imap_batch_items="lots")
