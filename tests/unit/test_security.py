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
