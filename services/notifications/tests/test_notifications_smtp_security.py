"""SMTP with TLS (STARTTLS or implicit) and a login, against a server that insists on both."""

import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from crossgen_local.processes import free_port
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.testing import notifications_of
from crossgen_shared.service import Service

LOGIN, PASSWORD = "crossgen", "s3cret"
# aiosmtpd cannot tell that implicit TLS protects the login it then asks for.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Mailbox:
    def __init__(self) -> None:
        self.logins: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        assert encrypted, "a message must never travel in clear"
        self.logins.append(session.auth_data.login.decode())
        return "250 OK"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        LOGIN.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd answers a refusal itself (535).
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: its PEM (the CA to trust) and a server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tmp_path_factory.mktemp("tls"))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (folder / "cert.pem").write_text(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return cert_pem, context


def server(mailbox: Mailbox, context: ssl.SSLContext, *, implicit: bool) -> Controller:
    tls: dict[str, Any] = (
        # aiosmtpd only knows of STARTTLS; over implicit TLS the whole session is encrypted.
        {"ssl_context": context, "auth_require_tls": False}
        if implicit
        else {"tls_context": context, "require_starttls": True}
    )
    return Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="smtp.test",
        authenticator=authenticate,
        auth_required=True,
        **tls,
    )


@pytest.fixture(params=["starttls", "implicit"])
def secure_smtp(
    request: pytest.FixtureRequest, certificate: tuple[str, ssl.SSLContext]
) -> Iterator[tuple[Mailbox, int, dict[str, Any]]]:
    """A server requiring TLS and a login, and the settings that reach it."""
    ca, context = certificate
    implicit = request.param == "implicit"
    mailbox = Mailbox()
    controller = server(mailbox, context, implicit=implicit)
    controller.start()
    settings = {
        "smtp_port": controller.port,
        "smtp_tls_ca": ca,
        "smtp_starttls": not implicit,
        "smtp_implicit_tls": implicit,
        "smtp_username": LOGIN,
    }
    yield mailbox, controller.port, settings
    controller.stop()


async def test_email_goes_over_tls_with_a_login(
    notifications: Service,
    delivery: Callable[..., Delivery],
    secure_smtp: tuple[Mailbox, int, dict[str, Any]],
    proposed: str,
) -> None:
    mailbox, _, settings = secure_smtp
    assert await delivery(**settings, smtp_password=SecretStr(PASSWORD)).deliver_due() == 2
    rows = await notifications_of(notifications)
    assert {(n.status, n.last_error) for n in rows} == {("sent", None)}
    assert mailbox.logins == [LOGIN, LOGIN]


async def test_a_wrong_password_is_our_misconfiguration_and_is_retried(
    notifications: Service,
    delivery: Callable[..., Delivery],
    secure_smtp: tuple[Mailbox, int, dict[str, Any]],
    proposed: str,
) -> None:
    mailbox, _, settings = secure_smtp
    assert await delivery(**settings, smtp_password=SecretStr("wrong")).deliver_due() == 2
    rows = await notifications_of(notifications)
    assert {n.status for n in rows} == {"pending"}  # fixing the password loses nothing
    assert all((n.last_error or "").startswith("535") for n in rows)
    assert mailbox.logins == []


async def test_an_untrusted_certificate_is_refused(
    notifications: Service,
    delivery: Callable[..., Delivery],
    secure_smtp: tuple[Mailbox, int, dict[str, Any]],
    proposed: str,
) -> None:
    mailbox, _, settings = secure_smtp
    untrusting = settings | {"smtp_tls_ca": None, "smtp_password": SecretStr(PASSWORD)}
    assert await delivery(**untrusting).deliver_due() == 2
    rows = await notifications_of(notifications)
    assert {n.status for n in rows} == {"pending"}
    assert all("CERTIFICATE_VERIFY_FAILED" in (n.last_error or "") for n in rows)
    assert mailbox.logins == []
