"""Writing to a ticket: the handoff note (found again by its marker) and status moves."""

from __future__ import annotations

from adapters.base import AdapterError, NotFound, Visibility
from adapters.connectwise.client import ConnectWiseClient, condition_string, ref_name
from adapters.values import numeric


class ConnectWiseWriteback(ConnectWiseClient):
    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        tid = self._ticket_id(ticket_id)
        internal = visibility == "internal"
        body = {
            "text": f"{title}\n\n{text}" if title else text,  # ConnectWise notes have no title
            "detailDescriptionFlag": not internal,
            "internalAnalysisFlag": internal,
            "resolutionFlag": False,
            "processNotifications": False,  # Baton emails people itself
        }
        created = self._json(self._call("POST", f"/service/tickets/{tid}/notes", json=body))
        if not isinstance(created, dict) or created.get("id") is None:
            raise AdapterError("connectwise created a note but returned no id")
        return str(created["id"])

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        tid = self._ticket_id(ticket_id)
        cond = f"text contains {condition_string(marker)}"
        for note in self._list(f"/service/tickets/{tid}/notes", conditions=cond):
            # The server filter only narrows (LIKE may read "[...]" as a pattern): check here.
            if marker in str(note.get("text") or ""):
                return str(note.get("id"))
        return None

    def set_status(self, ticket_id: str, status: str) -> None:
        tid = self._ticket_id(ticket_id)
        ticket = self._get(f"/service/tickets/{tid}")
        if ref_name(ticket.get("status"), "name").lower() == status.strip().lower():
            return  # already there; a PATCH would only fire another callback
        board = ticket.get("board")
        if not isinstance(board, dict) or not board.get("id"):
            raise AdapterError(f"connectwise ticket {tid} has no board")
        path = f"/service/boards/{int(board['id'])}/statuses"
        found = self._list(path, conditions=f"name={condition_string(status.strip())}")
        if not found and numeric(status.strip()):
            found = self._list(path, conditions=f"id={int(status)}")
        if not found:
            raise NotFound(f"board {board.get('name') or board['id']} has no status {status!r}")
        patch = [{"op": "replace", "path": "status", "value": {"id": found[0]["id"]}}]
        self._call("PATCH", f"/service/tickets/{tid}", json=patch)
