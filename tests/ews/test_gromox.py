"""The EWS sink against gromox, a real open-source EWS server nobody here wrote.

gromox cannot run in CI (a 15-minute build, MariaDB, root): build and start it
with ../shared/gromox/build.sh (see /work/plan/gromox.md); these tests skip, saying
why, when it does not answer. Where to find it: PSTKIT_GROMOX_URL (default
https://127.0.0.1:10443/EWS/Exchange.asmx), PSTKIT_GROMOX_USER / _PASSWORD (default
alice@example.test / Passw0rd!), PSTKIT_GROMOX_CA (default /etc/gromox/test-cert.pem),
PSTKIT_GROMOX_READ_URL (plain http, where exchangelib reads back what arrived; default
http://127.0.0.1:10080/EWS/Exchange.asmx).
Each test writes into folders of its own (a fresh name per run), so the mailbox
need not be empty. gromox's own deviations from Exchange (its README) are
asserted as its quirks where they show: a t:DistributionList is a SOAP fault.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pstkit.converters.ews.sink import EwsSink
from pstkit.location import Location
from pstkit.model import Flag, ItemKind, StoredMessage
from pstkit.options import ConnectOptions, SecretSpec
from pstkit.protocols import Delivered, Failed
from tests.ews.test_pim_fields import CARD, SERIES, wrapped
from tests.servers.cutproxy import CutProxy
from tests.servers.ews.testkit import stored

pytestmark = pytest.mark.gromox
exchangelib = pytest.importorskip("exchangelib")

URL = os.environ.get("PSTKIT_GROMOX_URL", "https://127.0.0.1:10443/EWS/Exchange.asmx")
USER = os.environ.get("PSTKIT_GROMOX_USER", "alice@example.test")
PASSWORD = os.environ.get("PSTKIT_GROMOX_PASSWORD", "Passw0rd!")
CA = Path(os.environ.get("PSTKIT_GROMOX_CA", "/etc/gromox/test-cert.pem"))
#: where the tests read back what arrived (exchangelib, plain http: no CA plumbing)
READ_URL = os.environ.get("PSTKIT_GROMOX_READ_URL", "http://127.0.0.1:10080/EWS/Exchange.asmx")
GROUP = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Team\r\nX-ADDRESSBOOKSERVER-KIND:group\r\n"
    "X-ADDRESSBOOKSERVER-MEMBER:mailto:ann@example.com\r\nX-PSTKIT-MEMBER-NAME:Ann\r\nEND:VCARD\r\n"
)


def _reachable() -> str:
    parts = urlsplit(URL)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 443), timeout=2).close()
    except OSError as e:
        return f"no gromox at {URL} ({e}); start it: /work/shared/gromox/build.sh start"
    if parts.scheme == "https" and not CA.is_file():
        return f"gromox's CA file {CA} is missing (set PSTKIT_GROMOX_CA)"
    return ""


@pytest.fixture(scope="module")
def gromox() -> str:
    why = _reachable()
    if why:
        pytest.skip(why)
    return URL


def _location(url: str, port: int | None = None) -> Location:
    parts = urlsplit(url)
    params = {} if parts.scheme == "https" else {"scheme": "http"}
    return Location("ews", parts.path, USER, parts.hostname or "", port or parts.port, params)


def _options(**kw: Any) -> ConnectOptions:
    secret = SecretSpec(command=f"printf %s '{PASSWORD}'", prompt=False)
    ca = CA if urlsplit(URL).scheme == "https" else None
    return ConnectOptions(password=secret, auth="basic", ca_file=ca, **kw)


@pytest.fixture
def sink(gromox: str) -> Iterator[EwsSink]:
    s = EwsSink(_location(gromox), _options(extra={"ews_max_backoff": "1"}))
    yield s
    s.close()


def _account() -> Any:
    """exchangelib's own view of the mailbox, to read back what arrived."""
    cfg = exchangelib.Configuration(
        service_endpoint=READ_URL,
        credentials=exchangelib.Credentials(USER, PASSWORD),
        auth_type="basic",
    )
    return exchangelib.Account(USER, config=cfg, autodiscover=False)


def _folder(account: Any, name: str) -> Any:
    return next(f for f in account.msg_folder_root.walk() if f.name == name)


def _fresh(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def _item(
    kind: ItemKind, card: str, n: int, folder: tuple[str, ...]
) -> tuple[StoredMessage, bytes]:
    raw = wrapped(card, "text/calendar" if kind is ItemKind.EVENT else "text/vcard")
    return dataclasses.replace(stored(raw, n, folder, store_id=folder[0]), kind=kind), raw


def _mail(n: int, size: int = 0) -> bytes:
    return (
        f"Message-ID: <g{n}.{uuid.uuid4().hex}@example.com>\r\n"
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= " + str(n) + "\r\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo Welt\r\n"
        '--b\r\nContent-Type: application/octet-stream; name="a.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + "QUJD\r\n" * (1 + size // 6) + "--b--\r\n"
    ).encode()


def test_mail_arrives_with_flags_and_non_ascii(sink: EwsSink) -> None:
    path = (_fresh("mail"),)
    sink.ensure_folder(path, None)
    raws = [_mail(i) for i in range(3)]
    batch = [(stored(raw, i, path, flags={Flag.SEEN} if i else (), store_id=path[0]), raw)
             for i, raw in enumerate(raws)]  # fmt: skip
    results = sink.put_batch(path, batch)
    assert all(isinstance(r, Delivered) for r in results), results
    items = list(_folder(_account(), path[0]).all().only("subject", "is_read", "has_attachments"))
    assert sorted(i.subject for i in items) == [f"Grüße {i}" for i in range(3)]
    assert sorted(i.is_read for i in items) == [False, True, True]
    assert all(i.has_attachments for i in items)


def test_contact_arrives_with_names_and_addresses(sink: EwsSink) -> None:
    path = (_fresh("contacts"),)
    sink.ensure_folder(path, None, "IPF.Contact")
    (result,) = sink.put_batch(path, [_item(ItemKind.CONTACT, CARD, 1, path)])
    assert isinstance(result, Delivered), result
    (person,) = _folder(_account(), path[0]).all()
    assert (person.display_name, person.given_name, person.surname) == (
        "Ann B. Smith",
        "Ann",
        "Smith",
    )
    assert [e.email for e in person.email_addresses or []] == ["ann@example.com", "a.s@example.org"]
    assert person.company_name == "Acme"


def test_recurring_event_arrives_as_a_series(sink: EwsSink) -> None:
    path = (_fresh("calendar"),)
    sink.ensure_folder(path, None, "IPF.Appointment")
    (result,) = sink.put_batch(path, [_item(ItemKind.EVENT, SERIES, 1, path)])
    assert isinstance(result, Delivered), result
    (event,) = _folder(_account(), path[0]).all()
    assert event.subject == "Stand-up , weekly" and event.location == "Room 1"
    assert event.is_recurring and event.recurrence is not None
    pattern = event.recurrence.pattern
    assert (type(pattern).__name__, pattern.interval) == ("WeeklyPattern", 2)
    assert event.start.isoformat() == "2024-07-03T07:00:00+00:00"


def test_distribution_list_refused_alone_contact_in_same_batch_arrives(sink: EwsSink) -> None:
    """gromox quirk (its README, deviation 5): t:DistributionList is a SOAP Client fault
    for the whole CreateItem. The list fails with gromox's words; the contact arrives."""
    path = (_fresh("lists"),)
    sink.ensure_folder(path, None, "IPF.Contact")
    batch = [_item(ItemKind.CONTACT, CARD, 1, path), _item(ItemKind.DISTLIST, GROUP, 2, path)]
    person, group = sink.put_batch(path, batch)
    assert isinstance(person, Delivered), person
    assert (
        isinstance(group, Failed)
        and "E-3045" in group.reason
        and "DistributionList" in group.reason
    )
    assert len(list(_folder(_account(), path[0]).all())) == 1


def test_connection_cut_mid_import_is_retried_exactly_once(gromox: str) -> None:
    """The drop gromox 3.10 makes under load, made on demand by a proxy that cuts the
    TLS connection while a 1 MB CreateItem is being sent."""
    target = urlsplit(gromox)
    with CutProxy((target.hostname or "", target.port or 443)) as proxy:
        sink = EwsSink(_location(gromox, proxy.port), _options(extra={"ews_max_backoff": "1"}))
        try:
            path = (_fresh("dropped"),)
            sink.ensure_folder(path, None)
            raws = [_mail(i, 1_000_000) for i in range(3)]
            big = [(stored(raw, i, path, store_id=path[0]), raw) for i, raw in enumerate(raws)]
            proxy.arm(200_000)
            results = sink.put_batch(path, big)
        finally:
            sink.close()
    assert proxy.cuts == 1 and len(sink.backoffs) == 1
    assert all(isinstance(r, Delivered) for r in results), results
    assert _folder(_account(), path[0]).total_count == 3  # neither lost nor doubled
