"""The sandbox's records as Halo renders them: tickets, actions, agents, assets, the lists."""

from __future__ import annotations

from html import escape
from typing import Any

from adapters.sandbox.store import (
    ESCALATED_STATUS,
    RESOLVED_STATUS,
    Member,
    Note,
    SandboxStore,
    Ticket,
    TimeEntry,
    plus_minutes,
)

# The store's status names as one Halo status list (1 New and 9 Closed as in a new instance).
STATUS_IDS = {"New": 1, "In Progress": 2, "Waiting on Client": 4, ESCALATED_STATUS: 21,
              RESOLVED_STATUS: 9}  # fmt: skip
STATUS_NAMES = {v: k for k, v in STATUS_IDS.items()}
PRIVATE_NOTE, PUBLIC_NOTE, EMAIL_RECEIVED, TIME_ENTRY, STATUS_CHANGE = 7, 8, 10, 12, 30
CLOSE_TICKET = 9  # the outcome that closes a ticket: its note is the closure note
OUTCOMES: list[dict[str, Any]] = [
    {"id": 1, "outcome": "Update", "buttonname": "Update", "hidefromuser": False, "sendemail": 0},
    {"id": 4, "outcome": "Email User", "buttonname": "Email User", "hidefromuser": False,
     "sendemail": 1},
    {"id": PRIVATE_NOTE, "outcome": "Private Note", "buttonname": "Private Note",
     "hidefromuser": True, "sendemail": 0},
    {"id": PUBLIC_NOTE, "outcome": "Note", "buttonname": "Add Note", "hidefromuser": False,
     "sendemail": 0},
    {"id": CLOSE_TICKET, "outcome": "Close Ticket", "buttonname": "Close", "hidefromuser": False,
     "sendemail": 0},
    {"id": EMAIL_RECEIVED, "outcome": "Email Received", "hidefromuser": False, "sendemail": 0},
    {"id": TIME_ENTRY, "outcome": "Time Entry", "hidefromuser": True, "sendemail": 0},
    {"id": STATUS_CHANGE, "outcome": "Status Change", "hidefromuser": True, "sendemail": 0,
     "systemid": 2},
]  # fmt: skip
OUTCOME_NAMES: dict[int, str] = {o["id"]: o["outcome"] for o in OUTCOMES}
TIME_ACTION_BASE = 5_000_000  # + time entry id: Halo keeps time on actions too
SYSTEM_ACTION_BASE = 9_000_000  # + ticket id: one system action per ticket, never a person's
TEAM = "Service Desk"


def text_html(text: str) -> str:
    """Text as Halo's editor saves it: paragraphs of escaped lines."""
    return "".join(
        "<p>" + "<br>".join(escape(line) for line in block.split("\n")) + "</p>"
        for block in text.split("\n\n")
    )


def agent_id(store: SandboxStore, identifier: str) -> int | None:
    member = store.member(identifier) if identifier and "@" not in identifier else None
    return member.id if member else None


def agent_json(store: SandboxStore, m: Member) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "firstname": m.first_name, "surname": m.last_name,
            "email": m.email, "isdisabled": not m.active,
            "isapiagent": m.identifier == store.api_member, "team": TEAM}  # fmt: skip


def asset_json(store: SandboxStore, t: Ticket) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "key_field": c.name, "inventory_number": f"AST-{c.id}",
         "assettype_name": c.type, "client_id": store.stable_id("company", c.company, 250),
         "client_name": c.company, "inactive": False,
         "fields": [{"name": label, "value": value} for label, value in
                    (("Operating system", c.os), ("IP address", c.ip), ("Serial number", c.serial))
                    if value]}
        for c in store.configurations(t.id)
    ]  # fmt: skip


def ticket_json(store: SandboxStore, t: Ticket, *, details: bool = False) -> dict[str, Any]:
    description = store.notes(t.id)[0].text
    ticket: dict[str, Any] = {
        "id": t.id, "summary": t.summary, "details": description,
        "details_html": text_html(description), "status_id": STATUS_IDS[t.status],
        "status_name": t.status, "tickettype_id": 1, "tickettype_name": t.type or "Incident",
        "client_id": store.stable_id("company", t.company, 250), "client_name": t.company,
        "site_id": store.stable_id("company", t.company, 250), "site_name": "Main",
        "user_id": store.stable_id("contact", t.contact_email, 1000) if t.contact_email else 0,
        "user_name": t.contact_name, "user_email": t.contact_email,
        "priority_id": store.stable_id("priority", t.priority, 1), "priority_name": t.priority,
        "team": t.board, "agent_id": agent_id(store, t.escalated_by) or 0,
        "dateoccurred": t.created, "datecreated": t.created, "lastactiondate": t.updated,
        "last_update": t.updated, "hasbeenclosed": t.status == RESOLVED_STATUS, "deleted": False,
        "dateclosed": t.updated if t.status == RESOLVED_STATUS else None,
        "customfields": [],
    }  # fmt: skip
    if details:
        ticket["assets"] = asset_json(store, t)
    return ticket


def note_action(store: SandboxStore, n: Note, saved: dict[str, Any] | None) -> dict[str, Any]:
    """A store note as an action: a contact's is an e-mail received, an agent's a note."""
    contact = "@" in n.author
    member = None if contact else store.member(n.author)
    outcome = (saved or {}).get("outcome_id") or (
        CLOSE_TICKET if n.resolution
        else EMAIL_RECEIVED if contact else PRIVATE_NOTE if n.internal else PUBLIC_NOTE
    )  # fmt: skip
    return {
        "id": n.id, "ticket_id": n.ticket_id, "outcome_id": outcome,
        "outcome": OUTCOME_NAMES.get(outcome, ""), "who": member.name if member else n.author,
        "who_type": 2 if contact else 1, "who_agentid": member.id if member else 0,
        "datetime": n.created, "actiondatecreated": n.created, "note": n.text,
        "note_html": text_html(n.text), "hiddenfromuser": not n.detail,
        "timetaken": 0, "action_systemid": 0, "emailfrom": n.author if contact else "",
        "sendemail": bool((saved or {}).get("sendemail")),
        **({"new_status": STATUS_IDS[RESOLVED_STATUS]} if n.resolution else {}),
    }  # fmt: skip


def time_action(store: SandboxStore, e: TimeEntry) -> dict[str, Any]:
    member = store.member(e.member)
    return {
        "id": TIME_ACTION_BASE + e.id, "ticket_id": e.ticket_id, "outcome_id": TIME_ENTRY,
        "outcome": "Time Entry", "who": member.name if member else e.member, "who_type": 1,
        "who_agentid": member.id if member else 0, "datetime": e.start,
        "actiondatecreated": plus_minutes(e.start, e.minutes), "note": e.notes,
        "note_html": text_html(e.notes) if e.notes else "", "hiddenfromuser": True,
        "timetaken": round(e.minutes / 60, 4), "action_systemid": 0, "sendemail": False,
    }  # fmt: skip


def system_action(t: Ticket) -> dict[str, Any]:
    """What Halo logs itself when a ticket is opened: left out with excludesys."""
    return {
        "id": SYSTEM_ACTION_BASE + t.id, "ticket_id": t.id, "outcome_id": STATUS_CHANGE,
        "outcome": "Status Change", "who": "System", "who_type": 0, "who_agentid": 0,
        "datetime": t.created, "note": "Status changed from New to In Progress",
        "note_html": "<p>Status changed from New to In Progress</p>", "hiddenfromuser": True,
        "timetaken": 0, "action_systemid": 2, "sendemail": False,
    }  # fmt: skip
