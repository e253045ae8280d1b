"""The sandbox's records as Autotask renders them: tickets, notes, resources, field info."""

from __future__ import annotations

from typing import Any

from adapters.autotask.sandbox.state import SANDBOX_AUTOTASK_USERNAME, AutotaskState
from adapters.sandbox.store import (
    ESCALATED_STATUS,
    RESOLVED_STATUS,
    Member,
    Note,
    SandboxStore,
    Ticket,
)

# The store's status names as one Autotask "status" picklist (ids as in a default Autotask).
STATUS_IDS = {"New": 1, "In Progress": 8, "Waiting on Client": 7, ESCALATED_STATUS: 13,
              RESOLVED_STATUS: 5}  # fmt: skip
STATUS_NAMES = {v: k for k, v in STATUS_IDS.items()}
NOTE_TYPES = {1: "Summary", 2: "Detail", 3: "Notes", 13: "Workflow Rule Note"}
PUBLISH = {1: "All Autotask Users", 2: "Internal Users"}
PUBLISH_ALL, PUBLISH_INTERNAL = 1, 2
WORKFLOW_RULE_NOTE = 13
WORKFLOW_NOTE_BASE = 2_000_000_000  # + ticket id: one system note per ticket, never a person's
# TicketWebhookFields' fieldID picklist: id -> (label, key in the payload's Fields, ticket field)
WEBHOOK_FIELDS: dict[int, tuple[str, str, str]] = {
    4: ("Status", "Status", "status"),
    6: ("Title", "Title", "title"),
    9: ("Ticket Number", "TicketNumber", "ticketNumber"),
    10: ("Priority", "Priority", "priority"),
    11: ("Queue", "QueueID", "queueID"),
    12: ("Assigned Resource", "AssignedResourceID", "assignedResourceID"),
}
STATUS_FIELD_ID = 4
# Resources' licenseType picklist, as far as the sandbox needs it.
LICENSE_TYPES = {1: "Full", 7: "API User"}


def contacts(store: SandboxStore) -> dict[int, tuple[str, str]]:
    """contact id -> (name, email), for ticket contacts and the contacts who wrote notes."""
    contacts: dict[int, tuple[str, str]] = {}
    for t in store.tickets():
        for n in store.notes(t.id):
            if "@" in n.author:
                cid = store.stable_id("contact", n.author, 1000)
                contacts.setdefault(cid, (n.author.split("@")[0], n.author))
        if t.contact_email:
            cid = store.stable_id("contact", t.contact_email, 1000)
            contacts[cid] = (t.contact_name, t.contact_email)
    return contacts


def config_types(store: SandboxStore) -> dict[str, int]:
    names = {c.type for t in store.tickets() for c in store.configurations(t.id) if c.type}
    return {name: i for i, name in enumerate(sorted(names), start=1)}


def ticket_number(t: Ticket) -> str:
    return f"T{t.created[:10].replace('-', '')}.{t.id % 10000:04d}"


def member_id(store: SandboxStore, identifier: str) -> int | None:
    member = store.member(identifier) if identifier and "@" not in identifier else None
    return member.id if member else None


def ticket_json(store: SandboxStore, t: Ticket) -> dict[str, Any]:
    notes = store.notes(t.id)
    configs = store.configurations(t.id)
    return {
        "id": t.id,
        "ticketNumber": ticket_number(t),
        "title": t.summary,
        "description": notes[0].text if notes else "",
        "status": STATUS_IDS[t.status],
        "priority": store.stable_id("priority", t.priority, 1),
        "queueID": store.board(t.board).id,
        "companyID": store.stable_id("company", t.company, 250),
        "contactID": store.stable_id("contact", t.contact_email, 1000) if t.contact_email else None,
        "assignedResourceID": member_id(store, t.escalated_by),
        "assignedResourceRoleID": None,
        "configurationItemID": configs[0].id if configs else None,
        "ticketType": 1,
        "source": 2,
        "createDate": t.created,
        "lastActivityDate": t.updated,
        "lastActivityResourceID": member_id(store, t.updated_by),
        "completedDate": t.updated if t.status == RESOLVED_STATUS else None,
        "completedByResourceID": member_id(store, t.updated_by)
        if t.status == RESOLVED_STATUS
        else None,
        "resolution": resolution.text if (resolution := store.resolution(t.id)) else "",
        "dueDateTime": None,
    }


def note_json(store: SandboxStore, state: AutotaskState, n: Note) -> dict[str, Any]:
    title, note_type = state.note_meta.get(n.id, ("", 3 if n.internal else 1))
    contact = "@" in n.author
    return {
        "id": n.id,
        "ticketID": n.ticket_id,
        "title": title,
        "description": n.text,
        "noteType": note_type,
        "publish": PUBLISH_INTERNAL if n.internal else PUBLISH_ALL,
        "createDateTime": n.created,
        "lastActivityDate": n.created,
        "creatorResourceID": None if contact else member_id(store, n.author),
        "createdByContactID": store.stable_id("contact", n.author, 1000) if contact else None,
        "impersonatorCreatorResourceID": None,
        "impersonatorUpdaterResourceID": None,
    }


def workflow_note_json(t: Ticket) -> dict[str, Any]:
    """What a workflow rule leaves on a new ticket: a system note Baton must not read."""
    return {
        "id": WORKFLOW_NOTE_BASE + t.id, "ticketID": t.id, "title": "Workflow rule",
        "description": f"Workflow rule 'New ticket in {t.board}' notified the queue.",
        "noteType": WORKFLOW_RULE_NOTE, "publish": PUBLISH_ALL, "createDateTime": t.created,
        "lastActivityDate": t.created, "creatorResourceID": None, "createdByContactID": None,
        "impersonatorCreatorResourceID": None, "impersonatorUpdaterResourceID": None,
    }  # fmt: skip


def resource_json(store: SandboxStore, m: Member) -> dict[str, Any]:
    api = m.identifier == store.api_member
    return {
        "id": m.id, "firstName": m.first_name, "lastName": m.last_name,
        "email": SANDBOX_AUTOTASK_USERNAME if api else m.email,
        "userName": SANDBOX_AUTOTASK_USERNAME if api else m.identifier,
        "isActive": m.active, "resourceType": "Employee", "licenseType": 7 if api else 1,
    }  # fmt: skip


def picklist(values: list[tuple[Any, str]], *, active: bool = True) -> list[dict[str, Any]]:
    return [
        {"value": str(value), "label": label, "isDefaultValue": False, "sortOrder": order,
         "parentValue": "", "isActive": active, "isSystem": True}
        for order, (value, label) in enumerate(values, start=1)
    ]  # fmt: skip


def field_info(name: str, kind: str = "string", values: list[dict] | None = None) -> dict[str, Any]:
    return {
        "name": name, "dataType": kind, "length": 0, "isRequired": name == "id",
        "isReadOnly": name == "id", "isQueryable": True, "isReference": False,
        "referenceEntityType": "", "isPickList": values is not None,
        "picklistValues": values, "picklistParentValueField": "",
        "isSupportedWebhookField": name in {f[2] for f in WEBHOOK_FIELDS.values()},
    }  # fmt: skip
