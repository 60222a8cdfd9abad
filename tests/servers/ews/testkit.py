"""Helpers shared by the EWS tests: messages built by hand, sinks wired to a server."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pstkit.location import Location
from pstkit.model import Flag, FolderPath, StoredMessage
from pstkit.options import ConnectOptions, SecretSpec
from tests.servers.ews.ops import User
from tests.servers.ews.server import EwsServer

USER = User("alice@example.com", "s3cret pw", "alice@example.com")
ADMIN = User("admin@example.com", "adm1n", "admin@example.com", impersonation=True)
PLAIN = User("carol@example.com", "carol", "carol@example.com")
TOKEN = "eyJ0eXAiOi.test-token"


def start_server(
    schema_dir: Path, language: str = "en", tls: ssl.SSLContext | None = None
) -> EwsServer:
    server = EwsServer(schema_dir, tls).start()
    for user in (USER, ADMIN, PLAIN):
        server.add_mailbox(user.mailbox, language)
        server.add_user(user, TOKEN if user is USER else None)
    server.add_mailbox("bob@example.com", language)
    return server


def stored(
    raw: bytes,
    n: int,
    folder: FolderPath = ("Inbox",),
    flags: Iterable[Flag] = (),
    keywords: Iterable[str] = (),
    received: datetime | None = None,
    store_id: str = "store-1",
) -> StoredMessage:
    return StoredMessage(
        id=n,
        folder=folder,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        flags=frozenset(flags),
        keywords=frozenset(keywords),
        received=received,
        message_id=_message_id(raw),
        subject="",
        source_id=str(n),
        source_epoch="",
        store_id=store_id,
    )


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\n\n", 1)[0].splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""


def location(server: EwsServer, user: str = USER.name) -> Location:
    return Location("ews", "/EWS/Exchange.asmx", user, "127.0.0.1", server.port, {"scheme": "http"})


def options(password: str | None = USER.password, **kw: object) -> ConnectOptions:
    spec = (
        SecretSpec(command=f"printf %s '{password}'", prompt=False)
        if password
        else SecretSpec(env="PSTKIT_TEST_NO_SUCH_VAR", prompt=False)
    )
    return ConnectOptions(password=spec, auth=str(kw.pop("auth", "basic")), **kw)  # type: ignore[arg-type]


def self_signed(tmp: Path, names: tuple[str, ...] = ()) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 (and the DNS `names`) and the CA file a client
    needs to trust it."""

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pstkit test EWS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), *map(x509.DNSName, names)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, cert_file
