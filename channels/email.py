"""Review e-mails: one per seat that names an e-mail address, with a text and an HTML
part, the draft's excerpt, the deadline and the seat's own signed link.

Opening the link decides nothing (mail scanners follow links): it opens the review page,
where a decision is a POST. Sent through Azure Communication Services with the managed
identity where HITL_ACS_ENDPOINT is set, else through SMTP (STARTTLS when the server
offers it). A login goes only inside TLS: with a user name set, a server that offers no
STARTTLS gets no password and the e-mail fails; without one, mail goes to a relay in clear.
Each send is bounded as a whole by EMAIL_SECONDS; errors name the server's host or the
service's status, never a password.
"""
from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage

from shared_code.settings import Settings

from .seat_view import SeatView

EMAIL_SECONDS = 15.0


class EmailFailure(Exception):
    """Sending failed; the message is safe to record."""


def subject(view: SeatView) -> str:
    return f"{view.heading}: {view.title}"[:200].replace("\r", " ").replace("\n", " ")


def text_body(view: SeatView) -> str:
    return (f"{view.heading}\n\n{view.title}\nTopic: {view.topic}\n{view.round_line}\n\n{view.excerpt}\n\n"
            f"Decide before {view.deadline}.\nOpen the review (opening it decides nothing): {view.url}\n")


def html_body(view: SeatView) -> str:
    e = html.escape
    return (f"<!doctype html><html><body><h2>{e(view.heading)}</h2><p><strong>{e(view.title)}</strong></p>"
            f"<p>Topic: {e(view.topic)}<br>{e(view.round_line)}</p><blockquote>{e(view.excerpt)}</blockquote>"
            f"<p>Decide before {e(view.deadline)}.</p>"
            f"<p><a href=\"{e(view.url or '', quote=True)}\">Open the review</a> (opening it decides nothing)</p>"
            "</body></html>")


def message(view: SeatView, sender: str, to: str) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = subject(view), sender, to
    mail.set_content(text_body(view))
    mail.add_alternative(html_body(view), subtype="html")
    return mail


def send(settings: Settings, view: SeatView, to: str) -> None:
    if settings.email_backend == "acs":
        _send_acs(settings, view, to)
    else:
        _send_smtp(settings, message(view, settings.email_from, to))


def _send_smtp(settings: Settings, mail: EmailMessage) -> None:
    host = settings.smtp_host
    try:
        with smtplib.SMTP(host, settings.smtp_port, timeout=EMAIL_SECONDS) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            elif settings.smtp_username:
                # AUTH PLAIN and LOGIN only encode the password; someone on the path can also
                # strip STARTTLS from the server's answer to get it.
                raise EmailFailure(f"{host} offers no STARTTLS, so the SMTP login was not sent in clear text")
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(mail)
    except smtplib.SMTPResponseException as exc:
        raise EmailFailure(f"{host} answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailFailure(f"{host} unreachable ({type(exc).__name__})") from None


def _send_acs(settings: Settings, view: SeatView, to: str) -> None:
    from azure.communication.email import EmailClient
    from azure.core.exceptions import AzureError
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=settings.azure_client_id or None)
    content = {"senderAddress": settings.email_from, "recipients": {"to": [{"address": to}]},
               "content": {"subject": subject(view), "plainText": text_body(view), "html": html_body(view)}}
    try:
        with EmailClient(settings.acs_endpoint, credential, connection_timeout=EMAIL_SECONDS,
                         read_timeout=EMAIL_SECONDS) as mail_client:
            result = mail_client.begin_send(content).result(timeout=EMAIL_SECONDS)
    except AzureError as exc:
        raise EmailFailure(f"Communication Services refused the e-mail ({type(exc).__name__})") from None
    if (result or {}).get("status") not in ("Succeeded", None):
        raise EmailFailure(f"Communication Services reported {result.get('status')}")
