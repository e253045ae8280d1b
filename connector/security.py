"""Secrets at rest (Fernet, rotated with MultiFernet), API tokens, and the outbound guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# The guard is shared with the adapters' HTTP sessions; re-exported for notify's chat webhooks.
from adapters.http import check_url, guarded_session  # noqa: F401


class SecretBox:
    """Encrypts with the first key; decrypts with any (comma-separated CONNECTOR_SECRET_KEY)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one secret key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt_json(self, values: Mapping[str, str]) -> str:
        if not values:
            return ""
        return self._fernet.encrypt(json.dumps(dict(values)).encode()).decode()

    def decrypt_json(self, token: str) -> dict[str, str]:
        if not token:
            return {}
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken:
            raise ValueError(
                "stored secrets cannot be decrypted with CONNECTOR_SECRET_KEY "
                "(was a key removed from the list?)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first key (for `flask rotate-keys`)."""
        return self._fernet.rotate(token.encode()).decode() if token else token


def new_api_token() -> str:
    return "bt_" + secrets.token_urlsafe(32)


def new_session_key() -> str:
    return secrets.token_urlsafe(16)


def hash_token(token: str) -> str:
    """Tokens are random and long, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
