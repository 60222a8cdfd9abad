"""Three independent readers of a PST, reduced to one comparable shape per message, and the
same shape computed from the original MIME. For the PST writer's tests.

- pstkit: the node reader (`pst_reader=nodes`), through the PST source, which builds MIME;
- libpff: pypff's own properties (no pstkit code involved);
- libpst: `readpst -j 0 -D -M` writes every message as a MIME file.
"""

from __future__ import annotations

import base64
import email
import email.header
import email.policy
import hashlib
import quopri
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pypff

from pstkit.converters.pst.source import PstSource
from pstkit.location import Location
from pstkit.model import FolderPath
from pstkit.options import ConnectOptions, FetchFilter


@dataclass(frozen=True)
class Seen:
    """What a reader shows of one message."""

    subject: str
    sender: str  # SMTP address, lower case
    recipients: tuple[str, ...]  # sorted "to:addr" / "cc:addr" (Bcc is not in MIME headers)
    date: int | None  # Date / client submit time, Unix seconds
    body: str  # plain body, whitespace collapsed
    attachments: tuple[tuple[str, str], ...]  # sorted (name, sha256 of the bytes)


def _squash(text: str) -> str:
    """Whitespace collapsed; a run of replacement characters counts as one (readers differ
    in how many they make of one undecodable byte)."""
    text = re.sub("\ufffd+", "\ufffd", recover(text))
    return " ".join(text.split())


def recover(text: str) -> str:
    """Raw 8-bit header bytes (surrogate escapes) read as UTF-8, else Windows-1252."""
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def attachment_key(ctype: str, data: bytes) -> str:
    """An attachment's identity: its bytes' digest; for an attached message, its subject
    (readers re-serialise message/rfc822 parts)."""
    if ctype == "message/rfc822":
        data = data.lstrip(b"\r\n")
        if data.startswith((b">From ", b"From ")):  # readpst starts one with an mbox line
            data = data.split(b"\n", 1)[-1]
        inner = email.message_from_bytes(data, policy=email.policy.compat32)
        return "message:" + _squash(_decoded(inner.get("Subject")))
    return hashlib.sha256(data).hexdigest()


def _decoded(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, email.header.Header):  # raw 8-bit bytes (compat32: unknown-8bit)
        value = "".join(recover(d.decode("utf-8", "surrogateescape")) if isinstance(d, bytes)
                        else d for d, _cs in email.header.decode_header(value))
    text = str(value)
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        return text


def _addrs(msg: Message, name: str) -> list[str]:
    values = [_decoded(v) for v in msg.get_all(name, [])]
    return [a.lower() for _n, a in getaddresses(values) if a]


def _date(value: object) -> int | None:
    try:
        when = parsedate_to_datetime(str(value)) if value is not None else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def _leaves(part: Message) -> list[Message]:
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    payload = part.get_payload()
    subs = [p for p in (payload if isinstance(payload, list) else []) if isinstance(p, Message)]
    return [leaf for sub in subs for leaf in _leaves(sub)]


def _payload(part: Message) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if part.get_content_type() == "message/rfc822" and cte in ("base64", "quoted-printable"):
        # readers encode attached messages; Python does not decode message/* bodies
        raw = part.as_bytes()
        body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[-1]
        if cte == "base64":
            return base64.b64decode(body + b"===", validate=False)
        return quopri.decodestring(body)
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def from_mime(raw: bytes, names: bool = True) -> Seen:
    """The shape of a MIME message (the original, or what pstkit/readpst made of a PST).
    `names`: compare attachment names (readpst names nameless parts itself)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    body, html, atts = None, False, []
    for part in _leaves(msg):
        inline = part.get_content_disposition() != "attachment" and not part.get_filename()
        ctype = part.get_content_type()
        if inline and ctype == "text/plain" and body is None:
            data = _payload(part)
            body = data.decode(part.get_content_charset() or "ascii", "replace") \
                if _known(part.get_content_charset()) else data.decode("latin-1")
            continue
        if inline and ctype == "text/html" and not html:
            html = True
            continue
        name = _squash(_decoded(part.get_filename() or "")) if names else ""
        atts.append((name, attachment_key(ctype, _payload(part))))
    rcpt = [f"to:{a}" for a in _addrs(msg, "To")] + [f"cc:{a}" for a in _addrs(msg, "Cc")]
    sender = (_addrs(msg, "From") or _addrs(msg, "Sender") or [""])[0]
    return Seen(_squash(_decoded(msg.get("Subject"))), sender, tuple(sorted(rcpt)),
                _date(msg.get("Date")), _squash(body or ""), tuple(sorted(atts)))


def _known(charset: str | None) -> bool:
    try:
        "".encode(charset or "ascii")
        return True
    except LookupError:
        return False


# --- pstkit's node reader --------------------------------------------------------


def pstkit_read(pst: Path) -> dict[FolderPath, list[bytes]]:
    """Every folder's messages as MIME, read by pstkit's node reader."""
    src = PstSource(Location("pst", str(pst)), ConnectOptions(extra={"pst_reader": "nodes"}))
    try:
        out: dict[FolderPath, list[bytes]] = {}
        for folder in src.folders():
            got = [r.raw for r in src.fetch(folder, None, FetchFilter(), set())
                   if hasattr(r, "raw")]
            out[folder.path] = got
        return out
    finally:
        src.close()


# --- libpst's readpst --------------------------------------------------------------


def readpst_read(pst: Path, out: Path) -> dict[FolderPath, list[bytes]]:
    """Every folder's messages as readpst writes them (-M: one MIME file per message)."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(out), str(pst)],
                          check=False, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise AssertionError(f"readpst failed: {done.stderr.strip()}")
    tops = [p for p in out.iterdir() if p.is_dir()]
    assert len(tops) == 1, tops  # readpst's top directory is the store's display name
    found: dict[FolderPath, list[bytes]] = {}
    for d in sorted(p for p in tops[0].rglob("*") if p.is_dir()):
        files = sorted((f for f in d.iterdir() if f.is_file() and f.name.isdigit()),
                       key=lambda f: int(f.name))
        found[d.relative_to(tops[0]).parts] = [f.read_bytes() for f in files]
    return found


# --- libpff -----------------------------------------------------------------------


def _entry(item: object, pid: int) -> object:
    for rs in getattr(item, "record_sets", []):
        for e in rs.entries:
            if e.entry_type == pid:
                return e
    return None


def _string(item: object, pid: int) -> str:
    e = _entry(item, pid)
    try:
        return str(e.data_as_string) if e is not None and e.data else ""  # type: ignore[attr-defined]
    except OSError:
        return ""


def libpff_seen(msg: object) -> Seen:
    """The shape of one pypff message, from its MAPI properties only."""
    rcpt = []
    recipients = getattr(msg, "recipients", None)
    for rs in getattr(recipients, "record_sets", []) if recipients is not None else []:
        kind = next((e.data_as_integer for e in rs.entries if e.entry_type == 0x0C15), 0)
        addr = next((e.data_as_string for e in rs.entries if e.entry_type == 0x39FE), "")
        if kind in (1, 2):
            rcpt.append(f"{'to' if kind == 1 else 'cc'}:{addr.lower()}")
    body = msg.plain_text_body  # type: ignore[attr-defined]
    text = body.decode("utf-8", "replace") if body else ""
    atts = []
    for i in range(msg.number_of_attachments):  # type: ignore[attr-defined]
        a = msg.get_attachment(i)  # type: ignore[attr-defined]
        method = _entry(a, 0x3705)
        if method is not None and getattr(method, "data_as_integer", 0) == 5:
            # pypff cannot open an embedded message: its subject (the display name) it is
            atts.append((_squash(_string(a, 0x3707)), "message:" + _squash(_string(a, 0x3001))))
            continue
        data = a.read_buffer(a.size) if a.size else b""
        atts.append((_squash(_string(a, 0x3707)), attachment_key(_string(a, 0x370E), data)))
    sent = msg.client_submit_time  # type: ignore[attr-defined]
    date = int(sent.replace(tzinfo=UTC).timestamp()) if isinstance(sent, datetime) else None
    return Seen(_squash(_string(msg, 0x0037)), _string(msg, 0x0C1F).lower(),
                tuple(sorted(rcpt)), date, _squash(text), tuple(sorted(atts)))


def libpff_top(f: Any) -> Any:
    """libpff's "Top of Personal Folders" (the IPM subtree) of an open pypff file."""
    root = f.get_root_folder()
    return next(root.get_sub_folder(i) for i in range(root.number_of_sub_folders)
                if _string(root.get_sub_folder(i), 0x3001).startswith("Top of"))


def libpff_read(pst: Path) -> dict[FolderPath, list[Seen]]:
    f = pypff.file()
    f.open(str(pst))
    out: dict[FolderPath, list[Seen]] = {}
    try:
        top = libpff_top(f)
        todo: list[tuple[FolderPath, object]] = [((), top)]
        while todo:
            path, folder = todo.pop()
            for i in range(folder.number_of_sub_folders):  # type: ignore[attr-defined]
                sub = folder.get_sub_folder(i)  # type: ignore[attr-defined]
                sub_path = (*path, sub.name)
                out[sub_path] = [libpff_seen(sub.get_sub_message(j))
                                 for j in range(sub.number_of_sub_messages)]
                todo.append((sub_path, sub))
        return out
    finally:
        f.close()
