"""The technician's escalate form, the signed-out page, the ConnectWise pod's automatic sign-in,
and the headers every panel page carries."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from adapters.connectwise.sandbox.state import sandbox_member_hash
from tests.browser.conftest import POD, screenshot

pytestmark = pytest.mark.browser


def test_the_escalate_form_sends_on_enter_and_keeps_shift_enter_as_a_new_line(panel):
    page = panel.page("kiran", viewport=POD)
    page.goto("/panel/escalate?ticket=104877")
    reason = page.get_by_label("What do you need from a senior?")
    expect(reason).to_be_focused()
    reason.type("Tried a new profile and a credential reset.")
    reason.press("Shift+Enter")
    reason.type("Stuck: I cannot re-enable the device in Entra.")
    assert "\n" in reason.input_value()
    screenshot(page, "escalate-form")
    reason.press("Enter")

    result = page.locator("#escalate-result")
    expect(result).to_contain_text("Ticket #104877 is escalated")
    expect(page.locator("#escalate-form")).to_be_hidden()
    assert panel.store.ticket(104877).status == "Escalated"
    link = result.get_by_role("link", name="See the escalation")
    escalation_id = int(link.get_attribute("href").rsplit("/", 1)[1])
    view = panel.api("kiran", f"/api/v1/escalations/{escalation_id}")
    assert view["reason"] == (
        "Tried a new profile and a credential reset.\n"
        "Stuck: I cannot re-enable the device in Entra."
    )
    screenshot(page, "escalate-done")

    # A second try on the same ticket says it is already escalated, with the way to it.
    page.goto("/panel/escalate?ticket=104877")
    page.get_by_label("What do you need from a senior?").fill("again")
    page.get_by_label("What do you need from a senior?").press("Enter")
    expect(result).to_contain_text("already escalated")
    expect(result.get_by_role("link", name="See the escalation")).to_be_visible()


def test_a_visitor_without_a_session_is_told_how_to_sign_in(panel):
    page = panel.page(None)
    answer = page.goto("/panel/")
    assert answer.status == 401
    expect(page.get_by_role("heading", name="Sign in to Baton")).to_be_visible()
    expect(page.locator("#how-to")).to_contain_text("use the sign-in link your admin sent you")
    headers = answer.headers
    assert headers["content-security-policy"].startswith(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self';"
    )
    assert headers["content-security-policy"].endswith("frame-ancestors 'self'")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    screenshot(page, "signed-out")


def test_panel_pages_may_be_framed_by_the_tenants_psa_only(panel):
    token = panel.members["sam"]["token"]
    site = _sandbox_origin(panel)
    for path in ("/panel/", "/panel/escalate?ticket=1", "/panel/static/queue.js"):
        answer = requests.get(
            f"{panel.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
        if path.endswith(".js"):
            assert policy.endswith("frame-ancestors 'self'")
        else:
            assert policy.endswith(f"frame-ancestors 'self' {site}")
    # Signed out, the tenant named in the pod's address lets its PSA frame the sign-in page.
    hinted = requests.get(f"{panel.url}/panel/?tenant=acme", timeout=10)
    assert hinted.headers["Content-Security-Policy"].endswith(f"frame-ancestors 'self' {site}")


def _sandbox_origin(panel) -> str:
    from connector.db import session
    from connector.models import Tenant

    with panel.app.app_context():
        tenant = session.query(Tenant).filter_by(slug="acme").one()
        site = tenant.connection.settings["site"]
        session.remove()
    parts = urlsplit(site)
    return f"{parts.scheme}://{parts.netloc}"


# What a ConnectWise screen does for its pod: frame it and answer getMemberAuthentication.
POD_HOST = """
const auth = %(auth)s;
window.addEventListener("message", (event) => {
  const message = JSON.parse(event.data);
  if (message.message === "ready") {
    event.source.postMessage(JSON.stringify({MessageFrameID: "pod-1"}), event.origin);
  }
  const asked = message.request || message.hosted_request;
  if (asked === "getMemberAuthentication" && message.frameID) {
    const reply = {response: "getmemberauthentication", data: auth, _id: "1"};
    event.source.postMessage(JSON.stringify(reply), event.origin);
  }
});
const pod = document.createElement("iframe");
pod.id = "pod";
pod.width = 400;
pod.height = 600;
pod.src = "%(panel)s/panel/?tenant=acme";
document.body.append(pod);
"""


def test_a_connectwise_pod_signs_the_member_in_over_postmessage(panel):
    """The PSA page (here at the sandbox's origin) frames the panel and answers
    getMemberAuthentication; Baton proves the member hash with the PSA and starts a session."""
    origin = _sandbox_origin(panel)
    auth = {
        "memberid": "sseniorr",
        "memberHash": sandbox_member_hash(panel.store, "sseniorr"),
        "memberContext": "",
        "companyid": "baton-sandbox",
        "site": urlsplit(origin).netloc,
    }
    page = panel.page(None)
    page.goto(f"{origin}/")  # a page of the sandbox PSA, at its own origin
    page.evaluate(POD_HOST % {"panel": panel.url, "auth": json.dumps(auth)})
    pod = page.frame_locator("#pod")
    expect(pod.get_by_role("heading", name="Escalations")).to_be_visible(timeout=15000)
    expect(pod.locator(".who")).to_contain_text("Sam Senior")
