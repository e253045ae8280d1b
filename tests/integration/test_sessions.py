"""Panel sessions: sign-in links, ConnectWise member hashes, Halo's signed tab, the cookie, CSRF,
/me, sign-out."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from adapters.connectwise.sandbox.state import sandbox_member_hash
from adapters.halopsa.identity import agent_signature
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    SANDBOX_HALO_TAB_SECRET,
)
from adapters.sandbox import SandboxStore, serve_sandbox
from tests.integration.panel_setup import (
    add_member,
    connect_sandbox,
    make_tenant,
    record_escalation,
    sandbox,  # noqa: F401 (a fixture)
)


@pytest.fixture
def people(app, client, admin_headers):
    make_tenant(client, admin_headers, "acme")
    make_tenant(client, admin_headers, "globex")
    return {
        "tech": add_member(client, admin_headers, "acme", "kpatel", "technician", "Kiran Patel"),
        "sam": add_member(client, admin_headers, "acme", "sseniorr", "engineer", "Sam Senior"),
        "admin": add_member(client, admin_headers, "acme", "admin", "admin", "Alex Admin"),
        "globex": add_member(client, admin_headers, "globex", "gadmin", "admin", "Gus Admin"),
    }


def new_link(client, admin_headers, member_id: int, slug: str = "acme", **body) -> str:
    answer = client.post(
        f"/api/v1/admin/tenants/{slug}/members/{member_id}/sign-in-link",
        json=body or None,
        headers=admin_headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.get_json()["url"]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def set_cookie(answer) -> str:
    [cookie] = [v for k, v in answer.headers.items() if k == "Set-Cookie"]
    return cookie


def test_a_sign_in_link_works_once(app, client, admin_headers, people):
    sam_id, _ = people["sam"]
    answer = client.post(
        f"/api/v1/admin/tenants/acme/members/{sam_id}/sign-in-link", headers=admin_headers
    )
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["url"].startswith("http://127.0.0.1:5000/panel/sign-in?token=")
    assert body["expires_at"]

    signed_in = client.get(path_of(body["url"]))
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/panel/")
    assert signed_in.headers["Cache-Control"] == "no-store"
    cookie = set_cookie(signed_in)
    assert cookie.startswith("baton_session=")
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=None" in cookie

    me = client.get("/api/v1/me")
    assert me.status_code == 200
    who = me.get_json()
    assert who["member"] == {
        "id": sam_id,
        "name": "Sam Senior",
        "email": "sseniorr@example.com",
        "role": "engineer",
        "psa_member_id": "sseniorr",
    }
    assert who["tenant"] == {"slug": "acme", "name": "Acme MSP", "vendor": "connectwise"}
    assert len(who["csrf_token"]) >= 32

    # The same link a second time, in another browser: refused, with a page that says why.
    other = app.test_client()
    again = other.get(path_of(body["url"]))
    assert again.status_code == 410
    assert again.headers["Content-Type"].startswith("text/html")
    assert "already been used" in again.text
    assert other.get("/api/v1/me").status_code == 401


def test_expired_revoked_and_forged_links_are_refused(app, client, admin_headers, people):
    from sqlalchemy import update

    from connector.db import session, utcnow
    from connector.models import SignInLink

    sam_id, _ = people["sam"]
    expired = new_link(client, admin_headers, sam_id, lifetime_hours=1)
    with app.app_context():
        session.execute(update(SignInLink).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    answer = client.get(path_of(expired))
    assert answer.status_code == 410 and "expired" in answer.text

    revoked = new_link(client, admin_headers, sam_id)
    withdrawn = client.delete(
        f"/api/v1/admin/tenants/acme/members/{sam_id}/sign-in-link", headers=admin_headers
    )
    assert withdrawn.status_code == 200 and withdrawn.get_json() == {"revoked": 1}
    answer = client.get(path_of(revoked))
    assert answer.status_code == 410 and "withdrawn" in answer.text

    good = new_link(client, admin_headers, sam_id)
    token = good.split("token=")[1]
    for bad in ("", "nonsense", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        answer = client.get(f"/panel/sign-in?token={bad}")
        assert answer.status_code == 400, bad
        assert "not valid" in answer.text and "Baton admin" in answer.text
    assert client.get("/api/v1/me").status_code == 401
    assert client.get(path_of(good)).status_code == 302  # the untouched link still works

    for lifetime in (0, 721, "x"):
        answer = client.post(
            f"/api/v1/admin/tenants/acme/members/{sam_id}/sign-in-link",
            json={"lifetime_hours": lifetime},
            headers=admin_headers,
        )
        assert answer.status_code == 422


def test_link_endpoints_check_who_asks(app, client, admin_headers, people):
    sam_id, sam = people["sam"]
    tech_id, tech = people["tech"]
    _admin_id, admin = people["admin"]
    globex_id, _globex = people["globex"]

    assert (
        client.post(f"/api/v1/admin/tenants/acme/members/{sam_id}/sign-in-link").status_code == 401
    )
    assert (
        client.post(
            f"/api/v1/admin/tenants/acme/members/{sam_id}/sign-in-link", headers=sam
        ).status_code
        == 401
    ), "a member token is not the admin token"
    unknown = client.post(
        f"/api/v1/admin/tenants/acme/members/{globex_id}/sign-in-link", headers=admin_headers
    )
    assert unknown.status_code == 404

    # A panel admin hands out links for the members of their own tenant only.
    assert client.post(f"/api/v1/members/{tech_id}/sign-in-link", headers=tech).status_code == 403
    assert client.post(f"/api/v1/members/{tech_id}/sign-in-link", headers=sam).status_code == 403
    made = client.post(f"/api/v1/members/{tech_id}/sign-in-link", headers=admin)
    assert made.status_code == 201
    assert (
        client.post(f"/api/v1/members/{globex_id}/sign-in-link", headers=admin).status_code == 404
    )
    assert client.post("/api/v1/members/999999/sign-in-link", headers=admin).status_code == 404

    assert client.delete(f"/api/v1/members/{tech_id}/sign-in-link", headers=sam).status_code == 403
    revoked = client.delete(f"/api/v1/members/{tech_id}/sign-in-link", headers=admin)
    assert revoked.get_json() == {"revoked": 1}
    assert client.get(path_of(made.get_json()["url"])).status_code == 410


def test_cookie_changes_need_the_csrf_header(app, client, admin_headers, people):
    sam_id, sam_bearer = people["sam"]
    first = record_escalation(app, "acme", "1001")
    second = record_escalation(app, "acme", "1002")
    assert client.get(path_of(new_link(client, admin_headers, sam_id))).status_code == 302
    token = client.get("/api/v1/me").get_json()["csrf_token"]

    # Reading needs no token.
    assert client.get("/api/v1/escalations").status_code == 200
    for headers in ({}, {"X-Baton-CSRF": "wrong"}, {"X-Baton-CSRF": ""}):
        answer = client.post(f"/api/v1/escalations/{first}/claim", headers=headers)
        assert answer.status_code == 403, headers
        assert answer.get_json()["error"]["code"] == "csrf_failed"
        answer = client.post(
            f"/api/v1/escalations/{first}/actions", json={"kind": "step_used"}, headers=headers
        )
        assert answer.status_code == 403
    claimed = client.post(f"/api/v1/escalations/{first}/claim", headers={"X-Baton-CSRF": token})
    assert claimed.status_code == 200 and claimed.get_json()["claim"]["member_id"] == sam_id

    # A bearer token is not ambient authority: no header needed.
    bearer = app.test_client()
    assert bearer.post(f"/api/v1/escalations/{second}/claim", headers=sam_bearer).status_code == 200
    assert bearer.get("/api/v1/me", headers=sam_bearer).get_json()["csrf_token"] is None

    # Signing out is a change too.
    assert client.post("/api/v1/panel/sign-out").status_code == 403
    out = client.post("/api/v1/panel/sign-out", headers={"X-Baton-CSRF": token})
    assert out.status_code == 204
    assert client.get("/api/v1/me").status_code == 401
    assert client.post("/api/v1/panel/sign-out").status_code == 204  # nothing left to end


def test_a_new_sign_in_gets_a_new_csrf_token(app, client, admin_headers, people):
    sam_id, _ = people["sam"]
    tech_id, _ = people["tech"]
    client.get(path_of(new_link(client, admin_headers, sam_id)))
    first = client.get("/api/v1/me").get_json()
    client.get(path_of(new_link(client, admin_headers, tech_id)))
    second = client.get("/api/v1/me").get_json()
    assert second["member"]["id"] == tech_id
    assert second["csrf_token"] != first["csrf_token"]


def test_a_removed_member_is_signed_out_and_nobody_inherits_their_session(
    app, client, admin_headers, people
):
    """Removed in the console: their next request is signed out and their unused links are void,
    even for whoever is added next (SQLite gives the newcomer the removed member's id)."""
    _admin_id, admin = people["admin"]
    console = app.test_client()
    leaver_id, _ = add_member(client, admin_headers, "acme", "lleaver", "engineer", "Lee Leaver")
    spare = new_link(client, admin_headers, leaver_id)
    assert client.get(path_of(new_link(client, admin_headers, leaver_id))).status_code == 302
    assert client.get("/api/v1/me").get_json()["member"]["id"] == leaver_id

    assert console.delete(f"/api/v1/tenant/members/{leaver_id}", headers=admin).status_code == 204
    newcomer_id, _ = add_member(console, admin_headers, "acme", "nnew", "engineer", "Nia New")
    if app.extensions["baton"].engine.dialect.name == "sqlite":
        assert newcomer_id == leaver_id  # the case a member id in the cookie alone gets wrong
    assert client.get("/api/v1/me").status_code == 401
    refused = client.get(path_of(spare))
    assert refused.status_code == 400 and "not valid" in refused.text
    assert client.get("/api/v1/me").status_code == 401


# --- ConnectWise: the PSA vouches for the member -----------------------------------------------


@pytest.fixture
def cw(app, client, admin_headers, sandbox):  # noqa: F811
    store, server = sandbox
    make_tenant(client, admin_headers, "acme")
    connect_sandbox(client, admin_headers, "acme", store, server.site("connectwise"))
    # Mapped case-insensitively: ConnectWise identifiers are not case-sensitive.
    sam_id, _ = add_member(client, admin_headers, "acme", "SSeniorr", "engineer", "Sam Senior")
    return store, sam_id


def cw_auth(client, store: SandboxStore, memberid: str, member_hash: str | None = None):
    return client.post(
        "/api/v1/panel/psa-sign-in",
        json={
            "tenant": "acme",
            "member_id": memberid,
            "proof": member_hash or sandbox_member_hash(store, memberid),
            "context": "ticket 104512",
        },
    )


def test_connectwise_member_hash_signs_in(app, client, cw):
    store, sam_id = cw
    answer = cw_auth(client, store, "sseniorr")
    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert body["member"]["id"] == sam_id and body["member"]["role"] == "engineer"
    cookie = set_cookie(answer)
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=None" in cookie
    me = client.get("/api/v1/me").get_json()
    assert me["member"]["id"] == sam_id and me["csrf_token"] == body["csrf_token"]


def test_the_signed_out_page_asks_the_pod_for_the_member_in_the_vendors_terms(client, cw):
    page = client.get("/panel/?tenant=acme")
    assert page.status_code == 401
    html = page.get_data(as_text=True)
    for attribute in (
        'data-identity="frame_message"',
        'data-identity-request="getMemberAuthentication"',
        'data-member-fields="memberid memberId"',
        'data-proof-field="memberHash"',
        'data-context-field="memberContext"',
    ):
        assert attribute in html
    assert "In ConnectWise PSA</strong>, the Baton panel signs you in by itself" in html


def test_connectwise_refusals(app, client, cw):
    store, _sam_id = cw
    wrong = cw_auth(client, store, "sseniorr", member_hash="0" * 64)
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "not_verified"
    # kpatel is a real ConnectWise member, but not one of Baton's.
    stranger = cw_auth(client, store, "kpatel")
    assert stranger.status_code == 403
    assert "ask your Baton admin to add you" in stranger.get_json()["error"]["message"]
    assert client.get("/api/v1/me").status_code == 401
    nobody = client.post(
        "/api/v1/panel/psa-sign-in",
        json={"tenant": "nope", "member_id": "sseniorr", "proof": "x"},
    )
    assert nobody.status_code == 404
    incomplete = client.post("/api/v1/panel/psa-sign-in", json={"tenant": "acme"})
    assert incomplete.status_code == 422


def test_a_verified_member_hash_is_remembered_for_a_while(app, client, admin_headers):
    store = SandboxStore()
    server = serve_sandbox(store)
    try:
        make_tenant(client, admin_headers, "acme")
        connect_sandbox(client, admin_headers, "acme", store, server.site("connectwise"))
        add_member(client, admin_headers, "acme", "sseniorr", "engineer", "Sam Senior")
        assert cw_auth(client, store, "sseniorr").status_code == 200
        wrong_before = cw_auth(client, store, "sseniorr", member_hash="1" * 64)
    finally:
        server.stop()
    # The PSA is gone: the proven hash still signs in; an unproven one cannot.
    assert cw_auth(app.test_client(), store, "sseniorr").status_code == 200
    assert wrong_before.status_code == 401
    unreachable = cw_auth(app.test_client(), store, "sseniorr", member_hash="1" * 64)
    assert unreachable.status_code == 502


def test_a_psa_without_panel_identity_answers_400(app, client, admin_headers):
    answer = client.post(
        "/api/v1/admin/tenants",
        json={
            "slug": "auto",
            "name": "Auto MSP",
            "vendor": "autotask",
            "escalation_statuses": ["Escalated"],
        },
        headers=admin_headers,
    )
    assert answer.status_code == 201, answer.text
    connected = client.put(
        "/api/v1/admin/tenants/auto/connection",
        json={
            "username": "api@example.com",
            "secret": "s3cret-value",
            "integration_code": "CODE",
            "zone_url": "https://webservices2.autotask.net/ATServicesRest/",
        },
        headers=admin_headers,
    )
    assert connected.status_code == 200, connected.text
    answer = client.post(
        "/api/v1/panel/psa-sign-in",
        json={"tenant": "auto", "member_id": "someone", "proof": "x"},
    )
    assert answer.status_code == 400
    assert "use a sign-in link" in answer.get_json()["error"]["message"]
    # Its signed-out page asks the LiveLink's frame nothing: the sign-in link is the way in.
    html = client.get("/panel/?tenant=auto").get_data(as_text=True)
    assert 'data-identity="sign_in_link"' in html and "data-identity-request" not in html
    assert "In Autotask</strong> and anywhere else: use the sign-in link" in html


# --- Halo: the custom tab signs the agent's id in the panel's address -------------------------


@pytest.fixture
def halo(app, client, admin_headers, sandbox):  # noqa: F811
    store, server = sandbox
    created = client.post(
        "/api/v1/admin/tenants",
        json={"slug": "halo", "name": "Halo MSP", "vendor": "halopsa",
              "escalation_statuses": ["21"]},
        headers=admin_headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    connected = client.put(
        "/api/v1/admin/tenants/halo/connection",
        json={"site": server.site("halopsa"), "client_id": SANDBOX_HALO_CLIENT_ID,
              "client_secret": SANDBOX_HALO_CLIENT_SECRET, "tab_secret": SANDBOX_HALO_TAB_SECRET},
        headers=admin_headers,
    )  # fmt: skip
    assert connected.status_code == 200, connected.text
    sam = store.member("sseniorr")
    assert sam is not None
    sam_id, _ = add_member(client, admin_headers, "halo", str(sam.id), "engineer", "Sam Senior")
    return store, str(sam.id), sam_id


def tab_auth(client, agent_id: str, proof: str | None = None):
    return client.post(
        "/api/v1/panel/psa-sign-in",
        json={"tenant": "halo", "member_id": agent_id,
              "proof": proof or agent_signature(SANDBOX_HALO_TAB_SECRET, agent_id)},
    )  # fmt: skip


def test_halos_signed_agent_id_signs_in(client, halo):
    _store, agent_id, sam_id = halo
    answer = tab_auth(client, agent_id)
    assert answer.status_code == 200, answer.text
    assert answer.get_json()["member"]["id"] == sam_id
    assert client.get("/api/v1/me").get_json()["member"]["id"] == sam_id


def test_halo_refusals(app, client, halo):
    store, agent_id, _sam_id = halo
    forged = tab_auth(client, agent_id, agent_signature("not the tab's secret", agent_id))
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "not_verified"
    kpatel = store.member("kpatel")
    assert kpatel is not None
    stranger = tab_auth(client, str(kpatel.id))  # a real Halo agent, not one of Baton's
    assert stranger.status_code == 403
    former = store.member("dformer")
    assert former is not None
    disabled = tab_auth(client, str(former.id))
    assert disabled.status_code == 401 and "disabled" in disabled.get_json()["error"]["message"]
    assert client.get("/api/v1/me").status_code == 401


def test_the_signed_out_page_reads_the_agent_from_its_own_address(client, halo):
    page = client.get("/panel/?tenant=halo&agent_id=5&hmac=x")
    assert page.status_code == 401
    html = page.get_data(as_text=True)
    for attribute in ('data-identity="signed_url"', 'data-member-fields="agent_id"',
                      'data-proof-field="hmac"'):  # fmt: skip
        assert attribute in html
    assert "data-identity-request" not in html  # nothing is asked of a parent frame
    assert "In HaloPSA</strong>, the Baton panel signs you in by itself" in html
