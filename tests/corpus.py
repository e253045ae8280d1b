"""The shared corpus of escalated tickets, as rows and as vendor-neutral TicketContexts.

`adapters/sandbox/tickets.jsonl` holds 40 realistic escalations (secrets, prompt injection,
markup, non-English text, very long tickets); the sandbox PSA seeds from the same file. Each
row carries `expected`: `secrets` that must never reach the model and `must_mention` facts a
handoff needs.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from adapters.base import ConfigurationItem, Note, Ticket, TicketContext, TimeEntry
from adapters.sandbox.store import CORPUS_PATH


@cache
def _rows(path: Path) -> tuple[str, ...]:
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def load_corpus() -> list[dict[str, Any]]:
    """Every corpus row, freshly parsed (callers may change what they get)."""
    return [json.loads(line) for line in _rows(CORPUS_PATH)]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def corpus_context(row: dict[str, Any]) -> TicketContext:
    """A corpus row as the TicketContext an adapter would fetch for it."""
    contact = row.get("contact") or {}
    if isinstance(contact, dict):
        name, email = contact.get("name", ""), contact.get("email", "")
        contact_text = f"{name} <{email}>" if name and email else name or email
    else:
        contact_text = str(contact)
    ticket = Ticket(
        id=str(row["id"]),
        number=str(row["id"]),
        title=row.get("summary", ""),
        description=row.get("description", ""),
        status=row.get("status", ""),
        company=row.get("company", ""),
        contact=contact_text,
        priority=row.get("priority", ""),
        board=row.get("board", ""),
        created_at=_time(row.get("created")),
    )
    notes = tuple(
        Note(
            id=str(note["id"]),
            text=note.get("text", ""),
            author=note.get("author", ""),
            created_at=_time(note.get("created")),
            internal=bool(note.get("internal", True)),
        )
        for note in row.get("notes", [])
    )
    time_entries = tuple(
        TimeEntry(
            member=entry.get("member", ""),
            minutes=float(entry.get("minutes") or 0),
            started_at=_time(entry.get("start")),
            notes=entry.get("notes") or "",
        )
        for entry in row.get("time_entries", [])
    )
    configurations = tuple(
        ConfigurationItem(
            name=item.get("name", ""),
            type=item.get("type", ""),
            details={
                key: str(value)
                for key, value in item.items()
                if key not in ("name", "type") and value not in (None, "")
            },
        )
        for item in row.get("configurations", [])
    )
    return TicketContext(
        ticket=ticket, notes=notes, time_entries=time_entries, configurations=configurations
    )
