"""Reading a ticket: the ticket, its actions (system ones left out) as notes and time, its assets.

In Halo everything done on a ticket is an action: a note, an e-mail, time taken. An action's
text becomes a note (private when hidden from the user) and its time a time entry. Halo's
timestamps carry no zone; they are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.base import ConfigurationItem, Note, Resolution, Ticket, TicketContext, TimeEntry
from adapters.halopsa.client import CLOSED_STATUS, HaloClient, rows_of
from adapters.halopsa.text import html_text
from adapters.values import int_or_none, when

# Asset fields worth a senior's eye, by the name Halo gives them in the asset list.
ASSET_DETAILS = {"inventory number": "inventory_number", "site": "site_name", "user": "username"}


def utc(value: Any) -> datetime | None:
    moment = when(value)
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def hours_to_minutes(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return 0.0
    return round(float(value) * 60, 2)


def action_text(action: dict[str, Any]) -> str:
    """The action's note (its HTML turned into text when Halo sent it), else its e-mail."""
    if action.get("note_html"):
        return html_text(str(action["note_html"]))
    if action.get("note"):
        return str(action["note"]).strip()
    if action.get("emailbody_html"):
        return html_text(str(action["emailbody_html"]))
    return str(action.get("emailbody") or "").strip()


class HaloContext(HaloClient):
    def fetch_context(self, ticket_id: str) -> TicketContext:
        tid = self._ticket_id(ticket_id)
        raw = self._object(f"/Tickets/{tid}", includedetails="true")
        html = str(raw.get("details_html") or "")
        ticket = Ticket(
            id=tid,
            title=str(raw.get("summary") or ""),
            description=html_text(html) if html else str(raw.get("details") or ""),
            status=str(raw.get("status_name") or raw.get("status_id") or ""),
            number=tid,
            company=str(raw.get("client_name") or ""),
            contact=str(raw.get("user_name") or raw.get("user_email") or ""),
            priority=str(raw.get("priority_name") or ""),
            board=str(raw.get("team") or raw.get("tickettype_name") or ""),
            created_at=utc(raw.get("dateoccurred") or raw.get("datecreated")),
            url=f"{self.site}/ticket?id={tid}",
        )
        actions = self._rows(
            "/Actions", "actions", ticket_id=tid, excludesys="true", includehtmlnote="true"
        )
        actions.sort(key=lambda a: (str(a.get("datetime") or ""), int_or_none(a.get("id")) or 0))
        notes, time_entries = [], []
        for a in actions:
            who, at = str(a.get("who") or ""), utc(a.get("datetime"))
            text = action_text(a)
            if text:
                internal = bool(a.get("hiddenfromuser"))
                notes.append(Note(str(a.get("id", "")), text, who, at, internal=internal))
            minutes = hours_to_minutes(a.get("timetaken"))
            if minutes:  # the action's text is its note already
                time_entries.append(TimeEntry(member=who, minutes=minutes, started_at=at))
        return TicketContext(
            ticket=ticket,
            notes=tuple(notes),
            time_entries=tuple(time_entries),
            configurations=tuple(self._assets(tid, raw)),
        )

    def fetch_resolution(self, ticket_id: str) -> Resolution | None:
        """A closed ticket's closure note: the text of the newest action that moved it to the
        closed status, who wrote it and when."""
        tid = self._ticket_id(ticket_id)
        raw = self._object(f"/Tickets/{tid}")
        if int_or_none(raw.get("status_id")) != CLOSED_STATUS:
            return None
        actions = self._rows(
            "/Actions", "actions", ticket_id=tid, excludesys="true", includehtmlnote="true"
        )
        closing = [a for a in actions if int_or_none(a.get("new_status")) == CLOSED_STATUS]
        closing.sort(key=lambda a: (str(a.get("datetime") or ""), int_or_none(a.get("id")) or 0))
        if not closing:
            return Resolution(text="", resolved_at=utc(raw.get("dateclosed")))
        last = closing[-1]
        return Resolution(
            text=action_text(last),
            resolved_by=str(last.get("who") or ""),
            resolved_at=utc(raw.get("dateclosed") or last.get("datetime")),
        )

    def _assets(self, tid: str, raw: dict[str, Any]) -> list[ConfigurationItem]:
        """The ticket's assets: on the ticket itself with includedetails, else from /Asset."""
        assets = raw.get("assets")
        if not isinstance(assets, list):
            assets = rows_of(self._json(self._call("GET", "/Asset", params={"ticket_id": tid})),
                             "assets")  # fmt: skip
        items = []
        for asset in (a for a in assets if isinstance(a, dict)):
            details = {k: str(asset[f]) for k, f in ASSET_DETAILS.items() if asset.get(f)}
            for extra in asset.get("fields") or []:  # the asset type's own fields
                if isinstance(extra, dict) and extra.get("name") and extra.get("value"):
                    details.setdefault(str(extra["name"]).lower(), str(extra["value"]))
            name = str(
                asset.get("key_field") or asset.get("inventory_number")
                or f"Asset {asset.get('id', '')}".strip()
            )  # fmt: skip
            kind = str(asset.get("assettype_name") or "")
            items.append(ConfigurationItem(name=name, type=kind, details=details))
        return items
