"""The Halo dialect's state beside the store: its application and tenant, issued tokens,
webhooks, what each action was saved with, and the request window it may enforce."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from adapters.sandbox.store import SandboxStore

# The dialect's one API application (Client ID and Secret), its tenant and the custom tab.
SANDBOX_HALO_CLIENT_ID = "2f1a6d3e-0b7c-4e5d-9a8b-sandbox00001"
SANDBOX_HALO_CLIENT_SECRET = "sandbox-halo-secret"  # noqa: S105 (a published sandbox key)
SANDBOX_HALO_TENANT = "batonsandbox"
SANDBOX_HALO_TAB_SECRET = "sandbox-tab-secret"  # noqa: S105


@dataclass
class HaloState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expires at (monotonic)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id (a GUID) -> webhook
    webhooks_api: bool = True  # False: the API agent may not manage webhooks (a 403)
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)  # note id -> saved fields
    statuses: dict[int, str] = field(default_factory=dict)  # ticket -> last status seen
    # (requests, seconds): Halo's rolling window, when a test wants it enforced
    window: tuple[int, float] | None = None
    recent: deque[float] = field(default_factory=deque)
    requests: int = 0


_STATES: weakref.WeakKeyDictionary[SandboxStore, HaloState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def halo_state(store: SandboxStore) -> HaloState:
    """One Halo state per store, shared by every app created over it."""
    with _STATES_LOCK:
        state = _STATES.get(store)
        if state is None:
            state = _STATES[store] = HaloState()
            state.statuses = {t.id: t.status for t in store.tickets()}
        return state
