"""Writing to a ticket: the handoff as an action (found again by its marker), and status moves.

A note is an action with the instance's own private-note outcome, hidden from the end user and
never e-mailed (Baton tells people itself). A status move is Halo's upsert: POST /api/Tickets
with a one-element array naming the ticket's id.
"""

from __future__ import annotations

from html import escape
from typing import Any

from adapters.base import AdapterError, Visibility
from adapters.halopsa.client import first_record
from adapters.halopsa.context import action_text
from adapters.halopsa.lookups import HaloLookups
from adapters.values import int_or_none

# Used by name only when the instance lists no such outcome (Halo's own default names).
PRIVATE_NOTE_NAME = "Private Note"
PUBLIC_NOTE_NAME = "Note"


def note_html(title: str, text: str) -> str:
    """Plain text as Halo's note HTML: every character escaped, paragraphs and line breaks kept."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    html = "".join(
        "<p>" + "<br>".join(escape(line) for line in p.strip("\n").split("\n")) + "</p>"
        for p in paragraphs
    )
    return f"<p><strong>{escape(title)}</strong></p>{html}" if title else html


class HaloWriteback(HaloLookups):
    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        tid = self._ticket_id(ticket_id)
        internal = visibility == "internal"
        outcomes = self._outcomes()
        outcome_id = outcomes.private if internal else outcomes.public
        action: dict[str, Any] = {
            "ticket_id": int(tid),
            "note_html": note_html(title.strip(), text),
            "hiddenfromuser": internal,
            "sendemail": False,  # never e-mailed to the end user
            "timetaken": 0,  # no billable time
        }
        if outcome_id is not None:
            action["outcome_id"] = outcome_id
        else:
            action["outcome"] = PRIVATE_NOTE_NAME if internal else PUBLIC_NOTE_NAME
        try:
            saved = first_record(self._json(self._call("POST", "/Actions", json=[action])))
        except AdapterError as exc:
            if exc.status == 400:  # maybe an outcome deleted since: read them again next time
                self._forget("outcomes")
            raise
        if int_or_none(saved.get("id")) is None:
            raise AdapterError("halopsa saved the note but returned no action id")
        return str(saved["id"])

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        tid = self._ticket_id(ticket_id)
        for action in self._rows("/Actions", "actions", ticket_id=tid, includehtmlnote="true"):
            if marker in action_text(action) or marker in str(action.get("note") or ""):
                return str(action.get("id"))
        return None

    def set_status(self, ticket_id: str, status: str) -> None:
        tid = self._ticket_id(ticket_id)
        wanted = self._status_id(status)
        ticket = self._object(f"/Tickets/{tid}")
        if int_or_none(ticket.get("status_id")) == wanted:
            return  # already there; a save would only fire another webhook
        # An upsert naming the id: sending it twice leaves the same ticket.
        self._call(
            "POST", "/Tickets", json=[{"id": int(tid), "status_id": wanted}], idempotent=True
        )
