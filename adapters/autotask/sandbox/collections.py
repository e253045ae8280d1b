"""The entities the sandbox's Autotask API serves, as rows, and their field information."""

from __future__ import annotations

from typing import Any

from adapters.autotask.sandbox.errors import ATError
from adapters.autotask.sandbox.render import (
    NOTE_TYPES,
    PUBLISH,
    STATUS_IDS,
    WEBHOOK_FIELDS,
    config_types,
    contacts,
    field_info,
    member_id,
    note_json,
    picklist,
    resource_json,
    ticket_json,
    workflow_note_json,
)
from adapters.autotask.sandbox.state import AutotaskState
from adapters.sandbox.store import SandboxStore, plus_minutes


def notes_of(store: SandboxStore, state: AutotaskState, ticket_id: int) -> list[dict[str, Any]]:
    t = store.ticket(ticket_id)
    with state.lock:
        rows = [note_json(store, state, n) for n in store.notes(ticket_id)[1:]]
    return [workflow_note_json(t), *rows]


def time_json(store: SandboxStore) -> list[dict[str, Any]]:
    return [
        {"id": e.id, "ticketID": e.ticket_id, "resourceID": member_id(store, e.member),
         "dateWorked": e.start[:10] + "T00:00:00Z", "startDateTime": e.start,
         "endDateTime": plus_minutes(e.start, e.minutes),
         "hoursWorked": round(e.minutes / 60, 4), "summaryNotes": e.notes,
         "internalNotes": "", "taskID": None, "roleID": None}
        for e in store.time_entries()
    ]  # fmt: skip


def configurations_json(store: SandboxStore) -> list[dict[str, Any]]:
    types = config_types(store)
    seen: dict[int, dict[str, Any]] = {}
    for t in store.tickets():
        for c in store.configurations(t.id):
            seen[c.id] = {
                "id": c.id, "referenceTitle": c.name, "referenceNumber": None,
                "serialNumber": c.serial or None,
                "rmmDeviceAuditOperatingSystem": c.os or None,
                "rmmDeviceAuditIPAddress": c.ip or None, "rmmDeviceAuditHostname": None,
                "companyID": store.stable_id("company", c.company, 250),
                "configurationItemType": types.get(c.type), "isActive": True,
                "productID": None,
            }  # fmt: skip
    return sorted(seen.values(), key=lambda c: c["id"])


def additional_configurations(store: SandboxStore) -> list[dict[str, Any]]:
    return [
        {"id": c.id * 10 + 1, "ticketID": t.id, "configurationItemID": c.id}
        for t in store.tickets()
        for c in store.configurations(t.id)[1:]
    ]


def public_webhook(w: dict[str, Any]) -> dict[str, Any]:
    return {**w, "secretKey": None}  # a webhook's secret is never shown again


def collection(store: SandboxStore, state: AutotaskState, entity: str) -> list[dict[str, Any]]:
    name = entity.lower()
    if name == "tickets":
        return [ticket_json(store, t) for t in store.tickets()]
    if name == "ticketnotes":
        return [row for t in store.tickets() for row in notes_of(store, state, t.id)]
    if name == "timeentries":
        return time_json(store)
    if name == "resources":
        return [resource_json(store, m) for m in store.members()]
    if name == "contacts":
        return [
            {"id": cid, "firstName": n.split(" ")[0], "lastName": " ".join(n.split(" ")[1:]),
             "emailAddress": email, "isActive": 1}
            for cid, (n, email) in sorted(contacts(store).items())
        ]  # fmt: skip
    if name == "companies":
        names = {t.company for t in store.tickets()}
        return sorted(
            ({"id": store.stable_id("company", n, 250), "companyName": n, "isActive": True}
             for n in names), key=lambda c: c["id"],
        )  # fmt: skip
    if name == "configurationitems":
        return configurations_json(store)
    if name == "ticketadditionalconfigurationitems":
        return additional_configurations(store)
    with state.lock:
        if name == "ticketwebhooks":
            return [public_webhook(w) for w in state.webhooks.values()]
        if name == "ticketwebhookfields":
            return [dict(f) for f in state.webhook_fields.values()]
        if name == "ticketwebhookexcludedresources":
            return [dict(r) for r in state.excluded.values()]
    raise ATError(404, f"No HTTP resource was found for '{entity}'.")


def entity_fields(store: SandboxStore, state: AutotaskState, entity: str) -> list[dict[str, Any]]:
    name = entity.lower()
    if name == "tickets":
        priorities = sorted({(store.stable_id("priority", t.priority, 1), t.priority)
                             for t in store.tickets()})  # fmt: skip
        queues = [(b.id, b.name) for b in store.boards()]
        statuses = [(STATUS_IDS[s], s) for s in STATUS_IDS]
        sample = ticket_json(store, store.tickets()[0])
        special = {"status": statuses, "priority": priorities, "queueID": queues}
        return [
            field_info(k, "integer", picklist(special[k])) if k in special else field_info(k)
            for k in sample
        ]
    if name == "ticketnotes":
        special = {"noteType": list(NOTE_TYPES.items()), "publish": list(PUBLISH.items())}
        sample = workflow_note_json(store.tickets()[0])
        return [
            field_info(k, "integer", picklist(special[k])) if k in special else field_info(k)
            for k in sample
        ]
    if name == "configurationitems":
        types = [(i, n) for n, i in config_types(store).items()]
        return [field_info("id", "long"), field_info("referenceTitle"),
                field_info("configurationItemType", "integer", picklist(types))]  # fmt: skip
    if name == "ticketwebhookfields":
        picks = [(fid, label) for fid, (label, _, _) in WEBHOOK_FIELDS.items()]
        return [field_info("id", "long"), field_info("webhookID", "long"),
                field_info("fieldID", "integer", picklist(picks)),
                field_info("isSubscribedField", "boolean"),
                field_info("isDisplayAlwaysField", "boolean")]  # fmt: skip
    rows = collection(store, state, entity)
    return [field_info(k) for k in (rows[0] if rows else {"id": 0})]
