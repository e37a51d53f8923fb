"""Review e-mails through a real SMTP server (aiosmtpd): one per seat that names an
address, with both parts, the excerpt, the deadline and the seat's own link, which opens
the page and decides nothing."""
from __future__ import annotations

import email
import logging
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from devhost.testing import wait_until
from tests.support.http import call

from .test_two_way_decisions import start, status

SMTP_PASSWORD = "smtp-password-not-to-be-logged"


class Mailbox:
    def __init__(self):
        self.messages = []
        self.logins = []
        self.refused = set()  # recipients whose messages the server answers 451 (try again later)

    async def handle_DATA(self, server, session, envelope):
        if self.refused.intersection(envelope.rcpt_tos):
            return "451 4.3.0 Try again later"
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == SMTP_PASSWORD.encode())


@pytest.fixture
def mailbox(monkeypatch):
    box = Mailbox()
    with socket.socket() as probe:  # aiosmtpd's controller needs its port up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    monkeypatch.setenv("HITL_EMAIL_FROM", "reviews@contoso.com")
    monkeypatch.setenv("HITL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HITL_SMTP_PORT", str(port))
    monkeypatch.setenv("HITL_SMTP_USERNAME", "reviews")
    monkeypatch.setenv("HITL_SMTP_PASSWORD", SMTP_PASSWORD)
    yield box
    controller.stop()


def test_each_seat_with_an_address_gets_its_own_link_by_email(served_host, mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    base = served_host.base_url
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": [
        "user:bob@contoso.com", "user:carol@contoso.com", "role:legal"], "require": "all"}]})
    wait_until(lambda: len(mailbox.messages) == 2)
    assert set(mailbox.logins) == {(b"reviews", SMTP_PASSWORD.encode())}
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
