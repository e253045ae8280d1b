"""Members from the PSA, over HTTP against the sandbox in each vendor's dialect: the PSA's people
(active ones unless asked) marked when already members, the chosen ones added in one request with
a role each, all or none, and a member the PSA deactivates flagged and let in no more. The console
(a panel admin), the admin API (the operator) and `flask members` do the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from adapters.sandbox import SandboxStore
from tests.integration.pipeline import KITS


def connection(kind: str, server: Any) -> tuple[str, str, dict[str, str]]:
    """(vendor, the dialect it speaks, the connection's settings) for a tenant on the sandbox."""
    if kind in KITS:
        return kind, kind, KITS[kind].connection(server)
    dialect = kind.removeprefix("sandbox-")
    return "sandbox", dialect, {"dialect": dialect, "site": server.url}


KINDS = [*KITS, *(f"sandbox-{key}" for key in KITS)]


@dataclass
class MSP:
    """A tenant on the sandbox PSA with one admin, Ada; `console` calls as Ada."""

    app: Any
    client: Any
    store: SandboxStore
    speaks: str
    operator: dict[str, str]
    ada: dict[str, str]
    ada_id: int

    def psa_id(self, identifier: str) -> str:
        """What the dialect's webhooks name the person by: the identifier, or a number."""
        return KITS[self.speaks].member_id(self.store, identifier)

    def console(self, method: str, path: str, json: Any = None) -> Any:
        return self.client.open(f"/api/v1/tenant{path}", method=method, json=json, headers=self.ada)

    def sign_in_link(self, member_id: int) -> Any:
        return self.client.post(
            f"/api/v1/members/{member_id}/sign-in-link", json={}, headers=self.ada
        )

    def ok(self, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        answer = self.console(method, path, json)
        assert answer.status_code == status, answer.get_data(as_text=True)
        return answer.get_json()


@pytest.fixture(params=KINDS)
def msp(request, app, client, admin_headers, sandbox) -> MSP:
    store, server = sandbox
    vendor, speaks, settings = connection(request.param, server)
    made = client.post(
        "/api/v1/admin/tenants",
        json={"slug": "acme", "name": "Acme MSP", "vendor": vendor,
              "escalation_statuses": ["Escalated"]},
        headers=admin_headers,
    )  # fmt: skip
    assert made.status_code == 201, made.get_data(as_text=True)
    put = client.put("/api/v1/admin/tenants/acme/connection", json=settings, headers=admin_headers)
    assert put.status_code == 200, put.get_data(as_text=True)
    msp = MSP(app, client, store, speaks, admin_headers, {}, 0)
    ada = client.post(
        "/api/v1/admin/tenants/acme/members",
        json={"psa_member_id": msp.psa_id("admin"), "name": "Ada Admin",
              "email": "ada@acme.example", "role": "admin"},
        headers=admin_headers,
    ).get_json()  # fmt: skip
    msp.ada, msp.ada_id = {"Authorization": f"Bearer {ada['token']}"}, ada["id"]
    return msp


def by_id(listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {person["psa_member_id"]: person for person in listed}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_psas_people_are_listed_marked_and_added_in_one_step(msp):
    kpatel, sam, former = msp.psa_id("kpatel"), msp.psa_id("sseniorr"), msp.psa_id("dformer")
    active = by_id(msp.ok("GET", "/psa-members"))
    assert {kpatel, sam} <= set(active) and former not in active
    assert msp.psa_id(msp.store.api_member) not in active  # Baton's own API user: not a person
    assert active[kpatel] == {
        "psa_member_id": kpatel, "name": "Kiran Patel",
        "email": "kpatel@baton-sandbox.example.com", "active": True, "member_id": None,
        "role": None,
    }  # fmt: skip
    admin = active[msp.psa_id("admin")]
    assert (admin["member_id"], admin["role"]) == (msp.ada_id, "admin")
    everyone = by_id(msp.ok("GET", "/psa-members?include_inactive=true"))
    assert everyone[former]["active"] is False and set(active) < set(everyone)

    made = msp.ok(
        "POST",
        "/members/import",
        {"members": [{"psa_member_id": kpatel, "role": "technician"},
                     {"psa_member_id": sam, "role": "engineer"}]},
        status=201,
    )  # fmt: skip
    assert [(m["psa_member_id"], m["name"], m["role"], m["psa_state"]) for m in made] == [
        (kpatel, "Kiran Patel", "technician", "active"),
        (sam, "Sam Senior", "engineer", "active"),
    ]
    me = msp.client.get("/api/v1/me", headers=bearer(made[1]["token"])).get_json()
    assert me["member"]["email"] == "sseniorr@baton-sandbox.example.com"

    marked = by_id(msp.ok("GET", "/psa-members"))
    assert marked[kpatel]["member_id"] == made[0]["id"] and marked[kpatel]["role"] == "technician"
    assert marked[sam]["role"] == "engineer"
    members = msp.ok("GET", "/members")
    assert {m["psa_member_id"]: m["psa_state"] for m in members} == {
        msp.psa_id("admin"): "active", kpatel: "active", sam: "active"
    }  # fmt: skip
    assert all("token" not in m for m in members)

    # The operator's admin API lists the same, with the same marks, and imports the same way.
    operator = msp.client.get("/api/v1/admin/tenants/acme/psa-members", headers=msp.operator)
    assert by_id(operator.get_json())[sam]["member_id"] == made[1]["id"]
    tam = msp.psa_id("tnguyen")
    imported = msp.client.post(
        "/api/v1/admin/tenants/acme/members/import",
        json={"members": [{"psa_member_id": tam, "role": "engineer"}]},
        headers=msp.operator,
    )
    assert imported.status_code == 201
    [added] = imported.get_json()
    assert (added["psa_member_id"], added["name"], added["role"]) == (tam, "Tam Nguyen", "engineer")
    assert msp.client.get("/api/v1/me", headers=bearer(added["token"])).status_code == 200


def test_without_a_connection_or_a_reachable_psa_nothing_is_listed_or_added(client, admin_headers):
    made = client.post(
        "/api/v1/admin/tenants",
        json={"slug": "acme", "name": "Acme MSP", "vendor": "connectwise",
              "escalation_statuses": ["Escalated"]},
        headers=admin_headers,
    )  # fmt: skip
    assert made.status_code == 201
    pick = {"members": [{"psa_member_id": "kpatel", "role": "technician"}]}
    listed = client.get("/api/v1/admin/tenants/acme/psa-members", headers=admin_headers)
    assert listed.status_code == 409 and listed.get_json()["error"]["code"] == "not_connected"
    dead = {"site": "http://127.0.0.1:9", "company_id": "x", "public_key": "p",
            "private_key": "k", "client_id": "c"}  # fmt: skip
    client.put("/api/v1/admin/tenants/acme/connection", json=dead, headers=admin_headers)
    unreachable = client.get("/api/v1/admin/tenants/acme/psa-members", headers=admin_headers)
    assert unreachable.status_code == 502
    assert unreachable.get_json()["error"]["code"] == "psa_error"
    imported = client.post(
        "/api/v1/admin/tenants/acme/members/import", json=pick, headers=admin_headers
    )
    assert imported.status_code == 502
    assert (
        client.get("/api/v1/admin/tenants/nope/psa-members", headers=admin_headers).status_code
        == 404
    )


def test_an_import_is_all_or_nothing_and_names_each_pick_it_refuses(msp):
    kpatel, admin, former = msp.psa_id("kpatel"), msp.psa_id("admin"), msp.psa_id("dformer")
    picks = [
        {"psa_member_id": kpatel, "role": "technician"},  # fine on its own
        {"psa_member_id": former, "role": "technician"},
        {"psa_member_id": "no-such-person", "role": "engineer"},
        {"psa_member_id": admin, "role": "engineer"},
        {"psa_member_id": kpatel.upper(), "role": "engineer"},
    ]
    refused = msp.console("POST", "/members/import", {"members": picks})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["error"]["code"] == "invalid_request"
    problems = {
        index: detail["psa_member_id"][0] for index, detail in body["fields"]["members"].items()
    }
    assert set(problems) == {"1", "2", "3", "4"}
    assert problems["1"] == f"Dana Former ({former}) is deactivated in the PSA"
    assert problems["2"] == "'no-such-person' is not one of the PSA's members"
    assert problems["3"] == f"Sandbox Admin ({admin}) is already a member, as admin"
    assert "chosen twice" in problems["4"]
    assert "members.2.psa_member_id: 'no-such-person'" in body["error"]["message"]
    assert [m["psa_member_id"] for m in msp.ok("GET", "/members")] == [admin]  # nobody added

    for bad in ({"members": []}, {"members": [{"psa_member_id": kpatel, "role": "boss"}]},
                {"members": [{"role": "technician"}]}, {}):  # fmt: skip
        answer = msp.console("POST", "/members/import", bad)
        assert answer.status_code == 422, bad
        assert "members" in answer.get_json()["fields"]
    assert len(msp.ok("GET", "/members")) == 1


def test_a_member_the_psa_deactivates_is_flagged_and_let_in_no_more(msp):
    kpatel = msp.psa_id("kpatel")
    [made] = msp.ok(
        "POST", "/members/import", {"members": [{"psa_member_id": kpatel, "role": "engineer"}]},
        status=201,
    )  # fmt: skip
    browser = msp.app.test_client()  # kpatel's panel, signed in with a link
    link = msp.sign_in_link(made["id"])
    assert link.status_code == 201
    spare = msp.sign_in_link(made["id"])
    assert browser.get(path_of(link.get_json()["url"])).status_code == 302
    assert browser.get("/api/v1/me").status_code == 200

    msp.store.set_member_active("kpatel", False)
    # Stored, not asked of the PSA on each request: nothing changes until its list is read.
    assert browser.get("/api/v1/me").status_code == 200
    assert kpatel not in by_id(msp.ok("GET", "/psa-members"))
    [flagged] = [m for m in msp.ok("GET", "/members") if m["psa_member_id"] == kpatel]
    assert flagged["psa_state"] == "deactivated" and flagged["psa_checked_at"]

    assert browser.get("/api/v1/me").status_code == 401  # the panel session has ended
    token = msp.client.get("/api/v1/me", headers=bearer(made["token"]))
    assert token.status_code == 403 and token.get_json()["error"]["code"] == "member_deactivated"
    refused_link = browser.get(path_of(spare.get_json()["url"]))
    assert refused_link.status_code == 403 and "deactivated" in refused_link.get_data(as_text=True)
    new_link = msp.sign_in_link(made["id"])
    assert new_link.status_code == 403

    # Back in the PSA: let in again once Baton reads it, but the ended session stays ended.
    msp.store.set_member_active("kpatel", True)
    assert by_id(msp.ok("GET", "/psa-members"))[kpatel]["member_id"] == made["id"]
    assert browser.get("/api/v1/me").status_code == 401
    assert msp.client.get("/api/v1/me", headers=bearer(made["token"])).status_code == 200
    assert browser.get(path_of(spare.get_json()["url"])).status_code == 302


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_flask_members_lists_and_imports_the_psas_people(msp):
    cli = msp.app.test_cli_runner()
    kpatel, former, admin = msp.psa_id("kpatel"), msp.psa_id("dformer"), msp.psa_id("admin")
    listed = cli.invoke(args=["members", "psa", "acme"])
    assert listed.exit_code == 0, listed.output
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listed.output.splitlines()}
    assert rows[kpatel] == [
        "Kiran Patel",
        "kpatel@baton-sandbox.example.com",
        "active",
        "not added",
    ]
    assert rows[admin][-1] == "member as admin" and former not in rows
    everyone = cli.invoke(args=["members", "psa", "acme", "--include-inactive"]).output
    assert f"{former}\tDana Former\t" in everyone and "\tdeactivated\t" in everyone

    refused = cli.invoke(args=["members", "import", "acme", f"{kpatel}=engineer", former])
    assert refused.exit_code == 1 and "is deactivated in the PSA" in refused.output
    bad_role = cli.invoke(args=["members", "import", "acme", f"{kpatel}=boss"])
    assert bad_role.exit_code == 2 and "'boss' is not one of" in bad_role.output
    assert cli.invoke(args=["members", "import", "acme"]).exit_code == 2
    assert [m["psa_member_id"] for m in msp.ok("GET", "/members")] == [admin]

    made = cli.invoke(args=["members", "import", "acme", f"{kpatel}=engineer", "--all-active"])
    assert made.exit_code == 0, made.output
    added = [line for line in made.output.splitlines() if line.startswith("added ")]
    assert len(added) == len(rows) - 1  # everyone active but Ada, who is a member already
    assert f"added {kpatel} (Kiran Patel) as engineer: member " in made.output
    roles = {m["psa_member_id"]: m["role"] for m in msp.ok("GET", "/members")}
    assert roles[kpatel] == "engineer" and roles[msp.psa_id("sseniorr")] == "technician"
    again = cli.invoke(args=["members", "psa", "acme"]).output
    assert "not added" not in again


def test_two_hundred_technicians_are_added_in_one_request(msp):
    for n in range(200):
        msp.store.add_member(f"tech{n:03d}", "Tech", f"Number {n:03d}")
    listed = msp.ok("GET", "/psa-members")
    new = [p for p in listed if p["name"].startswith("Tech Number")]
    assert len(new) == 200
    picks = [{"psa_member_id": p["psa_member_id"], "role": "technician"} for p in new]
    made = msp.ok("POST", "/members/import", {"members": picks}, status=201)
    assert len(made) == 200 and len({m["token"] for m in made}) == 200
    assert sum(p["member_id"] is not None for p in msp.ok("GET", "/psa-members")) == 201
