"""Reading a ticket: the ticket, its notes (system notes left out), time entries and items."""

from __future__ import annotations

from typing import Any

from adapters.autotask.client import COMPLETE_STATUS, eq
from adapters.autotask.lookups import AutotaskLookups
from adapters.base import (
    ConfigurationItem,
    Note,
    NotFound,
    PermissionDenied,
    Resolution,
    Ticket,
    TicketContext,
    TimeEntry,
)
from adapters.values import int_or_none, when

WORKFLOW_RULE_NOTE = 13  # noteType "Workflow Rule Note": written by the system, not by people
PUBLISH_ALL = 1  # "All Autotask Users": shows in the client-facing (outsourced) copy
PUBLISH_INTERNAL = 2  # "Internal Users"


class AutotaskContext(AutotaskLookups):
    def fetch_context(self, ticket_id: str) -> TicketContext:
        tid = self._ticket_id(ticket_id)
        raw = self._item(f"Tickets/{tid}")
        if raw is None:
            raise NotFound(f"autotask has no ticket {tid}")
        priorities = self._labels("Tickets", "priority")
        queues = self._labels("Tickets", "queueID")
        web_url = self._zone().web_url
        ticket = Ticket(
            id=tid,
            title=str(raw.get("title") or ""),
            description=str(raw.get("description") or ""),
            status=str(raw.get("status") if raw.get("status") is not None else ""),
            number=str(raw.get("ticketNumber") or tid),
            company=self._name("Companies", raw.get("companyID")),
            contact=self._name("Contacts", raw.get("contactID")),
            priority=priorities.get(str(raw.get("priority")), str(raw.get("priority") or "")),
            board=queues.get(str(raw.get("queueID")), str(raw.get("queueID") or "")),
            created_at=when(raw.get("createDate")),
            url=(
                f"{web_url.rstrip('/')}/Autotask/AutotaskExtend/ExecuteCommand.aspx"
                f"?Code=OpenTicketDetail&TicketID={tid}"
                if web_url
                else ""
            ),
        )
        return TicketContext(
            ticket=ticket,
            notes=tuple(self._notes(tid)),
            time_entries=tuple(self._time_entries(tid)),
            configurations=tuple(self._configurations(tid, raw)),
        )

    def fetch_resolution(self, ticket_id: str) -> Resolution | None:
        """A Complete ticket's Resolution field, who completed it and when."""
        tid = self._ticket_id(ticket_id)
        raw = self._item(f"Tickets/{tid}")
        if raw is None:
            raise NotFound(f"autotask has no ticket {tid}")
        if int_or_none(raw.get("status")) != COMPLETE_STATUS:
            return None
        by = raw.get("completedByResourceID")
        return Resolution(
            text=str(raw.get("resolution") or "").strip(),
            resolved_by=self._name("Resources", by) if by is not None else "",
            resolved_at=when(raw.get("completedDate")),
        )

    def _notes(self, tid: str) -> list[Note]:
        rows = [
            n
            for n in self._query("TicketNotes", [eq("ticketID", int(tid))])
            if int_or_none(n.get("noteType")) != WORKFLOW_RULE_NOTE
        ]
        rows.sort(key=lambda n: (str(n.get("createDateTime") or ""), int_or_none(n.get("id")) or 0))
        notes = []
        for n in rows:
            if n.get("creatorResourceID") is not None:
                author = self._name("Resources", n.get("creatorResourceID"))
            else:
                author = self._name("Contacts", n.get("createdByContactID"))
            title = str(n.get("title") or "").strip()
            text = str(n.get("description") or "")
            notes.append(
                Note(
                    id=str(n.get("id", "")),
                    text=f"{title}\n\n{text}" if title else text,
                    author=author,
                    created_at=when(n.get("createDateTime")),
                    internal=int_or_none(n.get("publish")) != PUBLISH_ALL,
                )
            )
        return notes

    def _time_entries(self, tid: str) -> list[TimeEntry]:
        entries = []
        rows = self._query("TimeEntries", [eq("ticketID", int(tid))])
        rows.sort(key=lambda e: str(e.get("startDateTime") or e.get("dateWorked") or ""))
        for e in rows:
            start, end = when(e.get("startDateTime")), when(e.get("endDateTime"))
            hours = e.get("hoursWorked")
            if isinstance(hours, (int, float)) and not isinstance(hours, bool):
                minutes = round(float(hours) * 60, 2)  # hoursWorked has 4 decimals
            elif start and end:
                minutes = (end - start).total_seconds() / 60
            else:
                minutes = 0.0
            text = "\n".join(str(e[k]) for k in ("summaryNotes", "internalNotes") if e.get(k))
            entries.append(
                TimeEntry(
                    member=self._name("Resources", e.get("resourceID")),
                    minutes=minutes,
                    started_at=start or when(e.get("dateWorked")),
                    notes=text,
                )
            )
        return entries

    def _configurations(self, tid: str, ticket: dict[str, Any]) -> list[ConfigurationItem]:
        ids: list[int] = []
        main = int_or_none(ticket.get("configurationItemID"))
        if main is not None:
            ids.append(main)
        try:
            extra = self._query("TicketAdditionalConfigurationItems", [eq("ticketID", int(tid))])
        except (PermissionDenied, NotFound):
            extra = []
        for row in extra:
            cid = int_or_none(row.get("configurationItemID"))
            if cid is not None and cid not in ids:
                ids.append(cid)
        items = []
        for cid in ids:
            try:
                c = self._item(f"ConfigurationItems/{cid}")
            except (NotFound, PermissionDenied):
                c = None
            if c is None:
                continue  # deleted since it was attached; the rest still helps
            fields = {
                "os": "rmmDeviceAuditOperatingSystem",
                "ip": "rmmDeviceAuditIPAddress",
                "hostname": "rmmDeviceAuditHostname",
                "serial": "serialNumber",
                "reference number": "referenceNumber",
            }
            details = {k: str(c[f]) for k, f in fields.items() if c.get(f)}
            name = str(
                c.get("referenceTitle")
                or c.get("rmmDeviceAuditHostname")
                or c.get("referenceNumber")
                or f"Configuration item {cid}"
            )
            kind = self._labels("ConfigurationItems", "configurationItemType").get(
                str(c.get("configurationItemType")), ""
            )
            items.append(ConfigurationItem(name=name, type=kind, details=details))
        return items
