"""Parse the names of sources and targets: `scheme:PATH`, URLs, bare paths.

Pure except for `sniff_path`, which looks at a file's first bytes to
recognise a bare path. Passwords in URLs are refused: argv is visible to
every user of the machine (ps, shell history), so secrets never go there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from pstkit.errors import BadLocation

FILE_SCHEMES = ("maildir", "mbox", "eml", "pst", "store")
URL_SCHEMES = ("imap", "imaps", "pop3", "pop3s", "ews", "graph", "m365")
DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "ews": 443}


@dataclass(frozen=True)
class Location:
    scheme: str
    path: str = ""
    user: str = ""
    host: str = ""
    port: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_url(self) -> bool:
        return self.scheme in URL_SCHEMES

    def display(self) -> str:
        """A secret-free name for logs, reports and ledger keys."""
        if not self.is_url:
            return f"{self.scheme}:{self.path}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        path = self.path if self.path not in ("", "/") else ""
        return f"{self.scheme}://{user}{self.host}{port}{path}"


def parse_location(text: str) -> Location:
    """`maildir:PATH`, `imaps://user@host:993`, or a bare existing path."""
    if not text:
        raise BadLocation(text, "empty")
    scheme, sep, rest = text.partition(":")
    scheme_l = scheme.lower()
    if sep and scheme_l in URL_SCHEMES and rest.startswith("//"):
        return _parse_url(text, "graph" if scheme_l == "m365" else scheme_l)
    if sep and scheme_l in URL_SCHEMES:
        raise BadLocation(text, f"did you mean {scheme_l}://{rest.lstrip('/')} ?")
    if sep and scheme_l in FILE_SCHEMES and len(scheme) > 1:  # len>1: not "C:\"
        if not rest:
            raise BadLocation(text, "no path after the scheme")
        return Location(scheme_l, str(Path(rest).expanduser()))
    if sep and "://" in text:
        raise BadLocation(text, f"unknown scheme {scheme!r}")
    return Location(sniff_path(Path(text).expanduser()), str(Path(text).expanduser()))


def _parse_url(text: str, scheme: str) -> Location:
    parts = urlsplit(text)
    if parts.password is not None:
        raise BadLocation(
            text.replace(f":{parts.password}@", ":***@"),
            "a password in the URL would be visible in argv; use PSTKIT_PASSWORD, "
            "--password-file or --password-command",
        )
    try:
        port = parts.port
    except ValueError as e:
        raise BadLocation(text, f"bad port ({e})") from e
    if not parts.hostname and scheme not in ("graph",):
        raise BadLocation(text, "no host")
    return Location(
        scheme=scheme,
        path=unquote(parts.path),
        user=unquote(parts.username or ""),
        host=parts.hostname or "",
        port=port or DEFAULT_PORTS.get(scheme),
        params=dict(parse_qsl(parts.query)),
    )


def require_user(loc: Location) -> Location:
    """An IMAP/POP3 account named without its user: say so before connecting
    (a batch's `--server imaps://host` is the one place a user comes separately)."""
    if not loc.user and loc.scheme in ("imap", "imaps", "pop3", "pop3s"):
        port = f":{loc.port}" if loc.port else ""
        raise BadLocation(loc.display(), f"no user name: write {loc.scheme}://USER@{loc.host}{port}")
    return loc


#: an OLE2 compound file (MS-CFB): what an Outlook .msg file is
OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
MSG_NOT_SUPPORTED = "an Outlook .msg file: not supported as a source yet"


def sniff_path(path: Path) -> str:
    """Guess what an existing bare path holds."""
    if path.is_dir():
        if (path / "pstkit-store.json").exists():
            return "store"
        if (path / "cur").is_dir() or (path / "new").is_dir() or _has_maildirpp_child(path):
            return "maildir"
        if any(p.suffix.lower() in (".eml", ".msg", ".txt") for p in path.iterdir()):
            return "eml"
        raise BadLocation(
            str(path), "a directory that is neither a store, a Maildir nor .eml files"
        )
    if path.is_file():
        head = _head(path)
        if head.startswith(b"!BDN"):
            return "pst"
        if head.startswith(b"From "):
            return "mbox"
        if path.suffix.lower() in (".pst", ".ost"):
            return "pst"
        if path.suffix.lower() in (".mbox", ".mbx"):
            return "mbox"
        if head.startswith(OLE2_MAGIC):
            raise BadLocation(str(path), MSG_NOT_SUPPORTED)
        raise BadLocation(str(path), "not a PST/OST, mbox or Maildir")
    if path.exists():  # a device, socket or FIFO
        raise BadLocation(str(path), "not a regular file or directory")
    raise BadLocation(str(path), _missing(path))


def _missing(path: Path) -> str:
    if path.suffix.lower() in (".pst", ".ost", ".mbox", ".mbx", ".eml", ".msg"):
        return "no such file"  # a source's name: talk of new targets would mislead
    return "no such file or directory; name new targets as maildir:PATH, mbox:PATH or pst:FILE"


def _has_maildirpp_child(path: Path) -> bool:
    return any(
        p.name.startswith(".") and (p / "cur").is_dir() for p in path.iterdir() if p.is_dir()
    )


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(8)
    except OSError as e:
        raise BadLocation(str(path), e.strerror or str(e)) from e
