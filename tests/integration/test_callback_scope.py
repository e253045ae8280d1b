"""ConnectWise callbacks scoped to the boards that hold an escalation status (level "board"),
moved when the trigger changes: a save on any other board is never sent to Baton at all."""

from __future__ import annotations

import time

import requests

from adapters.connectwise.sandbox.state import connectwise_state
from adapters.sandbox.store import BOARD_STATUSES


def scopes(store) -> list[tuple[str, int]]:
    return sorted((c["level"], c["objectId"]) for c in connectwise_state(store).callbacks())


def set_trigger(live, admin_headers, statuses: list[str]) -> None:
    answer = requests.patch(
        f"{live.url}/api/v1/admin/tenants/acme",
        headers=admin_headers,
        json={"escalation_statuses": statuses},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def deliveries_after(store, before: int, expected: int) -> list:
    """The deliveries the sandbox sent after `before`; waits for `expected`, then a little more
    (so that one that should not have been sent would be seen)."""
    store.wait_for_deliveries(before + expected, timeout=5)
    time.sleep(0.3)
    return store.deliveries[before:]


def test_one_board_callback_per_board_holding_the_trigger(baton, sandbox, admin_headers):
    _app, live, _token = baton
    store, _server = sandbox
    # "Escalated" is a status of every sandbox board: one callback each, none for everything.
    assert scopes(store) == [("board", b.id) for b in store.boards()]

    # A status only the Security board has: the callbacks move to that board alone.
    (board_key, (status,)) = next(iter(BOARD_STATUSES.items()))
    security = store.board(board_key)
    set_trigger(live, admin_headers, [status])
    assert scopes(store) == [("board", security.id)]

    elsewhere = next(t for t in store.tickets() if t.board.lower() != board_key)
    on_board = next(t for t in store.tickets() if t.board.lower() == board_key)
    before = len(store.deliveries)
    store.set_status(elsewhere.id, "New", actor="kpatel")  # another board: not sent at all
    store.set_status(on_board.id, status, actor="kpatel")  # entering the trigger: sent
    sent = deliveries_after(store, before, 1)
    assert len(sent) == 1 and sent[0].status == 202, [(d.status, d.body[:80]) for d in sent]
    assert f'"ID": {on_board.id}' in sent[0].body.decode()

    # Back to a status every board has: every board again, and no duplicate on a second install.
    set_trigger(live, admin_headers, ["Escalated"])
    assert scopes(store) == [("board", b.id) for b in store.boards()]
    again = requests.post(
        f"{live.url}/api/v1/admin/tenants/acme/webhooks/install", headers=admin_headers, timeout=10
    )
    assert again.json()["created"] is False
    assert scopes(store) == [("board", b.id) for b in store.boards()]


def test_a_ticket_leaving_the_status_is_still_seen(baton, sandbox, admin_headers):
    """Why "board" and not "status": a status-level callback would not hear the ticket leave
    the status, and its next escalation would look like "already escalated"."""
    _app, _live, _token = baton
    store, _server = sandbox
    ticket = store.tickets()[0]
    before = len(store.deliveries)
    store.set_status(ticket.id, "Escalated", actor="kpatel")
    store.set_status(ticket.id, "In Progress", actor="kpatel")
    store.set_status(ticket.id, "Escalated", actor="kpatel")
    sent = deliveries_after(store, before, 3)
    assert [d.status for d in sent] == [202, 200, 202], [(d.status, d.body[:80]) for d in sent]
