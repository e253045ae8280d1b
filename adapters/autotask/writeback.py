"""Writing to a ticket: the handoff note (found again by its marker) and status moves."""

from __future__ import annotations

from adapters.autotask.client import eq
from adapters.autotask.context import PUBLISH_ALL, PUBLISH_INTERNAL
from adapters.autotask.lookups import AutotaskLookups
from adapters.base import AdapterError, NotFound, Visibility
from adapters.values import int_or_none, lower_keys, numeric

NOTE_MAX_CHARS = 32000
NOTE_TAIL_CHARS = 400  # kept when a note is shortened: the marker Baton finds notes by is last
TITLE_MAX_CHARS = 250
DEFAULT_NOTE_TITLE = "Baton escalation handoff"
NOTE_TYPE_SUMMARY = 1


def _shorten(text: str, limit: int = NOTE_MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    gap = "\n[... shortened to fit Autotask's note size ...]\n"
    return text[: limit - NOTE_TAIL_CHARS - len(gap)] + gap + text[-NOTE_TAIL_CHARS:]


class AutotaskWriteback(AutotaskLookups):
    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        tid = self._ticket_id(ticket_id)
        body = {
            "ticketID": int(tid),
            "title": (title.strip() or DEFAULT_NOTE_TITLE)[:TITLE_MAX_CHARS],
            "description": _shorten(text),  # plain text: Autotask's API cannot write rich text
            "noteType": NOTE_TYPE_SUMMARY,
            "publish": PUBLISH_INTERNAL if visibility == "internal" else PUBLISH_ALL,
        }
        created = self._object(self._call("POST", f"Tickets/{tid}/Notes", json=body))
        item_id = lower_keys(created).get("itemid")
        if item_id is None:
            raise AdapterError("autotask created a note but returned no itemId")
        return str(item_id)

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        tid = self._ticket_id(ticket_id)
        filters = [
            eq("ticketID", int(tid)),
            {"op": "contains", "field": "description", "value": marker},
        ]
        for note in self._query("TicketNotes", filters):
            if marker in str(note.get("description") or ""):  # the server filter only narrows
                return str(note.get("id"))
        return None

    def _status_id(self, status: str) -> int:
        wanted = status.strip()
        values = self._picklist("Tickets", "status")
        if numeric(wanted):
            return int(wanted)
        for v in values:
            if str(v.get("label") or "").strip().lower() == wanted.lower():
                value = int_or_none(v.get("value"))
                if value is not None:
                    return value
        raise NotFound(f"Autotask has no ticket status {status!r}")

    def set_status(self, ticket_id: str, status: str) -> None:
        tid = self._ticket_id(ticket_id)
        wanted = self._status_id(status)
        ticket = self._item(f"Tickets/{tid}")
        if ticket is None:
            raise NotFound(f"autotask has no ticket {tid}")
        if int_or_none(ticket.get("status")) == wanted:
            return  # already there; a PATCH would only fire another webhook
        self._call("PATCH", "Tickets", json={"id": int(tid), "status": wanted})
