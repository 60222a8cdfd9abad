"""EwsSink against the schema-validating EWS test server (real HTTP, real exchangelib)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from lxml import etree

from pstkit.converters.ews.sink import EwsSink
from pstkit.model import Delivered, Flag, Role
from pstkit.options import SecretSpec
from tests.servers.ews import EwsServer
from tests.servers.ews.mailbox import Item
from tests.servers.ews.testkit import (
    ADMIN,
    TOKEN,
    USER,
    location,
    options,
    self_signed,
    start_server,
    stored,
)

pytest.importorskip("exchangelib")

SENT_AT = datetime(2001, 4, 21, 0, 18, tzinfo=UTC)  # Date: of cpython_msg_02.txt
RECEIVED = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def sink(server: EwsServer) -> Iterator[EwsSink]:
    s = EwsSink(location(server), options())
    yield s
    s.close()


@pytest.fixture
def raw(corpus: Path) -> bytes:
    return (corpus / "eml" / "cpython_msg_02.txt").read_bytes()


def items_at(server: EwsServer, path: tuple[str, ...], box: str = USER.mailbox) -> list[Item]:
    mailbox = server.mailboxes[box]
    folder = mailbox.folder_by_path(path)
    assert folder is not None, f"no folder {path}"
    return mailbox.items_in(folder.id)


def test_roles_map_to_distinguished_folders_in_any_language(
    ews_schema_dir: Path, raw: bytes
) -> None:
    srv = start_server(ews_schema_dir, language="de")
    try:
        sink = EwsSink(location(srv), options())
        roles = {f.role: f.path for f in sink.folders() if f.role}
        assert roles[Role.SENT] == ("Gesendete Elemente",)
        assert roles[Role.TRASH] == ("Gelöschte Elemente",)
        assert roles[Role.INBOX] == ("Posteingang",)
        sink.ensure_folder(("Sent",), Role.SENT)
        sink.ensure_folder(("Trash",), Role.TRASH)
        assert (
            sink.put_batch(("Sent",), [(stored(raw, 1), raw)])[0].__class__.__name__ == "Delivered"
        )
        sink.put_batch(("Trash",), [(stored(raw, 2), raw)])
        assert len(items_at(srv, ("Gesendete Elemente",))) == 1
        assert len(items_at(srv, ("Gelöschte Elemente",))) == 1
        assert srv.mailboxes[USER.mailbox].folder_by_path(("Sent",)) is None
        sink.close()
    finally:
        srv.stop()
    assert srv.response_errors == []


def test_nested_and_non_ascii_folders_are_created_once(
    server: EwsServer, sink: EwsSink, raw: bytes
) -> None:
    path = ("Import", "Projekte 2024", 'Ä/B: "ü" ✓')
    sink.ensure_folder(path, None)
    sink.ensure_folder(path, None)  # idempotent
    second = EwsSink(location(server), options())  # another process: finds, does not create
    second.ensure_folder(path, None)
    second.put_batch(path, [(stored(raw, 1), raw)])
    assert len(items_at(server, path)) == 1
    box = server.mailboxes[USER.mailbox]
    assert sum(f.name == "Import" for f in box.folders.values()) == 1
    assert path in {f.path for f in sink.folders()}


def test_item_properties_match_the_store(server: EwsServer, sink: EwsSink, raw: bytes) -> None:
    msgs = [
        stored(raw, 1, flags=[Flag.SEEN], received=RECEIVED),
        stored(raw, 2, flags=[Flag.FLAGGED, Flag.ANSWERED], keywords=["Work", "$MDNSent"]),
        stored(raw, 3, flags=[Flag.SEEN, Flag.FORWARDED], keywords=["$label1"], received=RECEIVED),
        stored(raw, 4, flags=[Flag.DRAFT, Flag.SEEN], received=RECEIVED),
    ]
    sink.ensure_folder(("Inbox",), Role.INBOX)
    results = sink.put_batch(("Inbox",), [(m, raw) for m in msgs])
    assert [type(r).__name__ for r in results] == ["Delivered"] * 4
    assert server.operations.count("CreateItem") == 1  # one request for the batch
    got = {
        i.props[("name", "6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41", "PstkitSourceKey")].value: i
        for i in items_at(server, ("Inbox",))
    }
    one, two, three, four = (got[f"store-1:{n}"] for n in (1, 2, 3, 4))
    assert (one.is_read, one.is_draft, one.received, one.sent) == (True, False, RECEIVED, SENT_AT)
    # no received date in the store: the Date header, not the import time
    assert (two.is_read, two.is_draft, two.received) == (False, False, SENT_AT)
    assert two.props[("tag", str(0x1090))].value == "2"
    assert two.props[("tag", str(0x1081))].value == "102"
    assert two.props[("tag", str(0x1080))].value == str(0x105)
    assert two.categories == ("Work",)
    assert three.props[("tag", str(0x1081))].value == "104"
    assert three.categories == ("Important",)
    assert ("tag", str(0x1090)) not in three.props
    assert four.is_draft  # only real drafts stay drafts
    assert all(i.mime == raw for i in got.values())


def test_mime_reads_back_byte_identical_over_ews(
    server: EwsServer, sink: EwsSink, corpus: Path
) -> None:
    files = sorted((corpus / "eml").iterdir())[:12]
    batch = [(stored(f.read_bytes(), n), f.read_bytes()) for n, f in enumerate(files)]
    sink.ensure_folder(("Corpus",), None)
    results = sink.put_batch(("Corpus",), batch)
    ids = [r.target_id for r in results if isinstance(r, Delivered)]
    assert len(ids) == len(files)
    body = "".join(f'<t:ItemId Id="{i}"/>' for i in ids)
    answer = soap_post(
        server,
        f"""<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>
      <t:AdditionalProperties><t:FieldURI FieldURI="item:MimeContent"/></t:AdditionalProperties>
      </m:ItemShape><m:ItemIds>{body}</m:ItemIds></m:GetItem>""",
    )
    mimes = [base64.b64decode(e.text or "") for e in answer.iter(f"{{{T}}}MimeContent")]
    assert mimes == [raw for _, raw in batch]


def test_duplicates_are_found_by_stamped_key_then_message_id(
    server: EwsServer, sink: EwsSink, raw: bytes
) -> None:
    sink.ensure_folder(("Inbox",), Role.INBOX)
    first = stored(raw, 7)
    (delivered,) = sink.put_batch(("Inbox",), [(first, raw)])
    assert sink.find_duplicates(first, raw, ("Inbox",)) == [delivered.target_id]  # type: ignore[union-attr]
    other_store = stored(raw, 7, store_id="store-2")
    with_mid = stored(b"Message-ID: <x1@example.com>\nSubject: hi\n\nbody\n", 8)
    assert sink.find_duplicates(other_store, raw, ("Inbox",)) == []
    sink.put_batch(("Inbox",), [(with_mid, b"Message-ID: <x1@example.com>\nSubject: hi\n\nbody\n")])
    moved = stored(b"Message-ID: <x1@example.com>\n\n", 99, store_id="store-3")
    assert len(sink.find_duplicates(moved, b"", ("Inbox",))) == 1


def test_delete_and_inventory(server: EwsServer, sink: EwsSink, raw: bytes) -> None:
    sink.ensure_folder(("A",), None)
    results = sink.put_batch(("A",), [(stored(raw, n), raw) for n in range(3)])
    inv = sorted(sink.inventory(("A",)), key=lambda t: t.stable_key)
    assert [t.stable_key for t in inv] == ["store-1:0", "store-1:1", "store-1:2"]
    assert {t.size for t in inv} == {len(raw)}
    assert {t.subject for t in inv} == {"Ppp digest, Vol 1 #2 - 5 msgs"}
    sink.delete(("A",), [results[0].target_id])  # type: ignore[union-attr]
    assert len(list(sink.inventory(("A",)))) == 2


def test_oauth_bearer_token_over_tls_with_ca_file(
    ews_schema_dir: Path, raw: bytes, tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    ctx, ca_file = self_signed(tmp_path)
    srv = start_server(ews_schema_dir, tls=ctx)
    try:
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        loc = replace(location(srv), params={})
        opts = options(None, token=SecretSpec(file=token_file), auth="oauth2", ca_file=ca_file)
        sink = EwsSink(loc, opts)
        sink.ensure_folder(("Inbox",), Role.INBOX)
        assert type(sink.put_batch(("Inbox",), [(stored(raw, 1), raw)])[0]).__name__ == "Delivered"
        assert len(items_at(srv, ("Inbox",))) == 1
        sink.close()
    finally:
        srv.stop()


def test_impersonation_reaches_the_other_mailbox(server: EwsServer, raw: bytes) -> None:
    loc = location(server, ADMIN.name)
    sink = EwsSink(loc, options(ADMIN.password, mailbox="bob@example.com", impersonate=True))
    sink.ensure_folder(("Inbox",), Role.INBOX)
    sink.put_batch(("Inbox",), [(stored(raw, 1), raw)])
    assert len(items_at(server, ("Inbox",), "bob@example.com")) == 1
    assert items_at(server, ("Inbox",), ADMIN.mailbox) == []
    assert "mailbox=bob@example.com" in sink.key and ADMIN.password not in sink.key


T = "http://schemas.microsoft.com/exchange/services/2006/types"


def soap_post(server: EwsServer, body: str, status: int = 200) -> etree._Element:
    envelope = f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="{T}">
<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body>
</s:Envelope>"""
    r = requests.post(
        server.url, data=envelope.encode(), auth=(USER.name, USER.password), timeout=30
    )
    assert r.status_code == status, r.text[:500]
    return etree.fromstring(r.content)
