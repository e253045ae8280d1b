"""Notifying the seniors: a real SMTP server on loopback (aiosmtpd) and a local HTTP receiver
for the Teams and Slack webhooks; the jobs run on a real RQ worker."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller
from rq.job import Job, JobStatus
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from adapters.base import TicketEvent
from connector import escalations, jobs, notify, summary
from connector import tenants as tenant_ops
from connector.config import parse_smtp_url
from connector.db import session
from connector.models import Escalation, Notification, Tenant
from connector.queue import NOTIFICATIONS, NOTIFY
from tests.integration.panel_setup import connect_sandbox
from tests.integration.pipeline import accepted, escalation_ids, run_worker, wait_for
from tests.integration.smtp import Inbox, free_port

TITLE = '<script>alert("x")</script> VPN drops every 10 minutes'
REASON = "Tried <b>everything</b> & the client is angry"


# --- a real SMTP server on loopback (tests/integration/smtp.py) ------------------------


@dataclass
class TLSInbox(Inbox):
    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


# --- a chat webhook receiver -----------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # the receiver's own access log would show the webhook paths


class ChatReceiver:
    """Records what Teams and Slack would have received; `fail` answers statuses first."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.server = make_server(
            "127.0.0.1", 0, self.wsgi, threaded=True, request_handler=QuietHandler
        )
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, channel: str) -> str:
        return f"{self.base}/{channel}/T0001/B0002/hook-secret-{channel}"

    def wsgi(self, environ, start_response):
        request = Request(environ)
        channel = request.path.split("/")[1]
        with self.lock:
            self.requests.append((channel, json.loads(request.get_data())))
            queued = self.fail.get(channel) or []
            status = queued.pop(0) if queued else 200
        return Response("ok" if status == 200 else "internal_error", status=status)(
            environ, start_response
        )

    def received(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for ch, body in self.requests if ch == channel]

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    chat = ChatReceiver()
    yield chat
    chat.stop()


# --- Baton with one tenant and its members ---------------------------------------------------


MEMBERS = [
    # psa id, name, email, role
    ("kpatel", "Kiran Patel", "kiran@acme.example", "technician"),
    ("sseniorr", "Sam Senior", "sam@acme.example", "engineer"),
    ("aadmin", "Alex Admin", "alex@acme.example", "admin"),
    ("oopted", "Olga Optout", "olga@acme.example", "engineer"),
]


@dataclass
class Baton:
    app: Any
    client: Any
    tokens: dict[str, str]
    receiver: ChatReceiver | None = None

    def escalate(
        self, *, actor: str = "kpatel", key: str = "delivery-1", ticket: str = "104512"
    ) -> int:
        """What the webhook path does: record, then enqueue (handoff and notifications)."""
        with self.app.app_context():
            tenant = tenant_ops.get_tenant("acme")
            event = TicketEvent(
                ticket_id=ticket,
                delivery_key=key,
                status="Escalated",
                title=TITLE,
                actor=actor,
                ticket_number=ticket,
            )
            recorded = escalations.record(tenant, event, reason=REASON)
            assert recorded.escalation is not None
            if recorded.created:
                escalations.enqueue_pipeline(recorded.escalation.id)
            return recorded.escalation.id

    def run_notify_queue(self) -> None:
        """Only the notify queue: the handoff job stays queued, as if the AI were still busy."""
        run_worker(self.app, [NOTIFY])

    def rows(self, escalation_id: int) -> list[Notification]:
        with self.app.app_context():
            rows = session.scalars(
                select(Notification)
                .where(Notification.escalation_id == escalation_id)
                .order_by(Notification.id)
            ).all()
            session.expunge_all()
            return list(rows)

    def finish(self, escalation_id: int, result: summary.HandoffResult) -> None:
        with self.app.app_context():
            assert escalations.finish(session.get(Escalation, escalation_id), result)

    def panel(self, psa_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[psa_id]}"}


def make_baton(app, admin_headers, receiver: ChatReceiver | None = None) -> Baton:
    client = app.test_client()
    created = client.post(
        "/api/v1/admin/tenants",
        headers=admin_headers,
        json={
            "slug": "acme",
            "name": "Acme MSP",
            "vendor": "connectwise",
            "escalation_statuses": ["Escalated"],
        },
    )
    assert created.status_code == 201, created.text
    tokens = {}
    for psa_id, name, address, role in MEMBERS:
        added = client.post(
            "/api/v1/admin/tenants/acme/members",
            headers=admin_headers,
            json={"psa_member_id": psa_id, "name": name, "email": address, "role": role},
        )
        assert added.status_code == 201, added.text
        tokens[psa_id] = added.json["token"]
    opted = client.put(
        "/api/v1/me/notifications",
        headers={"Authorization": f"Bearer {tokens['oopted']}"},
        json={"email": False},
    )
    assert opted.status_code == 200 and opted.json == {"email": False}
    if receiver is not None:
        configured = client.put(
            "/api/v1/admin/tenants/acme/notifications",
            headers=admin_headers,
            json={"teams_url": receiver.url("teams"), "slack_url": receiver.url("slack")},
        )
        assert configured.status_code == 200, configured.text
    return Baton(app, client, tokens, receiver)


@pytest.fixture
def baton_mail(app_factory, admin_headers, smtp, receiver):
    app = app_factory(smtp=parse_smtp_url(smtp.url), public_url="https://baton.acme.example")
    return make_baton(app, admin_headers, receiver)


SENIORS = ["alex@acme.example", "sam@acme.example"]


def ai_result(cause: str = "The <VPN> gateway's certificate expired") -> summary.HandoffResult:
    return summary.HandoffResult(
        source="ai",
        summary_prose="The VPN drops because the certificate expired.",
        what_we_know=["Drops every 10 minutes"],
        likely_cause=cause,
        suggested_steps=["Renew the certificate"],
        confidence="high",
        model="claude-sonnet-5-5",
    )


# --- recipients and contents -----------------------------------------------------------------


def test_each_senior_gets_one_email_and_each_channel_one_message_before_the_ai(
    baton_mail, smtp, receiver
):
    escalation_id = baton_mail.escalate()
    baton_mail.run_notify_queue()  # the handoff job has not run: nobody waits for the AI

    assert smtp.inbox.to() == SENIORS  # not the technician who escalated, not Olga (opted out)
    link = f"https://baton.acme.example/panel/escalations/{escalation_id}"
    for received in smtp.inbox.messages:
        message = received.message
        # (Python folds this header onto a continuation line; readers ignore the leading space.)
        assert message["Subject"].strip() == f"Escalated #104512: {TITLE}"
        assert message["Auto-Submitted"] == "auto-generated"
        text = received.part("plain")
        assert "Kiran Patel escalated ticket #104512" in text
        assert f"Why: {REASON}" in text and link in text
        assert "being written" in text
        html = received.part("html")
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "&lt;b&gt;everything&lt;/b&gt; &amp; the client" in html
        assert f'href="{link}"' in html
    [teams] = receiver.received("teams")
    [attachment] = teams["attachments"]
    assert teams["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Pick it up", "url": link}]
    assert "#104512" in card["body"][0]["text"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Escalated by"] == "Kiran Patel" and "everything" in facts["Why"]
    [slack] = receiver.received("slack")
    assert "&lt;script&gt;" in slack["text"] and "<script>" not in slack["text"]
    assert link in slack["text"]
    assert slack["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": f"Escalated #104512: {TITLE}",
    }
    assert "&lt;b&gt;everything" in json.dumps(slack["blocks"][1])
    assert slack["blocks"][-1]["elements"][0]["url"] == link
    rows = baton_mail.rows(escalation_id)
    assert sorted((r.channel, r.target, r.state) for r in rows) == [
        ("email", "alex@acme.example", "sent"),
        ("email", "sam@acme.example", "sent"),
        ("slack", "slack", "sent"),
        ("teams", "teams", "sent"),
    ]
    with baton_mail.app.app_context():
        assert session.get(Escalation, escalation_id).handoff.state == "pending"


def test_the_senior_who_escalated_is_not_told_of_their_own_escalation(baton_mail, smtp):
    baton_mail.escalate(actor="aadmin")
    baton_mail.run_notify_queue()
    assert smtp.inbox.to() == ["sam@acme.example"]
    assert "Alex Admin escalated" in smtp.inbox.messages[0].part("plain")


def test_a_senior_the_psa_has_deactivated_is_emailed_no_more(
    baton_mail, smtp, sandbox, admin_headers
):
    store, server = sandbox
    connect_sandbox(baton_mail.client, admin_headers, "acme", store, server.site("connectwise"))
    store.set_member_active("sseniorr", False)
    read = baton_mail.client.get("/api/v1/admin/tenants/acme/psa-members", headers=admin_headers)
    assert read.status_code == 200
    baton_mail.escalate()
    baton_mail.run_notify_queue()
    # Alex's PSA id is not in the sandbox's list: flagged "missing", which shuts nobody out.
    assert smtp.inbox.to() == ["alex@acme.example"]


def test_email_can_be_switched_off_for_the_tenant(baton_mail, smtp, receiver, admin_headers):
    off = baton_mail.client.put(
        "/api/v1/admin/tenants/acme/notifications",
        headers=admin_headers,
        json={"email_enabled": False},
    )
    assert off.json["email_enabled"] is False
    baton_mail.escalate()
    baton_mail.run_notify_queue()
    assert smtp.inbox.messages == []
    assert len(receiver.received("teams")) == len(receiver.received("slack")) == 1


def test_a_ready_handoff_puts_the_likely_cause_in_the_first_messages(baton_mail, smtp, receiver):
    escalation_id = baton_mail.escalate()
    baton_mail.finish(escalation_id, ai_result())  # the AI was faster than the notify worker
    baton_mail.run_notify_queue()
    text = smtp.inbox.messages[0].part("plain")
    assert "Likely cause (high confidence): The <VPN> gateway's certificate expired" in text
    assert "The &lt;VPN&gt; gateway" in smtp.inbox.messages[0].part("html")
    # The chat messages already carried the cause: no follow-up is posted.
    assert len(receiver.received("teams")) == len(receiver.received("slack")) == 1
    assert "certificate expired" in json.dumps(receiver.received("slack")[0])


# --- exactly once ----------------------------------------------------------------------------


def test_retried_job_and_duplicate_delivery_send_nothing_twice(baton_mail, smtp, receiver):
    escalation_id = baton_mail.escalate()
    baton_mail.run_notify_queue()
    # The webhook delivered again: the same escalation, no new job.
    assert baton_mail.escalate() == escalation_id
    # The job run again (an RQ retry, or the sweeper replacing a finished job).
    with baton_mail.app.app_context():
        jobs.run_notifications(escalation_id)
        escalations.enqueue_pipeline(escalation_id, replace_dead=True)
    baton_mail.run_notify_queue()
    assert smtp.inbox.to() == SENIORS
    assert len(receiver.received("teams")) == len(receiver.received("slack")) == 1
    assert all(r.attempts == 1 for r in baton_mail.rows(escalation_id))


def test_smtp_down_then_up_retries_only_the_missing_emails(baton_mail, smtp, receiver):
    smtp.stop()
    escalation_id = baton_mail.escalate()
    baton_mail.run_notify_queue()

    # The job failed and RQ holds it for a retry with backoff; the chat messages went out.
    connection = baton_mail.app.extensions["baton"].redis
    job = Job.fetch(NOTIFICATIONS.job_id(escalation_id), connection=connection)
    assert job.get_status(refresh=True) == JobStatus.SCHEDULED
    assert job.retries_left == NOTIFICATIONS.retry().max - 1
    emails = [r for r in baton_mail.rows(escalation_id) if r.channel == "email"]
    assert [r.state for r in emails] == ["failed", "failed"]
    assert all("cannot reach the SMTP server" in (r.last_error or "") for r in emails)
    assert len(receiver.received("teams")) == 1

    smtp.start()
    with baton_mail.app.app_context():
        jobs.run_notifications(escalation_id)  # what RQ runs when the retry is due
    assert smtp.inbox.to() == SENIORS
    assert len(receiver.received("teams")) == len(receiver.received("slack")) == 1
    assert {(r.channel, r.state) for r in baton_mail.rows(escalation_id)} == {
        ("email", "sent"),
        ("teams", "sent"),
        ("slack", "sent"),
    }


def test_a_refused_recipient_is_the_only_one_sent_again(baton_mail, smtp):
    smtp.inbox.refuse.add("alex@acme.example")
    escalation_id = baton_mail.escalate()
    with baton_mail.app.app_context(), pytest.raises(notify.NotificationsFailed):
        jobs.run_notifications(escalation_id)
    assert smtp.inbox.to() == ["sam@acme.example"]
    [refused] = [r for r in baton_mail.rows(escalation_id) if r.target == "alex@acme.example"]
    assert refused.state == "failed" and refused.last_error.startswith("SMTP 451")

    smtp.inbox.refuse.clear()
    with baton_mail.app.app_context():
        jobs.run_notifications(escalation_id)
    assert smtp.inbox.to() == SENIORS


def test_chat_endpoint_500_then_ok(baton_mail, receiver, caplog):
    receiver.fail["teams"] = [500]
    escalation_id = baton_mail.escalate()
    with caplog.at_level(logging.DEBUG):
        with baton_mail.app.app_context(), pytest.raises(notify.NotificationsFailed) as failed:
            jobs.run_notifications(escalation_id)
        [teams_row] = [r for r in baton_mail.rows(escalation_id) if r.channel == "teams"]
        assert teams_row.state == "failed" and teams_row.attempts == 1
        assert teams_row.last_error == "Microsoft Teams: the webhook answered 500"
        with baton_mail.app.app_context():
            jobs.run_notifications(escalation_id)
    assert len(receiver.received("teams")) == 2  # the failed post, then the one that went in
    assert len(receiver.received("slack")) == 1
    # A webhook URL is a credential: not in the error, not in any log line.
    assert "hook-secret" not in str(failed.value)
    assert not [r for r in caplog.records if "hook-secret" in r.getMessage() + str(r.__dict__)]
    assert all("hook-secret" not in (r.last_error or "") for r in baton_mail.rows(escalation_id))


# --- the follow-up when the handoff is ready -------------------------------------------------


def test_chat_follow_up_when_the_handoff_is_ready(baton_mail, smtp, receiver):
    escalation_id = baton_mail.escalate()
    baton_mail.run_notify_queue()
    assert "being written" in json.dumps(receiver.received("slack")[0])

    baton_mail.finish(escalation_id, ai_result())  # enqueues the follow-up
    baton_mail.run_notify_queue()
    with baton_mail.app.app_context():
        jobs.run_chat_follow_up(escalation_id)  # a retry posts nothing twice
    teams = receiver.received("teams")
    slack = receiver.received("slack")
    assert len(teams) == len(slack) == 2
    line = "Handoff ready for #104512: likely cause The <VPN> gateway's certificate expired (high"
    assert teams[1]["attachments"][0]["content"]["body"][0]["text"].startswith(line)
    assert slack[1]["text"].startswith(line.replace("<VPN>", "&lt;VPN&gt;"))
    assert all(r.followed_up_at for r in baton_mail.rows(escalation_id) if r.channel != "email")
    assert len(smtp.inbox.messages) == 2  # emails are not followed up


def test_chat_follow_up_says_when_the_ai_was_unavailable(baton_mail, receiver):
    escalation_id = baton_mail.escalate()
    baton_mail.run_notify_queue()
    receiver.fail["slack"] = [503]
    fallback = summary.fallback({"ticket": {"title": TITLE}, "reason": REASON}, "model timeout")
    baton_mail.finish(escalation_id, fallback)
    baton_mail.run_notify_queue()  # Slack fails: the follow-up is retried, Teams is not reposted
    with baton_mail.app.app_context():
        jobs.run_chat_follow_up(escalation_id)
    teams = receiver.received("teams")
    slack = receiver.received("slack")
    assert len(teams) == 2 and len(slack) == 3
    assert slack[2]["text"].startswith("AI unavailable for #104512: model timeout")
    assert "AI unavailable for #104512" in json.dumps(teams[1])


# --- settings API ----------------------------------------------------------------------------


def test_settings_are_write_only_and_stored_encrypted(app, admin_headers, receiver):
    baton = make_baton(app, admin_headers)
    client = baton.client
    path = "/api/v1/admin/tenants/acme/notifications"
    assert client.get(path, headers=admin_headers).json == {
        "email_enabled": True,
        "teams_url": "not set",
        "slack_url": "not set",
        "smtp_configured": False,
    }
    saved = client.put(path, headers=admin_headers, json={"teams_url": receiver.url("teams")})
    assert saved.status_code == 200
    assert saved.json["teams_url"] == "set" and saved.json["slack_url"] == "not set"
    assert "hook-secret" not in client.get(path, headers=admin_headers).text
    with app.app_context():
        stored = session.scalar(select(Tenant.chat_webhooks_encrypted))
        assert stored and "hook-secret" not in stored
    # Leaving a field out keeps it; an empty string clears it.
    kept = client.put(path, headers=admin_headers, json={"slack_url": receiver.url("slack")})
    assert kept.json["teams_url"] == kept.json["slack_url"] == "set"
    cleared = client.put(path, headers=admin_headers, json={"teams_url": ""})
    assert cleared.json["teams_url"] == "not set" and cleared.json["slack_url"] == "set"
    # The panel shows the same to an admin member, and refuses everyone else.
    panel = client.get("/api/v1/tenant/notifications", headers=baton.panel("aadmin"))
    assert panel.status_code == 200 and panel.json["slack_url"] == "set"
    turned_off = client.put(
        "/api/v1/tenant/notifications", headers=baton.panel("aadmin"), json={"email_enabled": False}
    )
    assert turned_off.json["email_enabled"] is False
    engineer = client.get("/api/v1/tenant/notifications", headers=baton.panel("sseniorr"))
    assert engineer.status_code == 403 and engineer.json["error"]["code"] == "forbidden"
    assert client.get("/api/v1/tenant/notifications").status_code == 401
    assert client.get(path).status_code == 401
    assert client.get(path, headers=baton.panel("aadmin")).status_code == 401  # not the admin token
    missing = client.get("/api/v1/admin/tenants/nope/notifications", headers=admin_headers)
    assert missing.status_code == 404


def test_invalid_settings_are_refused_with_422(app, admin_headers):
    baton = make_baton(app, admin_headers)
    path = "/api/v1/admin/tenants/acme/notifications"
    for body, field_name in [
        ({"email_enabled": "maybe"}, "email_enabled"),
        ({"teams_url": 42}, "teams_url"),
        ({"teams_url": "ftp://example.com/hook"}, "teams_url"),
        ({"pager_url": "https://example.com"}, "pager_url"),
    ]:
        answer = baton.client.put(path, headers=admin_headers, json=body)
        assert answer.status_code == 422, body
        assert answer.json["error"]["code"] == "invalid_request"
        assert answer.json["error"]["message"].startswith(field_name)
    me = baton.client.put("/api/v1/me/notifications", headers=baton.panel("sseniorr"), json={})
    assert me.status_code == 422
    assert baton.client.put("/api/v1/me/notifications", json={"email": False}).status_code == 401


def test_outbound_guard_refuses_private_addresses_when_they_are_not_allowed(
    app_factory, admin_headers
):
    app = app_factory(allow_private_urls=False)
    baton = make_baton(app, admin_headers)
    path = "/api/v1/admin/tenants/acme/notifications"
    for url in (
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:8443/hook",
        "https://10.0.0.5/hook",
    ):
        answer = baton.client.put(path, headers=admin_headers, json={"slack_url": url})
        assert answer.status_code == 422, url
        assert answer.json["error"]["message"].startswith("slack_url: ")
        assert "169.254" not in answer.json["error"]["message"]
    assert baton.client.get(path, headers=admin_headers).json["slack_url"] == "not set"


def test_test_send_says_what_worked_per_channel(baton_mail, smtp, receiver, admin_headers):
    receiver.fail["slack"] = [500]
    answer = baton_mail.client.post(
        "/api/v1/admin/tenants/acme/notifications/test",
        headers=admin_headers,
        json={"email_to": "ops@acme.example"},
    )
    assert answer.status_code == 200
    assert answer.json["results"] == [
        {"channel": "email", "status": "sent", "message": "Sent a test email to ops@acme.example."},
        {
            "channel": "teams",
            "status": "sent",
            "message": "Sent a test message to Microsoft Teams.",
        },
        {"channel": "slack", "status": "failed", "message": "Slack: the webhook answered 500."},
    ]
    assert smtp.inbox.to() == ["ops@acme.example"]
    # From the panel, an admin's test email goes to the admin.
    panel = baton_mail.client.post(
        "/api/v1/tenant/notifications/test", headers=baton_mail.panel("aadmin")
    )
    assert panel.status_code == 200 and panel.json["results"][0]["status"] == "sent"
    assert smtp.inbox.to() == ["alex@acme.example", "ops@acme.example"]
    forbidden = baton_mail.client.post(
        "/api/v1/tenant/notifications/test", headers=baton_mail.panel("kpatel")
    )
    assert forbidden.status_code == 403


def test_notification_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/api/v1/admin/tenants/{slug}/notifications",
        "/api/v1/admin/tenants/{slug}/notifications/test",
        "/api/v1/tenant/notifications",
        "/api/v1/tenant/notifications/test",
        "/api/v1/me/notifications",
    ):
        assert path in paths, path


# --- TLS and login ----------------------------------------------------------------------------


def self_signed_certificate(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1, made here: the test trusts it through SSL_CERT_FILE."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def starttls_smtp(tmp_path):
    """An SMTP server that offers STARTTLS, requires it, and takes one login only over TLS."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = TLSInbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"baton" and auth_data.password == b"s3cret pass"
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    yield f"smtp://baton:s3cret%20pass@127.0.0.1:{port}", cert, inbox
    controller.stop()


def test_starttls_is_used_when_offered_and_the_certificate_must_verify(
    app_factory, admin_headers, starttls_smtp, monkeypatch
):
    url, cert, inbox = starttls_smtp
    app = app_factory(smtp=parse_smtp_url(url))
    baton = make_baton(app, admin_headers)
    escalation_id = baton.escalate()
    # The server's certificate is not trusted yet: nothing is sent in the clear instead.
    with app.app_context(), pytest.raises(notify.NotificationsFailed):
        jobs.run_notifications(escalation_id)
    assert inbox.messages == []
    assert all("TLS failed" in (r.last_error or "") for r in baton.rows(escalation_id))

    monkeypatch.setenv("SSL_CERT_FILE", cert)  # what an operator's CA bundle would do
    with app.app_context():
        jobs.run_notifications(escalation_id)
    assert inbox.to() == SENIORS
    assert inbox.tls == [True, True]


# --- the sandbox, end to end -----------------------------------------------------------------


def test_sandbox_escalation_notifies_every_senior_and_channel_once(
    baton, sandbox, smtp, receiver, fake_anthropic, admin_headers
):
    app, live, _token = baton
    store, _server = sandbox
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(smtp=parse_smtp_url(smtp.url))
    api = requests.Session()
    api.headers.update(admin_headers)
    for psa_id, name, address, role in [
        ("admin", "Alex Admin", "alex@acme.example", "admin"),
        ("kpatel", "Kiran Patel", "kiran@acme.example", "technician"),
        ("tnguyen", "Tran Nguyen", "tran@acme.example", "engineer"),
    ]:
        added = api.post(
            f"{live.url}/api/v1/admin/tenants/acme/members",
            json={"psa_member_id": psa_id, "name": name, "email": address, "role": role},
        )
        assert added.status_code == 201, added.text
    opted_out = added.json()["token"]
    assert requests.put(
        f"{live.url}/api/v1/me/notifications",
        headers={"Authorization": f"Bearer {opted_out}"},
        json={"email": False},
    ).json() == {"email": False}
    configured = api.put(
        f"{live.url}/api/v1/admin/tenants/acme/notifications",
        json={"teams_url": receiver.url("teams"), "slack_url": receiver.url("slack")},
    )
    assert configured.json()["teams_url"] == "set"

    store.escalate(104512, member="kpatel", reason="Device shows Disabled in Entra")
    wait_for(lambda: accepted(store), what="the signed callback to be accepted")
    first = store.deliveries[0]  # the PSA delivers the same callback again
    again = requests.post(
        first.url,
        data=first.body,
        headers={
            "Content-Type": "application/json",
            "x-content-signature": first.headers["x-content-signature"],
        },
    )
    assert again.status_code == 202
    [escalation_id] = escalation_ids(app)

    run_worker(app)  # both queues: the handoff, the notifications, the chat follow-up

    assert smtp.inbox.to() == ["alex@acme.example", "sam@example.com"]
    for received in smtp.inbox.messages:
        text = received.part("plain")
        assert "#104512" in received.message["Subject"]
        assert "Kiran Patel escalated" in text and "Device shows Disabled in Entra" in text
        assert f"{live.url}/panel/escalations/{escalation_id}" in text
    assert len(receiver.received("teams")) == len(receiver.received("slack")) == 1
    detail = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {_token}"},
    ).json()
    assert detail["handoff"]["state"] == "ready"
    # The worker took the handoff first, so the messages already carry the likely cause.
    assert "Likely cause" in smtp.inbox.messages[0].part("plain")
    assert receiver.received("slack")[0]["blocks"][2]["text"]["text"].startswith("Likely cause")
