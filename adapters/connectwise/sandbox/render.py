"""The sandbox's records as ConnectWise renders them: tickets, notes, members, references."""

from __future__ import annotations

from typing import Any

from adapters.sandbox.store import RESOLVED_STATUS, Member, Note, SandboxStore, Ticket

API_LICENSE = "A"  # an API member's licenseClass; people have "F" (full)


def _identifier(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum())[:25]


def member_ref(store: SandboxStore, identifier: str) -> dict[str, Any]:
    member = store.member(identifier)
    if member is None:
        return {"identifier": identifier, "name": identifier}
    return {"id": member.id, "identifier": member.identifier, "name": member.name}


def company_ref(store: SandboxStore, company: str) -> dict[str, Any]:
    return {"id": store.stable_id("company", company, 250), "identifier": _identifier(company),
            "name": company}  # fmt: skip


def ticket_json(store: SandboxStore, t: Ticket) -> dict[str, Any]:
    board = store.board(t.board)
    return {
        "id": t.id,
        "summary": t.summary,
        "recordType": "ServiceTicket",
        "board": {"id": board.id, "name": board.name},
        "status": {"id": board.status_id(t.status), "name": t.status},
        "company": company_ref(store, t.company),
        "contact": {
            "id": store.stable_id("contact", t.contact_email, 1000),
            "name": t.contact_name,
        },
        "contactEmailAddress": t.contact_email,
        "type": {"name": t.type},
        "subType": {"name": t.subtype},
        "priority": {"id": store.stable_id("priority", t.priority, 1), "name": t.priority},
        "closedFlag": t.status == RESOLVED_STATUS,
        **(
            {"closedDate": t.updated, "closedBy": t.updated_by}
            if t.status == RESOLVED_STATUS
            else {}
        ),
        "_info": {"lastUpdated": t.updated, "updatedBy": t.updated_by, "dateEntered": t.created},
    }


def _closed(t: Ticket) -> dict[str, Any]:
    """When and by whom a closed ticket was closed, as ConnectWise's ticket says it."""
    if t.status != RESOLVED_STATUS:
        return {}
    return {"closedDate": t.updated, "closedBy": t.updated_by}


def note_json(store: SandboxStore, n: Note, *, all_notes: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": n.id,
        "ticketId": n.ticket_id,
        "text": n.text,
        "detailDescriptionFlag": n.detail,
        "internalAnalysisFlag": n.internal,
        "resolutionFlag": n.resolution,
        "issueFlag": False,
        "internalFlag": n.internal,
        "externalFlag": n.detail or n.resolution,
    }
    if "@" in n.author:  # written by the client's contact
        ticket = store.ticket(n.ticket_id)
        same = n.author.lower() == ticket.contact_email.lower()
        name = ticket.contact_name if same else n.author.split("@")[0]
        data["contact"] = {"id": store.stable_id("contact", n.author, 1000), "name": name}
    else:
        data["member"] = member_ref(store, n.author)
    data.update(dateCreated=n.created, createdBy=n.author)
    data["_info"] = {"lastUpdated": n.created, "updatedBy": n.author}
    if all_notes:
        data["noteType"] = "TicketNote"
    return data


def member_json(store: SandboxStore, m: Member) -> dict[str, Any]:
    api = m.identifier == store.api_member
    return {"id": m.id, "identifier": m.identifier, "firstName": m.first_name,
            "lastName": m.last_name, "officeEmail": m.email, "primaryEmail": m.email,
            "emailAddress": m.email, "inactiveFlag": not m.active,
            "licenseClass": API_LICENSE if api else "F"}  # fmt: skip
