"""SMTP sending: one connection per batch, TLS whenever the server allows it, login if configured.

CONNECTOR_SMTP_URL picks the transport: smtps:// is TLS from the first byte; smtp:// upgrades
with STARTTLS when the server offers it (and the certificate must verify). Errors come back as
MailError with a message fit for a log line or a row: never the password.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from connector.config import SMTPSettings

TIMEOUT_SECONDS = 20.0


class MailError(Exception):
    """Sending failed; the message says why in words safe to store."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        return f"SMTP {exc.smtp_code} {detail}".strip()[:300]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        for code, reply in exc.recipients.values():
            return f"SMTP {code} {reply.decode(errors='replace')}".strip()[:300]
        return "the server refused the recipient"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {getattr(exc, 'reason', None) or type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "the SMTP server did not answer in time"
    if isinstance(exc, OSError):
        return f"cannot reach the SMTP server ({exc.strerror or type(exc).__name__})"
    return type(exc).__name__


@contextmanager
def connection(
    smtp: SMTPSettings,
    *,
    timeout: float = TIMEOUT_SECONDS,
    tls_context: ssl.SSLContext | None = None,
) -> Iterator[smtplib.SMTP]:
    """An open, authenticated SMTP session; raises MailError when it cannot be had."""
    context = tls_context or ssl.create_default_context()
    client: smtplib.SMTP | None = None
    try:
        if smtp.use_ssl:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        client.ehlo()
        if not smtp.use_ssl and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
    except (smtplib.SMTPException, OSError) as exc:
        if client is not None:
            client.close()
        raise MailError(_describe(exc)) from None
    try:
        yield client
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def send(client: smtplib.SMTP, message: EmailMessage) -> None:
    """Send one message on an open session; MailError names the problem."""
    try:
        refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(_describe(exc)) from None
    if refused:
        raise MailError("the server refused the recipient")
