"""Reading a ticket: the ticket, its notes, time entries and configurations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from adapters.base import (
    ConfigurationItem,
    Note,
    NotFound,
    Resolution,
    Ticket,
    TicketContext,
    TimeEntry,
)
from adapters.connectwise.client import API_TO_UI, ConnectWiseClient, ref_name
from adapters.values import lower_keys, when


class ConnectWiseContext(ConnectWiseClient):
    def fetch_context(self, ticket_id: str) -> TicketContext:
        tid = self._ticket_id(ticket_id)
        raw = self._get(f"/service/tickets/{tid}")
        notes = sorted(
            (
                n
                for n in self._list(f"/service/tickets/{tid}/allNotes")
                if n.get("noteType", "TicketNote") == "TicketNote"
            ),
            key=lambda n: (str(n.get("dateCreated") or ""), str(n.get("id")).zfill(20)),
        )
        description = str(raw.get("initialDescription") or "")
        if not description:
            first = next((n for n in notes if n.get("detailDescriptionFlag")), None)
            if first is not None:
                description = str(first.get("text") or "")
                notes.remove(first)
        host = urlsplit(self.site).hostname or ""
        url = ""
        if host in API_TO_UI:
            url = (
                f"https://{API_TO_UI[host]}/v4_6_release/services/system_io/Service/"
                f"fv_sr100_request.rails?service_recid={tid}"
            )
        ticket = Ticket(
            id=tid,
            title=str(raw.get("summary") or ""),
            description=description,
            status=ref_name(raw.get("status"), "name"),
            number=tid,
            company=ref_name(raw.get("company"), "name", "identifier"),
            contact=str(raw.get("contactName") or "") or ref_name(raw.get("contact"), "name"),
            priority=ref_name(raw.get("priority"), "name"),
            board=ref_name(raw.get("board"), "name"),
            created_at=when(
                raw.get("dateEntered") or lower_keys(raw.get("_info")).get("dateentered")
            ),
            url=url,
        )
        return TicketContext(
            ticket=ticket,
            notes=tuple(self._note(n) for n in notes),
            time_entries=tuple(self._time_entries(tid)),
            configurations=tuple(self._configurations(tid)),
        )

    def fetch_resolution(self, ticket_id: str) -> Resolution | None:
        """A closed ticket's Resolution notes (oldest first), who closed it and when."""
        tid = self._ticket_id(ticket_id)
        raw = self._get(f"/service/tickets/{tid}")
        if not raw.get("closedFlag"):
            return None
        notes = sorted(
            (n for n in self._list(f"/service/tickets/{tid}/notes") if n.get("resolutionFlag")),
            key=lambda n: (str(n.get("dateCreated") or ""), str(n.get("id")).zfill(20)),
        )
        text = "\n\n".join(str(n.get("text") or "").strip() for n in notes).strip()
        last = notes[-1] if notes else {}
        by = str(raw.get("closedBy") or "") or ref_name(last.get("member"), "name", "identifier")
        return Resolution(
            text=text,
            resolved_by=by,
            resolved_at=when(raw.get("closedDate") or last.get("dateCreated")),
        )

    @staticmethod
    def _note(n: dict[str, Any]) -> Note:
        author = ref_name(n.get("member"), "identifier", "name") or ref_name(
            n.get("contact"), "name"
        )
        return Note(
            id=str(n.get("id", "")),
            text=str(n.get("text") or ""),
            author=author or str(n.get("createdBy") or ""),
            created_at=when(n.get("dateCreated")),
            internal=bool(n.get("internalAnalysisFlag") or n.get("internalFlag")),
        )

    def _time_entries(self, tid: str) -> list[TimeEntry]:
        cond = f'chargeToType="ServiceTicket" AND chargeToId={tid}'
        entries = []
        for e in self._list("/time/entries", conditions=cond):
            start, end = when(e.get("timeStart")), when(e.get("timeEnd"))
            if isinstance(e.get("actualHours"), (int, float)):
                minutes = float(e["actualHours"]) * 60
            elif start and end:
                minutes = (end - start).total_seconds() / 60
            else:
                minutes = 0.0
            text = "\n".join(str(e[k]) for k in ("notes", "internalNotes") if e.get(k))
            member = ref_name(e.get("member"), "identifier", "name")
            entries.append(TimeEntry(member=member, minutes=minutes, started_at=start, notes=text))
        return entries

    def _configurations(self, tid: str) -> list[ConfigurationItem]:
        items = []
        for ref in self._list(f"/service/tickets/{tid}/configurations"):
            try:
                c = self._get(f"/company/configurations/{int(ref['id'])}")
            except (KeyError, TypeError, ValueError, NotFound):
                continue  # deleted since it was attached; the rest still helps
            fields = {"os": "osType", "ip": "ipAddress", "serial": "serialNumber"}
            details = {k: str(c[f]) for k, f in fields.items() if c.get(f)}
            name = str(c.get("name") or ref.get("deviceIdentifier") or "")
            items.append(
                ConfigurationItem(name=name, type=ref_name(c.get("type"), "name"), details=details)
            )
        return items
