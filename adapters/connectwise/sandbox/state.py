"""The ConnectWise dialect's state beside the store: its company and keys, the callback
signing key, member hashes, and the registered callbacks (as CallbackEntry records)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from adapters.sandbox.store import NotInSandbox, SandboxStore

SANDBOX_COMPANY = "baton-sandbox"
SANDBOX_PUBLIC_KEY = "sandbox-public"
SANDBOX_PRIVATE_KEY = "sandbox-private"
SANDBOX_CLIENT_ID = "00000000-0000-4000-8000-000000000000"  # any clientId will do; it must be sent


@dataclass
class ConnectWiseState:
    company: str = SANDBOX_COMPANY
    public_key: str = SANDBOX_PUBLIC_KEY
    private_key: str = SANDBOX_PRIVATE_KEY
    signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    signing_key_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    member_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    product_instance_id: str = field(default_factory=lambda: secrets.token_hex(12))
    partner_id: str = field(default_factory=lambda: secrets.token_hex(12))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _callbacks: dict[int, dict[str, Any]] = field(default_factory=dict)
    _callback_ids: Any = field(default_factory=lambda: itertools.count(26001))

    def callbacks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(cb) for cb in self._callbacks.values()]

    def callback(self, callback_id: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._entry(callback_id))

    def add_callback(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry = {"id": next(self._callback_ids), **entry}
            self._callbacks[entry["id"]] = entry
            return dict(entry)

    def update_callback(self, callback_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._callbacks[callback_id] = {**self._entry(callback_id), **changes}
            return dict(self._callbacks[callback_id])

    def delete_callback(self, callback_id: int) -> None:
        with self._lock:
            self._entry(callback_id)
            del self._callbacks[callback_id]

    def _entry(self, callback_id: int) -> dict[str, Any]:
        if callback_id not in self._callbacks:
            raise NotInSandbox(f"callback {callback_id}")
        return self._callbacks[callback_id]


_STATES: weakref.WeakKeyDictionary[SandboxStore, ConnectWiseState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def connectwise_state(store: SandboxStore) -> ConnectWiseState:
    """One ConnectWise state per store, shared by every app created over it."""
    with _STATES_LOCK:
        return _STATES.setdefault(store, ConnectWiseState())


def sandbox_member_hash(store: SandboxStore, member_id: str) -> str:
    """The memberHash the Hosted API's getMemberAuthentication would hand this member."""
    secret = connectwise_state(store).member_secret
    return hmac.new(secret, member_id.lower().encode(), hashlib.sha256).hexdigest()
