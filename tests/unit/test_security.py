"""Secrets at rest: Fernet with rotation; tokens hashed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from connector.security import SecretBox, hash_token, new_api_token


def test_encrypt_decrypt_and_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox([old]).encrypt_json({"private_key": "hunter2"})
    assert "hunter2" not in token
    rotated_box = SecretBox([new, old])
    assert rotated_box.decrypt_json(token) == {"private_key": "hunter2"}
    rotated = rotated_box.rotate(token)
    assert SecretBox([new]).decrypt_json(rotated) == {"private_key": "hunter2"}
    with pytest.raises(ValueError, match="CONNECTOR_SECRET_KEY"):
        SecretBox([new]).decrypt_json(token)


def test_tokens_are_random_and_hashed():
    a, b = new_api_token(), new_api_token()
    assert a != b and len(a) > 40
    assert hash_token(a) != a and len(hash_token(a)) == 64


def test_rotate_keys_command_reencrypts_under_the_first_key(app_factory, admin_headers):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    app = app_factory(secret_keys=(old,))
    client = app.test_client()
    client.post(
        "/api/v1/admin/tenants",
        headers=admin_headers,
        json={
            "slug": "acme",
            "name": "Acme",
            "vendor": "connectwise",
            "escalation_statuses": ["E"],
        },
    )
    client.put(
        "/api/v1/admin/tenants/acme/connection",
        headers=admin_headers,
        json={
            "site": "https://api-na.myconnectwise.net",
            "company_id": "acme",
            "public_key": "pub",
            "private_key": "very-private",
            "client_id": "cid",
        },
    )
    rotated = app_factory(secret_keys=(new, old))
    result = rotated.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0 and "re-encrypted 1" in result.output
    from sqlalchemy import text

    from connector.db import session

    token = session.execute(text("SELECT secrets_encrypted FROM connections")).scalar_one()
    assert SecretBox([new]).decrypt_json(token)["private_key"] == "very-private"
    with pytest.raises(ValueError):
        SecretBox([old]).decrypt_json(token)
