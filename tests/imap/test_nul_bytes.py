"""NUL bytes survive an IMAP export (issue 13: nothing silently changed).

A NUL may not travel in an IMAP literal (RFC 3501): Dovecot sends each NUL of a stored
message as 0x80 in BODY[]; Cyrus sends that BODY[] as a literal8 (`~{n}`), which the export
must read like any literal; Courier sends it in a plain literal. Where the server offers
BINARY (RFC 3516), the export fetches such a message again with BINARY.PEEK[] (a literal8)
and keeps those bytes when they are BODY[] but for NULs. BINARY[] decodes base64 bodies, so
it is never taken blindly: a base64 message and an 8-bit one with genuine 0x80 bytes keep
BODY[], which is exact for them.
"""

from __future__ import annotations

import imaplib
import ssl
from pathlib import Path

import pytest

from pstkit.converters.imap.items import may_hold_nul, nul_restored
from pstkit.store import Store
from tests.helpers import run_pstkit
from tests.servers.common import ImapServer, unique_user
from tests.servers.mail_helpers import password_file

HEAD = b"Subject: %s\r\nMessage-ID: <%s@nul>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain"
MESSAGES = {
    "nul-8bit": HEAD % (b"a", b"1") + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nab\0c\0\r\n",
    "cp1252": HEAD % (b"b", b"2") + b"; charset=windows-1252\r\nContent-Transfer-Encoding: "
              b"8bit\r\n\r\nprice \x80 5\r\n",
    "both": HEAD % (b"c", b"3") + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x80\0\x80\0\r\n",
    "base64": HEAD % (b"d", b"4") + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              b"YWIAYwA=\r\n",
    "plain": HEAD % (b"e", b"5") + b"\r\n\r\nnothing odd\r\n",
    "utf8": HEAD % (b"f", b"6") + b"; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + "\u2014 \u2019 \u3001\u3002\r\n".encode(),
}


def _append(server: ImapServer, name: str, password: str, raw: bytes) -> None:
    """APPEND with a literal8 (RFC 3516) where the server offers BINARY, the only way a NUL
    may travel; else a plain literal (Courier takes the NUL in one)."""
    c = imaplib.IMAP4_SSL(server.host, server.imaps_port,
                          ssl_context=ssl.create_default_context(cafile=str(server.ca_file)))
    try:
        c.login(name, password)
        typ, caps = c.capability()
        binary = typ == "OK" and b"BINARY" in b" ".join(caps).upper().split()
        tag = c._new_tag()
        c.send(tag + b" APPEND INBOX " + (b"~" if binary else b"") + b"{%d}\r\n" % len(raw))
        assert c._get_line().startswith(b"+")
        c.send(raw + b"\r\n")
        while not (line := c._get_line()).startswith(tag):
            pass
        assert b" OK " in line, line
    finally:
        c.logout()


def test_nul_bytes_are_exported_exactly(server: ImapServer, tmp_path: Path) -> None:
    """On every server of the matrix: Dovecot sends NULs as 0x80 in BODY[] (restored with
    BINARY), Cyrus sends such a BODY[] as a literal8, Courier in a plain literal."""
    user = server.add_user(unique_user("nul"), "Nul-pass-1")
    for raw in MESSAGES.values():
        _append(server, user.name, user.password, raw)
    if server.name == "dovecot":
        with server.client(user) as c:
            c.select_folder("INBOX", readonly=True)
            sent = c.fetch(c.search(["ALL"]), ["BODY.PEEK[]"])
        assert any(b"ab\x80c\x80" in v[b"BODY[]"] for v in sent.values())  # the change
    store = tmp_path / "store"
    done = run_pstkit("export", f"imaps://{user.name}@127.0.0.1:{server.imaps_port}",
                      str(store), "--password-file", str(password_file(tmp_path, user)),
                      "--ca-file", str(server.ca_file))
    assert done.returncode == 0, done.stderr
    with Store.open(store) as st:
        stored = sorted(st.read(row) for row in st.catalog.messages())
    assert stored == sorted(MESSAGES.values())


@pytest.mark.parametrize(("body", "exact", "taken"), [
    (b"a\x80b", b"a\0b", True),
    (b"a\x80b\x80", b"a\0b\x80", True),  # a genuine 0x80 stays
    (b"a\x80b", b"a\x80b", False),  # nothing to restore
    (b"a\x80b", b"a\0bc", False),  # another length: decoded, not the same message
    (b"a\x80b", b"x\0b", False),  # another byte changed
    (b"ab", b"a\0", False),
])
def test_nul_restored(body: bytes, exact: bytes, taken: bool) -> None:
    assert nul_restored(body, exact) is taken


@pytest.mark.parametrize(("body", "suspect"), [
    (b"ab\x80c", True),  # after ASCII: not UTF-8, may be a NUL
    (b"price \x80 5", True),  # cp1252's euro sign: asked again, kept as it is
    ("\u2014 \u2019 \u3001".encode(), False),  # UTF-8 text full of 0x80 continuation bytes
    ("caf\u00e9 \u2014".encode() + b" \x80", True),  # valid UTF-8, then a stray 0x80
    (b"plain ascii", False),
    (b"\xe2\x80", True),  # a sequence cut short
])
def test_may_hold_nul(body: bytes, suspect: bool) -> None:
    assert may_hold_nul(body) is suspect
