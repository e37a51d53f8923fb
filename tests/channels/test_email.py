"""Review e-mails through a real SMTP server (aiosmtpd): one per seat that names an
address, with both parts, the excerpt, the deadline and the seat's own link, which opens
the page and decides nothing. The SMTP password crosses the network only inside TLS."""
from __future__ import annotations

import datetime
import email
import ipaddress
import logging
import socket
import ssl
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devhost.testing import wait_until
from tests.support.http import call

from .test_two_way_decisions import start, status

SMTP_PASSWORD = "smtp-password-not-to-be-logged"


class Mailbox:
    def __init__(self):
        self.messages = []
        self.logins = []
        self.refused = set()  # recipients whose messages the server answers 451 (try again later)
        self.sessions = []  # whether each delivery came inside TLS

    async def handle_DATA(self, server, session, envelope):
        if self.refused.intersection(envelope.rcpt_tos):
            return "451 4.3.0 Try again later"
        self.sessions.append(session.ssl is not None)
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == SMTP_PASSWORD.encode())


def certificate_for_loopback(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as files; the certificate
    doubles as the only authority the app trusts while the test runs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, False, False, False), True)
            .add_extension(ski, False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture
def serve_mail(monkeypatch, tmp_path):
    """Starts an SMTP server on loopback that offers STARTTLS or not, and points the app
    at it, with the login or without."""
    controllers = []

    def serve(starttls: bool, login: bool = True) -> Mailbox:
        box = Mailbox()
        with socket.socket() as probe:  # aiosmtpd's controller needs its port up front
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        tls = None
        if starttls:
            cert_file, key_file = certificate_for_loopback(tmp_path)
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(cert_file, key_file)
            monkeypatch.setenv("SSL_CERT_FILE", cert_file)  # the app's default context trusts it
        # Without STARTTLS the server still advertises AUTH, as a careless or hostile one would.
        controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                                tls_context=tls, auth_require_tls=starttls)
        controller.start()
        controllers.append(controller)
        monkeypatch.setenv("HITL_EMAIL_FROM", "reviews@contoso.com")
        monkeypatch.setenv("HITL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HITL_SMTP_PORT", str(port))
        if login:
            monkeypatch.setenv("HITL_SMTP_USERNAME", "reviews")
            monkeypatch.setenv("HITL_SMTP_PASSWORD", SMTP_PASSWORD)
        return box

    yield serve
    for controller in controllers:
        controller.stop()


@pytest.fixture
def mailbox(serve_mail):
    return serve_mail(starttls=True)


def test_each_seat_with_an_address_gets_its_own_link_by_email(served_host, mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    base = served_host.base_url
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": [
        "user:bob@contoso.com", "user:carol@contoso.com", "role:legal"], "require": "all"}]})
    wait_until(lambda: len(mailbox.messages) == 2)
    assert set(mailbox.logins) == {(b"reviews", SMTP_PASSWORD.encode())} and mailbox.sessions == [True, True]
    by_recipient = {tuple(to): message for to, message in mailbox.messages}
    bobs = by_recipient[("bob@contoso.com",)]
    assert bobs["From"] == "reviews@contoso.com" and "Review needed" in bobs["Subject"]
    text = bobs.get_body(("plain",)).get_content()
    html = bobs.get_body(("html",)).get_content()
    assert "seat 1 (user:bob@contoso.com)" in text and "Decide before" in text
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Open the review"))
    assert f"/api/hitl/review/{instance_id}?token=" in link and link.replace("&", "&amp;") in html
    carols = by_recipient[("carol@contoso.com",)].get_body(("plain",)).get_content()
    assert link not in carols  # each seat its own link
    # Opening the link (as a mail scanner would) shows the page and decides nothing.
    assert call("GET", link).status == 200
    seats = wait_until(lambda: (status(base, instance_id)["customStatus"].get("notification") or {}).get("seats"))
    assert [s.get("email") for s in seats] == ["sent", "sent", None]
    assert status(base, instance_id)["customStatus"]["decisions"] == []
    assert SMTP_PASSWORD not in caplog.text


def test_an_smtp_server_that_is_down_is_recorded_and_holds_nobody(served_host, monkeypatch):
    monkeypatch.setenv("HITL_EMAIL_FROM", "reviews@contoso.com")
    monkeypatch.setenv("HITL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HITL_SMTP_PORT", "9")  # discard: nothing listens
    base = served_host.base_url
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    told = wait_until(lambda: (n := status(base, instance_id)["customStatus"].get("notification") or {})
                    .get("seats") and n)
    assert told["seats"] == [{"index": 0, "email": "failed"}]
    assert told["channelErrors"]["email"].startswith("127.0.0.1 unreachable")
    assert status(base, instance_id)["customStatus"]["stage"] == "awaiting_review"


def test_no_login_goes_to_a_server_without_starttls(served_host, serve_mail, caplog):
    caplog.set_level(logging.DEBUG)
    box = serve_mail(starttls=False)
    base = served_host.base_url
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    told = wait_until(lambda: (n := status(base, instance_id)["customStatus"].get("notification") or {})
                    .get("seats") and n)
    assert told["seats"] == [{"index": 0, "email": "failed"}]
    reason = told["channelErrors"]["email"]
    assert "STARTTLS" in reason and "\n" not in reason, reason
    assert box.logins == [] and box.messages == []
    assert SMTP_PASSWORD not in caplog.text and SMTP_PASSWORD not in str(status(base, instance_id))
    assert status(base, instance_id)["customStatus"]["stage"] == "awaiting_review"


def test_without_a_login_a_relay_without_tls_still_takes_the_mail(served_host, serve_mail):
    box = serve_mail(starttls=False, login=False)
    base = served_host.base_url
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    seats = wait_until(lambda: (status(base, instance_id)["customStatus"].get("notification") or {}).get("seats"))
    assert seats == [{"index": 0, "email": "sent"}]
    assert [to for to, _ in box.messages] == [["bob@contoso.com"]] and box.sessions == [False]
