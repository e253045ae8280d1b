"""The Autotask dialect's state beside the store: its API user, webhooks, note titles, the
request counters, and what the webhook listener last saw."""

from __future__ import annotations

import itertools
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from adapters.sandbox.store import SandboxStore

# The dialect's API user: zone discovery knows this user only.
SANDBOX_AUTOTASK_USERNAME = "baton-sandbox@example.com"
SANDBOX_AUTOTASK_SECRET = "sandbox-secret"  # noqa: S105 (a published sandbox key)
SANDBOX_AUTOTASK_INTEGRATION_CODE = "SANDBOXCODE"


@dataclass
class AutotaskState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhook_fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    excluded: dict[int, dict[str, Any]] = field(default_factory=dict)
    sequences: dict[int, int] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)  # ticket -> last status seen
    note_meta: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (title, noteType)
    in_flight: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    refused: int = 0  # thread-threshold refusals, for the benchmark (issue 19)
    ids: Any = field(default_factory=lambda: itertools.count(117))


_STATES: weakref.WeakKeyDictionary[SandboxStore, AutotaskState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def autotask_state(store: SandboxStore) -> AutotaskState:
    """One Autotask state per store, shared by every app created over it."""
    with _STATES_LOCK:
        state = _STATES.get(store)
        if state is None:
            state = _STATES[store] = AutotaskState()
            state.statuses = {t.id: t.status for t in store.tickets()}
        return state


def sandbox_webhooks(store: SandboxStore) -> list[dict[str, Any]]:
    """The store's TicketWebhooks with their secrets (for tests and the demo)."""
    state = autotask_state(store)
    with state.lock:
        return [dict(w) for w in state.webhooks.values()]
