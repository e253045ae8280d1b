"""The admin console's API over HTTP: a panel admin sets up their own tenant against the sandbox
PSA. Every endpoint refuses engineers and technicians; 422s name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from adapters.connectwise.sandbox.state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connectwise_state,
)
from adapters.halopsa.sandbox.render import STATUS_IDS as HALO_STATUS_IDS
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    halo_state,
)
from adapters.sandbox.store import BOARD_STATUSES, STATUSES
from tests.integration.pipeline import wait_for

CONSOLE_ENDPOINTS = [
    ("GET", "/api/v1/tenant/connection", None),
    ("PUT", "/api/v1/tenant/connection", {"company_id": "x"}),
    ("POST", "/api/v1/tenant/connection/test", None),
    ("GET", "/api/v1/tenant/statuses", None),
    ("PUT", "/api/v1/tenant/trigger", {"escalation_statuses": ["Escalated"]}),
    ("GET", "/api/v1/tenant/webhook", None),
    ("POST", "/api/v1/tenant/webhook/install", None),
    ("GET", "/api/v1/tenant/members", None),
    ("POST", "/api/v1/tenant/members", {"psa_member_id": "x", "name": "X",
                                        "email": "x@example.com", "role": "admin"}),
    ("GET", "/api/v1/tenant/psa-members", None),
    ("POST", "/api/v1/tenant/members/import", {"members": [{"psa_member_id": "x",
                                                            "role": "admin"}]}),
    ("PATCH", "/api/v1/tenant/members/1", {"role": "admin"}),
    ("DELETE", "/api/v1/tenant/members/1", None),
    ("GET", "/api/v1/tenant/settings", None),
    ("PUT", "/api/v1/tenant/settings", {"language": "de"}),
    ("GET", "/api/v1/tenant/deliveries", None),
]  # fmt: skip


class Console:
    """Baton on a live server; `call(who, ...)` speaks to it with a member's bearer token."""

    def __init__(self, app, url: str, admin_headers: dict[str, str], store, server):
        self.app = app
        self.url = url
        self.store = store
        self.server = server
        self.operator = requests.Session()
        self.operator.headers.update(admin_headers)
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def tenant(self, slug: str, statuses: tuple[str, ...] = ("Waiting on Client",)) -> None:
        answer = self.operator.post(
            f"{self.url}/api/v1/admin/tenants",
            json={
                "slug": slug,
                "name": f"{slug.title()} MSP",
                "vendor": "connectwise",
                "escalation_statuses": list(statuses),
            },
        )
        assert answer.status_code == 201, answer.text

    def member(self, slug: str, key: str, role: str) -> None:
        answer = self.operator.post(
            f"{self.url}/api/v1/admin/tenants/{slug}/members",
            json={"psa_member_id": key, "name": key.title(), "email": f"{key}@example.com",
                  "role": role},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        self.tokens[key] = answer.json()["token"]
        self.ids[key] = answer.json()["id"]

    def call(self, who: str, method: str, path: str, json: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return requests.request(method, f"{self.url}{path}", json=json, headers=headers, timeout=30)

    def ok(self, who: str, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        answer = self.call(who, method, path, json)
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else None

    def good_connection(self, **changes: str) -> dict[str, str]:
        values = {
            "site": self.server.site("connectwise"),
            "company_id": "baton-sandbox",
            "public_key": SANDBOX_PUBLIC_KEY,
            "private_key": SANDBOX_PRIVATE_KEY,
            "client_id": SANDBOX_CLIENT_ID,
        }
        values.update(changes)
        return values

    def connect(self, who: str = "ada") -> None:
        self.ok(who, "PUT", "/api/v1/tenant/connection", self.good_connection())


@pytest.fixture
def console(app_factory, live_server_factory, admin_headers, sandbox) -> Console:
    store, server = sandbox
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    console = Console(app, live.url, admin_headers, store, server)
    console.tenant("acme")
    console.member("acme", "ada", "admin")
    console.member("acme", "eli", "engineer")
    console.member("acme", "tom", "technician")
    return console


def field_errors(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"]["code"] == "invalid_request"
    return body["fields"]


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["eli", "tom"])
def test_engineers_and_technicians_get_403_from_every_endpoint_and_the_page(console, who):
    for method, path, body in CONSOLE_ENDPOINTS:
        answer = console.call(who, method, path, body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "forbidden"
    page = console.call(who, "GET", "/panel/admin")
    assert page.status_code == 403
    assert "connection-form" not in page.text and "admin.js" not in page.text


def test_signed_out_callers_get_401_and_the_page_explains(console):
    for method, path, body in CONSOLE_ENDPOINTS:
        answer = requests.request(method, f"{console.url}{path}", json=body, timeout=10)
        assert answer.status_code == 401, (method, path)
    page = requests.get(f"{console.url}/panel/admin", timeout=10)
    assert page.status_code == 401 and "Sign in" in page.text


def test_every_console_endpoint_is_in_the_openapi_document(console):
    paths = requests.get(f"{console.url}/api/v1/openapi.json", timeout=10).json()["paths"]
    for method, path, _body in CONSOLE_ENDPOINTS:
        documented = path.replace("/members/1", "/members/{member_id}")
        assert method.lower() in paths[documented], path


def test_the_page_is_served_to_an_admin_with_a_strict_policy(console):
    page = console.call("ada", "GET", "/panel/admin")
    assert page.status_code == 200
    assert "connection-form" in page.text and "admin.js" in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


# --- connection ------------------------------------------------------------------------------


def test_connection_form_fields_and_write_only_secrets(console):
    empty = console.ok("ada", "GET", "/api/v1/tenant/connection")
    assert empty["vendor"] == "connectwise" and empty["configured"] is False
    assert [f["name"] for f in empty["fields"]] == [
        "site", "company_id", "public_key", "private_key", "client_id"
    ]  # fmt: skip
    assert empty["secrets"] == {
        "public_key": "not set", "private_key": "not set", "client_id": "not set"
    }  # fmt: skip

    saved = console.call("ada", "PUT", "/api/v1/tenant/connection", console.good_connection())
    assert saved.status_code == 200, saved.text
    assert SANDBOX_PRIVATE_KEY not in saved.text and SANDBOX_CLIENT_ID not in saved.text
    body = saved.json()
    assert body["configured"] is True
    assert body["settings"] == {
        "site": console.server.site("connectwise"),
        "company_id": "baton-sandbox",
    }
    assert set(body["secrets"].values()) == {"set"}

    # Saving again without the secrets keeps them.
    kept = console.ok(
        "ada",
        "PUT",
        "/api/v1/tenant/connection",
        {"site": console.server.site("connectwise"), "company_id": "baton-sandbox"},
    )
    assert set(kept["secrets"].values()) == {"set"}
    again = console.call("ada", "GET", "/api/v1/tenant/connection")
    assert SANDBOX_PRIVATE_KEY not in again.text


def test_connection_422s_name_the_field(console):
    missing = console.call("ada", "PUT", "/api/v1/tenant/connection", {"site": "https://x.example"})
    assert set(field_errors(missing)) == {"company_id", "public_key", "private_key", "client_id"}
    assert field_errors(missing)["client_id"] == ["Client ID is required"]

    bad_url = console.call(
        "ada", "PUT", "/api/v1/tenant/connection", console.good_connection(site="not a url")
    )
    assert list(field_errors(bad_url)) == ["site"]

    foreign = console.call(
        "ada", "PUT", "/api/v1/tenant/connection", console.good_connection(username="a@b.example")
    )
    assert field_errors(foreign) == {"username": ["not a connectwise setting"]}


def test_test_connection_says_what_works_and_what_to_fix(console):
    assert console.call("ada", "POST", "/api/v1/tenant/connection/test").status_code == 409

    console.connect()
    good = console.ok("ada", "POST", "/api/v1/tenant/connection/test")
    assert good["ok"] is True
    assert [c["what"] for c in good["checks"]] == ["Company ID", "API keys", "Ticket access"]
    assert all(c["ok"] and c["detail"] for c in good["checks"])

    console.ok(
        "ada", "PUT", "/api/v1/tenant/connection", console.good_connection(private_key="wrong")
    )
    wrong = console.ok("ada", "POST", "/api/v1/tenant/connection/test")
    assert wrong["ok"] is False
    failed = [c for c in wrong["checks"] if not c["ok"]]
    assert [c["what"] for c in failed] == ["API keys"]
    assert "refused the public/private key pair" in failed[0]["detail"]

    console.ok(
        "ada", "PUT", "/api/v1/tenant/connection", console.good_connection(company_id="nobody")
    )
    unknown = console.ok("ada", "POST", "/api/v1/tenant/connection/test")
    assert unknown["checks"][0]["what"] == "Company ID" and not unknown["checks"][0]["ok"]


def test_test_connection_names_an_unreachable_site(console):
    console.ok(
        "ada",
        "PUT",
        "/api/v1/tenant/connection",
        console.good_connection(site="http://127.0.0.1:9"),  # discard: nothing listens
    )
    answer = console.ok("ada", "POST", "/api/v1/tenant/connection/test")
    assert answer["ok"] is False
    assert answer["checks"][-1]["what"] == "Site"
    assert "cannot reach 127.0.0.1" in answer["checks"][-1]["detail"]


# --- trigger ---------------------------------------------------------------------------------


def test_statuses_come_from_the_sandbox_psa(console):
    assert console.call("ada", "GET", "/api/v1/tenant/statuses").status_code == 409
    console.connect()
    listed = console.ok("ada", "GET", "/api/v1/tenant/statuses")
    assert listed["value_is"] == "name"
    board_only = [(b, s) for b, names in BOARD_STATUSES.items() for s in names]
    assert [s["name"] for s in listed["statuses"]] == [*STATUSES, *(s for _, s in board_only)]
    boards = {b.name for b in console.store.boards()}
    groups = {s["name"]: set(s["groups"]) for s in listed["statuses"]}
    assert all(groups[name] == boards for name in STATUSES)
    assert all({g.lower() for g in groups[name]} == {board} for board, name in board_only)
    assert [s["name"] for s in listed["statuses"] if s["selected"]] == ["Waiting on Client"]
    assert listed["unknown_selected"] == []


def test_trigger_takes_only_the_psas_statuses(console):
    console.connect()
    saved = console.ok(
        "ada", "PUT", "/api/v1/tenant/trigger", {"escalation_statuses": ["escalated", "New"]}
    )
    assert saved == {"escalation_statuses": ["Escalated", "New"], "names": ["Escalated", "New"]}
    settings = console.ok("ada", "GET", "/api/v1/tenant/settings")
    assert settings["escalation_statuses"] == ["Escalated", "New"]

    typed = console.call(
        "ada", "PUT", "/api/v1/tenant/trigger", {"escalation_statuses": ["Escalated", "Bogus"]}
    )
    assert "Bogus" in field_errors(typed)["escalation_statuses"][0]
    none = console.call("ada", "PUT", "/api/v1/tenant/trigger", {"escalation_statuses": []})
    assert "escalation_statuses" in field_errors(none)
    settings = console.ok("ada", "GET", "/api/v1/tenant/settings")
    assert settings["escalation_statuses"] == ["Escalated", "New"]


# --- install ---------------------------------------------------------------------------------


def test_install_is_idempotent_and_repairs_a_switched_off_webhook(console):
    assert console.call("ada", "POST", "/api/v1/tenant/webhook/install").status_code == 409
    console.connect()
    before = console.ok("ada", "GET", "/api/v1/tenant/webhook")
    assert before["installed"] is False
    assert before["callback_url"] == f"{console.url}/webhooks/connectwise/acme"

    first = console.ok("ada", "POST", "/api/v1/tenant/webhook/install")
    assert first["created"] is True and first["installed"] and first["active"]
    second = console.ok("ada", "POST", "/api/v1/tenant/webhook/install")
    assert second["created"] is False and second["id"] == first["id"]
    assert len(connectwise_state(console.store).callbacks()) == len(console.store.boards())

    one = int(first["id"].split(",")[0])  # one callback per board holding the trigger
    connectwise_state(console.store).update_callback(one, {"inactiveFlag": True})
    repaired = console.ok("ada", "POST", "/api/v1/tenant/webhook/install")
    assert repaired["created"] is False and repaired["active"] is True
    assert connectwise_state(console.store).callback(one)["inactiveFlag"] is False
    assert len(connectwise_state(console.store).callbacks()) == len(console.store.boards())


def test_webhook_state_gives_the_hosted_api_steps_with_values(console):
    hook = console.ok("ada", "GET", "/api/v1/tenant/webhook")
    assert hook["panel_vendor"] == "connectwise"
    values = {v["label"]: v["value"] for step in hook["panel_steps"] for v in step["values"]}
    assert values["Screen"] == "Service Ticket"
    assert values["Origin"] == console.url
    assert values["URL"] == f"{console.url}/panel/?tenant=acme&id=[cw_id]&screen=[cw_screen]"
    assert values["Display"] == "Pod" and values["Pod Height"].isdigit()
    assert "Manage Hosted API" in hook["panel_steps"][0]["text"]


def test_an_autotask_tenant_gets_the_livelink_and_the_sign_in_note(console):
    answer = console.operator.post(
        f"{console.url}/api/v1/admin/tenants",
        json={"slug": "at", "name": "AT MSP", "vendor": "autotask", "escalation_statuses": ["8"]},
    )
    assert answer.status_code == 201
    console.member("at", "ann", "admin")
    hook = console.ok("ann", "GET", "/api/v1/tenant/webhook")
    assert hook["panel_vendor"] == "autotask"
    values = {v["label"]: v["value"] for step in hook["panel_steps"] for v in step["values"]}
    assert values["URL"] == f"{console.url}/panel/?tenant=at&ticket=<variable>"
    assert "sign-in link" in hook["panel_note"]
    fields = console.ok("ann", "GET", "/api/v1/tenant/connection")["fields"]
    assert [f["name"] for f in fields if f["secret"]] == [
        "secret",
        "integration_code",
        "webhook_secret",
    ]


def halo_tenant(console: Console) -> None:
    answer = console.operator.post(
        f"{console.url}/api/v1/admin/tenants",
        json={"slug": "halo", "name": "Halo MSP", "vendor": "halopsa",
              "escalation_statuses": ["Escalated"]},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    console.member("halo", "hal", "admin")
    console.ok("hal", "PUT", "/api/v1/tenant/connection", {
        "site": console.server.site("halopsa"), "client_id": SANDBOX_HALO_CLIENT_ID,
        "client_secret": SANDBOX_HALO_CLIENT_SECRET,
    })  # fmt: skip


def pasted(hook: dict[str, Any]) -> dict[str, str]:
    return {v["label"]: v["value"] for step in hook["webhook_steps"] for v in step["values"]}


def test_a_halo_tenant_is_tested_installed_and_told_what_to_finish_by_hand(console):
    halo_tenant(console)
    tested = console.ok("hal", "POST", "/api/v1/tenant/connection/test")
    assert tested["ok"] and [c["what"] for c in tested["checks"]] == [
        "Halo URL", "Client ID and secret", "API agent", "Ticket access",
    ]  # fmt: skip
    callback = f"{console.url}/webhooks/halopsa/halo"
    installed = console.ok("hal", "POST", "/api/v1/tenant/webhook/install")
    assert installed["created"] and installed["installed"] and installed["active"]
    assert pasted(installed)["Event"] == "Ticket Status Changed"  # ticked by hand
    assert pasted(installed)["Payload URL"] == callback and "Password" not in pasted(installed)
    assert "not signed" in installed["webhook_note"]
    [webhook] = halo_state(console.store).webhooks.values()
    assert webhook["basic_username"] == "baton" and len(webhook["basic_password"]) == 40
    tenant = console.operator.get(f"{console.url}/api/v1/admin/tenants/halo").json()
    assert tenant["connection"]["secrets"]["webhook_secret"] == "set"
    assert tenant["escalation_statuses"] == ["Escalated"]
    assert tenant["escalation_status_ids"] == {"Escalated": str(HALO_STATUS_IDS["Escalated"])}
    assert webhook["basic_password"] not in json.dumps(tenant)

    halo_state(console.store).webhooks_api = False  # the API agent may not manage webhooks
    by_hand = console.ok("hal", "POST", "/api/v1/tenant/webhook/install")
    password = pasted(by_hand)["Password"]
    assert len(password) == 40 and password != webhook["basic_password"]  # a new one, once
    assert by_hand["installed"] is False
    assert "Baton shows it this once" in by_hand["webhook_steps"][1]["text"]
    later = console.ok("hal", "GET", "/api/v1/tenant/webhook")
    assert "Password" not in pasted(later) and password not in json.dumps(later)
    assert pasted(later)["Username"] == "baton"

    tab = {v["label"]: v["value"] for step in later["panel_steps"] for v in step["values"]}
    assert later["panel_vendor"] == "halopsa" and tab["URL"] == f"{console.url}/panel/?tenant=halo"
    assert "no time" in later["panel_note"] and "signs that agent in again" in later["panel_note"]


def test_a_vendor_installed_wholly_through_its_api_has_no_steps_by_hand(console):
    console.connect()
    installed = console.ok("ada", "POST", "/api/v1/tenant/webhook/install")
    assert installed["webhook_steps"] == [] and installed["webhook_note"] == ""


# --- members ---------------------------------------------------------------------------------


def test_members_list_add_change_role_and_remove(console):
    listed = console.ok("ada", "GET", "/api/v1/tenant/members")
    assert {m["psa_member_id"]: m["role"] for m in listed} == {
        "ada": "admin", "eli": "engineer", "tom": "technician"
    }  # fmt: skip
    assert [m["you"] for m in listed if m["psa_member_id"] == "ada"] == [True]
    assert all("token" not in m for m in listed)

    made = console.ok(
        "ada",
        "POST",
        "/api/v1/tenant/members",
        {"psa_member_id": "kpatel", "name": "Kiran Patel", "email": "k@example.com",
         "role": "technician"},
        status=201,
    )  # fmt: skip
    assert made["token"].startswith("bt_") and made["role"] == "technician"
    me = requests.get(
        f"{console.url}/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}, timeout=10
    ).json()
    assert me["member"]["psa_member_id"] == "kpatel" and me["tenant"]["slug"] == "acme"
    assert made["token"] not in console.call("ada", "GET", "/api/v1/tenant/members").text

    changed = console.ok(
        "ada", "PATCH", f"/api/v1/tenant/members/{made['id']}", {"role": "engineer"}
    )
    assert changed["role"] == "engineer"

    console.ok("ada", "DELETE", f"/api/v1/tenant/members/{made['id']}", status=204)
    gone = requests.get(
        f"{console.url}/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}, timeout=10
    )
    assert gone.status_code == 401
    assert console.call("ada", "DELETE", f"/api/v1/tenant/members/{made['id']}").status_code == 404


def test_member_422s_name_the_field_and_duplicates_are_409(console):
    bad = console.call(
        "ada",
        "POST",
        "/api/v1/tenant/members",
        {"psa_member_id": "x", "name": "X", "email": "not-an-email", "role": "boss"},
    )
    assert set(field_errors(bad)) == {"email", "role"}
    missing = console.call("ada", "POST", "/api/v1/tenant/members", {"role": "admin"})
    assert {"psa_member_id", "name", "email"} <= set(field_errors(missing))
    duplicate = console.call(
        "ada",
        "POST",
        "/api/v1/tenant/members",
        {"psa_member_id": "eli", "name": "Eli 2", "email": "e2@example.com", "role": "engineer"},
    )
    assert duplicate.status_code == 409
    role = console.call(
        "ada", "PATCH", f"/api/v1/tenant/members/{console.ids['eli']}", {"role": "x"}
    )
    assert list(field_errors(role)) == ["role"]


def test_the_last_admin_can_neither_demote_nor_remove_themselves(console):
    ada = console.ids["ada"]
    demote = console.call("ada", "PATCH", f"/api/v1/tenant/members/{ada}", {"role": "engineer"})
    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_admin"
    remove = console.call("ada", "DELETE", f"/api/v1/tenant/members/{ada}")
    assert remove.status_code == 409 and remove.json()["error"]["code"] == "last_admin"
    assert console.ok("ada", "GET", "/api/v1/me")["member"]["role"] == "admin"

    # With a second admin, stepping down is allowed.
    console.ok("ada", "PATCH", f"/api/v1/tenant/members/{console.ids['eli']}", {"role": "admin"})
    stepped = console.ok("ada", "PATCH", f"/api/v1/tenant/members/{ada}", {"role": "engineer"})
    assert stepped["role"] == "engineer"
    assert console.call("ada", "GET", "/api/v1/tenant/members").status_code == 403


def test_another_tenants_member_is_unknown(console):
    console.tenant("other")
    console.member("other", "olga", "admin")
    olga = console.ids["olga"]
    for method, body in (("PATCH", {"role": "technician"}), ("DELETE", None)):
        answer = console.call("ada", method, f"/api/v1/tenant/members/{olga}", body)
        assert answer.status_code == 404
    assert "olga" not in console.call("ada", "GET", "/api/v1/tenant/members").text


# --- settings and audit ----------------------------------------------------------------------


def test_settings_language(console):
    settings = console.ok("ada", "GET", "/api/v1/tenant/settings")
    assert settings["language"] == "en" and settings["languages"]["de"] == "German"
    assert (
        console.ok("ada", "PUT", "/api/v1/tenant/settings", {"language": "de"})["language"] == "de"
    )
    assert console.ok("ada", "GET", "/api/v1/tenant/settings")["language"] == "de"
    bad = console.call("ada", "PUT", "/api/v1/tenant/settings", {"language": "klingon"})
    assert list(field_errors(bad)) == ["language"]


def test_deliveries_audit_says_what_happened_and_why(console):
    console.connect()
    console.ok("ada", "PUT", "/api/v1/tenant/trigger", {"escalation_statuses": ["Escalated"]})
    console.ok("ada", "POST", "/api/v1/tenant/webhook/install")
    assert console.ok("ada", "GET", "/api/v1/tenant/deliveries") == []

    console.store.escalate(104512, member="kpatel")
    wait_for(lambda: len(console.store.deliveries) >= 1, what="the escalation callback")
    console.store.add_note(104512, "Still escalated", author="kpatel", internal=True)
    wait_for(lambda: len(console.store.deliveries) >= 2, what="the note callback")
    first = console.store.deliveries[0]
    requests.post(first.url, data=first.body, headers={"Content-Type": "application/json"})

    rows = console.ok("ada", "GET", "/api/v1/tenant/deliveries?limit=50")
    assert [r["outcome"] for r in rows] == ["refused", "ignored", "accepted"]
    refused, ignored, accepted = rows
    assert accepted["escalation_id"] and accepted["status_code"] == 202
    assert ignored["reason"] == "already escalated"
    assert refused["status_code"] == 401 and refused["reason"].startswith("invalid_signature")
    assert [
        r["outcome"] for r in console.ok("ada", "GET", "/api/v1/tenant/deliveries?limit=1")
    ] == ["refused"]
    limit = console.call("ada", "GET", "/api/v1/tenant/deliveries?limit=0")
    assert list(field_errors(limit)) == ["limit"]

    # Another tenant's admin sees none of these.
    console.tenant("other")
    console.member("other", "olga", "admin")
    assert console.ok("olga", "GET", "/api/v1/tenant/deliveries") == []
