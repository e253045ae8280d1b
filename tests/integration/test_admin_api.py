"""The admin API: happy paths, every documented error, secrets never echoed nor stored plain."""

from __future__ import annotations

from sqlalchemy import text

from connector.db import session

CW_CONNECTION = {
    "site": "https://api-na.myconnectwise.net",
    "company_id": "acmemsp",
    "public_key": "PUBLICKEY123",
    "private_key": "PRIVATE-very-secret-key",
    "client_id": "3f6f4c7e-2b1d-4c1a-9a77-0c5d2f8e91ab",
}


def create(client, headers, slug="acme", vendor="connectwise", **extra):
    body = {
        "slug": slug,
        "name": "Acme MSP",
        "vendor": vendor,
        "escalation_statuses": ["Escalated - Tier 2"],
        **extra,
    }
    return client.post("/api/v1/admin/tenants", json=body, headers=headers)


def test_create_list_and_get_tenant(client, admin_headers):
    response = create(client, admin_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["slug"] == "acme"
    assert body["escalation_statuses"] == ["Escalated - Tier 2"]
    assert body["language"] == "en"
    assert body["webhook_url"].endswith("/webhooks/connectwise/acme")
    assert body["connection"]["configured"] is False

    listed = client.get("/api/v1/admin/tenants", headers=admin_headers).get_json()
    assert [t["slug"] for t in listed] == ["acme"]
    one = client.get("/api/v1/admin/tenants/acme", headers=admin_headers)
    assert one.status_code == 200 and one.get_json()["name"] == "Acme MSP"


def test_missing_or_wrong_admin_token_is_401(client, admin_headers):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/admin/tenants", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
    response = create(client, {"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert client.get("/api/v1/admin/tenants", headers=admin_headers).get_json() == []


def test_unknown_tenant_is_404(client, admin_headers):
    for method, path, kwargs in (
        ("get", "/api/v1/admin/tenants/nope", {}),
        ("put", "/api/v1/admin/tenants/nope/connection", {"json": CW_CONNECTION}),
        (
            "post",
            "/api/v1/admin/tenants/nope/members",
            {
                "json": {
                    "psa_member_id": "a",
                    "name": "A",
                    "email": "a@example.com",
                    "role": "admin",
                }
            },
        ),
    ):
        response = getattr(client, method)(path, headers=admin_headers, **kwargs)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "unknown_tenant"


def test_duplicate_slug_is_409(client, admin_headers):
    assert create(client, admin_headers).status_code == 201
    response = create(client, admin_headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "duplicate_slug"


def test_invalid_bodies_are_422_naming_the_field(client, admin_headers):
    cases = [
        ({"name": "x", "vendor": "connectwise", "escalation_statuses": ["E"]}, "slug"),
        (
            {
                "slug": "Bad Slug!",
                "name": "x",
                "vendor": "connectwise",
                "escalation_statuses": ["E"],
            },
            "slug",
        ),
        ({"slug": "ok", "name": "x", "vendor": "halo", "escalation_statuses": ["E"]}, "vendor"),
        (
            {"slug": "ok", "name": "x", "vendor": "connectwise", "escalation_statuses": []},
            "escalation_statuses",
        ),
        (
            {"slug": "ok", "name": "x", "vendor": "connectwise", "escalation_statuses": "E"},
            "escalation_statuses",
        ),
    ]
    for body, field in cases:
        response = client.post("/api/v1/admin/tenants", json=body, headers=admin_headers)
        assert response.status_code == 422, body
        error = response.get_json()["error"]
        assert error["code"] == "invalid_request"
        assert field in error["message"], (field, error)
    response = client.post(
        "/api/v1/admin/tenants",
        data="{not json",
        headers=admin_headers,
        content_type="application/json",
    )
    assert response.status_code in (400, 422)
    assert "error" in response.get_json()
    assert client.get("/api/v1/admin/tenants", headers=admin_headers).get_json() == []


def test_connection_secrets_are_write_only_and_encrypted(client, admin_headers):
    create(client, admin_headers)
    response = client.put(
        "/api/v1/admin/tenants/acme/connection", json=CW_CONNECTION, headers=admin_headers
    )
    assert response.status_code == 200
    body = response.get_json()
    raw_body = response.get_data(as_text=True)
    for secret in ("PUBLICKEY123", "PRIVATE-very-secret-key", CW_CONNECTION["client_id"]):
        assert secret not in raw_body
    assert body["connection"]["settings"] == {
        "site": CW_CONNECTION["site"],
        "company_id": "acmemsp",
    }
    assert body["connection"]["secrets"] == {
        "public_key": "set",
        "private_key": "set",
        "client_id": "set",
    }

    stored = session.execute(text("SELECT settings, secrets_encrypted FROM connections")).one()
    raw = f"{stored[0]} {stored[1]}"
    for secret in ("PUBLICKEY123", "PRIVATE-very-secret-key", CW_CONNECTION["client_id"]):
        assert secret not in raw

    # Leaving a secret out keeps the stored one (a form's blank password field).
    partial = {k: v for k, v in CW_CONNECTION.items() if k != "private_key"}
    response = client.put(
        "/api/v1/admin/tenants/acme/connection", json=partial, headers=admin_headers
    )
    assert response.status_code == 200
    assert response.get_json()["connection"]["secrets"]["private_key"] == "set"


def test_connection_validation_names_the_field(client, admin_headers):
    create(client, admin_headers)
    missing = {k: v for k, v in CW_CONNECTION.items() if k != "company_id"}
    response = client.put(
        "/api/v1/admin/tenants/acme/connection", json=missing, headers=admin_headers
    )
    assert response.status_code == 422
    assert "company_id" in response.get_json()["error"]["message"]
    bad_url = {**CW_CONNECTION, "site": "not a url"}
    response = client.put(
        "/api/v1/admin/tenants/acme/connection", json=bad_url, headers=admin_headers
    )
    assert response.status_code == 422
    assert "site" in response.get_json()["error"]["message"]
    foreign = {**CW_CONNECTION, "username": "api@example.com"}
    response = client.put(
        "/api/v1/admin/tenants/acme/connection", json=foreign, headers=admin_headers
    )
    assert response.status_code == 422
    assert "username" in response.get_json()["error"]["message"]
    tenant = client.get("/api/v1/admin/tenants/acme", headers=admin_headers).get_json()
    assert tenant["connection"]["configured"] is False


def test_autotask_connection_fields(client, admin_headers):
    create(client, admin_headers, slug="at", vendor="autotask")
    body = {
        "username": "api@acme.example",
        "secret": "s3cret-value",
        "integration_code": "ABCDEF",
        "webhook_secret": "whsec-0123456789",
        "zone_url": "https://webservices5.autotask.net/ATServicesRest/",
    }
    response = client.put("/api/v1/admin/tenants/at/connection", json=body, headers=admin_headers)
    assert response.status_code == 200
    connection = response.get_json()["connection"]
    assert connection["settings"] == {"username": "api@acme.example", "zone_url": body["zone_url"]}
    assert connection["secrets"] == {
        "secret": "set",
        "integration_code": "set",
        "webhook_secret": "set",
    }
    assert "s3cret-value" not in response.get_data(as_text=True)


def test_members_get_a_token_once_stored_hashed(client, admin_headers):
    create(client, admin_headers)
    member = {
        "psa_member_id": "sseniorr",
        "name": "Sam Senior",
        "email": "sam@example.com",
        "role": "engineer",
    }
    response = client.post("/api/v1/admin/tenants/acme/members", json=member, headers=admin_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "token"} and len(body["token"]) > 30
    stored = session.execute(text("SELECT token_hash FROM members")).scalar_one()
    assert body["token"] not in stored and len(stored) == 64

    again = client.post("/api/v1/admin/tenants/acme/members", json=member, headers=admin_headers)
    assert again.status_code == 409
    bad_role = {**member, "psa_member_id": "x", "role": "owner"}
    response = client.post(
        "/api/v1/admin/tenants/acme/members", json=bad_role, headers=admin_headers
    )
    assert response.status_code == 422 and "role" in response.get_json()["error"]["message"]
    bad_email = {**member, "psa_member_id": "y", "email": "nope"}
    response = client.post(
        "/api/v1/admin/tenants/acme/members", json=bad_email, headers=admin_headers
    )
    assert response.status_code == 422 and "email" in response.get_json()["error"]["message"]


def test_unknown_route_and_method_are_json(client, admin_headers):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    response = client.delete("/api/v1/admin/tenants", headers=admin_headers)
    assert response.status_code == 405 and "error" in response.get_json()


def test_openapi_document_lists_the_admin_api(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["info"]["title"] == "Baton"
    for path in (
        "/api/v1/admin/tenants",
        "/api/v1/admin/tenants/{slug}/connection",
        "/api/v1/admin/tenants/{slug}/members",
        "/api/v1/escalations/{escalation_id}",
    ):
        assert path in spec["paths"], path
