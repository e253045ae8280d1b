"""The sandbox PSA's state: tickets, notes, time, configurations and members.

Vendor-neutral records in memory, seeded from the escalation corpus. Every ticket starts
"In Progress" so that escalating one is an action. Each vendor's dialect (its folder's
sandbox/) renders these records in its vendor's JSON, keeps its own state beside the store
(keys, registered webhooks), and subscribes to changes to fire that vendor's webhooks.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EMAIL_DOMAIN = "baton-sandbox.example.com"
API_MEMBER = "baton-api"
STATUSES = ("New", "In Progress", "Escalated", "Waiting on Client", "Resolved")
INITIAL_STATUS = "In Progress"
ESCALATED_STATUS = "Escalated"
RESOLVED_STATUS = "Resolved"
# A status only some boards have, as real ConnectWise boards each keep their own list: a
# trigger naming it is held by one board, so Baton's callbacks can be scoped to that board.
BOARD_STATUSES = {"security": ("Incident Response",)}

# Names for the corpus technicians; any other identifier gets a name made from itself.
KNOWN_MEMBERS = {
    "aokafor": ("Ada", "Okafor"),
    "bwalsh": ("Brian", "Walsh"),
    "cdunn": ("Chris", "Dunn"),
    "jreyes": ("Jordan", "Reyes"),
    "kpatel": ("Kiran", "Patel"),
    "lfischer": ("Lena", "Fischer"),
    "mlopez": ("Maria", "Lopez"),
    "tnguyen": ("Tam", "Nguyen"),
    "nburke": ("Nora", "Burke"),
    "sseniorr": ("Sam", "Senior"),
    "admin": ("Sandbox", "Admin"),
    API_MEMBER: ("Baton", "API"),
}
# A technician who has left: still in the PSA (their notes remain), no longer active.
FORMER_MEMBERS = {"dformer": ("Dana", "Former")}

Listener = Callable[[str, int, str], None]  # (kind "status" | "note", ticket id, actor)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plus_minutes(start: str, minutes: int) -> str:
    moment = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ") + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class NotInSandbox(LookupError):
    """No record with that id."""


@dataclass(frozen=True)
class Member:
    id: int
    identifier: str
    first_name: str
    last_name: str
    email: str
    active: bool = True

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class Board:
    id: int
    name: str
    statuses: tuple[tuple[int, str], ...]  # (id, name), in workflow order

    def status_id(self, name: str) -> int | None:
        return next((sid for sid, sname in self.statuses if sname.lower() == name.lower()), None)

    def status_name(self, status_id: int) -> str | None:
        return next((sname for sid, sname in self.statuses if sid == status_id), None)


@dataclass(frozen=True)
class Ticket:
    id: int
    summary: str
    board: str
    status: str
    priority: str
    company: str
    contact_name: str
    contact_email: str
    type: str
    subtype: str
    created: str
    updated: str
    updated_by: str
    escalated_by: str = ""  # the corpus's scenario: who escalates, and why
    escalation_reason: str = ""


@dataclass(frozen=True)
class Note:
    id: int
    ticket_id: int
    text: str
    author: str  # a member identifier, or a contact's email address
    created: str
    detail: bool = False  # Discussion (client-visible)
    internal: bool = False  # Internal analysis
    resolution: bool = False


@dataclass(frozen=True)
class TimeEntry:
    id: int
    ticket_id: int
    member: str
    start: str
    minutes: int
    notes: str


@dataclass(frozen=True)
class Configuration:
    id: int
    company: str
    name: str
    type: str
    os: str = ""
    ip: str = ""
    serial: str = ""


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a webhook; status None when the connection failed."""

    url: str
    status: int | None
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    error: str = ""


# The escalation corpus: 40 realistic escalated tickets written for Baton, shipped with it.
CORPUS_PATH = Path(__file__).with_name("tickets.jsonl")


def _load_records(corpus: str | Path | Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if corpus is None:
        corpus = CORPUS_PATH
    if isinstance(corpus, str | Path):
        with open(corpus, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    return list(corpus)


class SandboxStore:
    """Thread-safe in-memory PSA. Methods return immutable snapshots."""

    def __init__(self, corpus: str | Path | Iterable[dict[str, Any]] | None = None):
        self.api_member = API_MEMBER  # who the dialects' API credentials act as
        self.deliveries: list[Delivery] = []

        self._lock = threading.RLock()
        self._delivered = threading.Condition(self._lock)
        self._listeners: dict[str, Listener] = {}
        self._members: dict[str, Member] = {}
        self._boards: dict[str, Board] = {}
        self._tickets: dict[int, Ticket] = {}
        self._notes: dict[int, list[Note]] = {}
        self._time: list[TimeEntry] = []
        self._configs: dict[int, Configuration] = {}
        self._ticket_configs: dict[int, list[int]] = {}
        self._ids: dict[str, dict[str, int]] = {"company": {}, "contact": {}, "priority": {}}
        self._seed(_load_records(corpus))

    # --- seeding ---------------------------------------------------------------------------

    def _seed(self, records: list[dict[str, Any]]) -> None:
        top_note = max((n["id"] for r in records for n in r.get("notes", [])), default=1000)
        self._note_ids = itertools.count(top_note + 1)
        self._time_ids = itertools.count(50001)
        self._config_ids = itertools.count(3001)
        for identifier in sorted({r["escalated_by"] for r in records if r.get("escalated_by")}):
            self._add_member(identifier)
        for identifier in ("sseniorr", "admin", API_MEMBER):
            self._add_member(identifier)
        for name in sorted({r["board"] for r in records}):
            board_id = len(self._boards) + 1
            names = (*STATUSES, *BOARD_STATUSES.get(name.lower(), ()))
            statuses = tuple((board_id * 100 + i, s) for i, s in enumerate(names, start=1))
            self._boards[name.lower()] = Board(board_id, name, statuses)
        for kind, key, start in (("company", "company", 250), ("priority", "priority", 1)):
            for name in sorted({r.get(key, "") for r in records}):
                self.stable_id(kind, name, start)
        for record in records:
            self._seed_ticket(record)
        for identifier in FORMER_MEMBERS:
            self._add_member(identifier, active=False)

    def _seed_ticket(self, r: dict[str, Any]) -> None:
        tid = int(r["id"])
        notes = r.get("notes", [])
        contact = r.get("contact") or {}
        description = Note(
            next(self._note_ids), tid, r.get("description", ""),
            contact.get("email") or contact.get("name", ""), r["created"], detail=True,
        )  # fmt: skip
        self._notes[tid] = [description] + [
            Note(n["id"], tid, n["text"], n["author"], n["created"],
                 detail=not n.get("internal", True), internal=n.get("internal", True))
            for n in notes
        ]  # fmt: skip
        for author in {n["author"] for n in notes if "@" not in n["author"]}:
            self._add_member(author)
        for t in r.get("time_entries", []):
            self._add_member(t["member"])
            self._time.append(
                TimeEntry(next(self._time_ids), tid, t["member"], t["start"], t["minutes"],
                          t.get("notes", ""))
            )  # fmt: skip
        self._ticket_configs[tid] = []
        for c in r.get("configurations", []):
            cid = next(self._config_ids)
            self._configs[cid] = Configuration(
                cid, r["company"], c["name"], c.get("type", ""),
                c.get("os") or "", c.get("ip") or "", c.get("serial") or "",
            )  # fmt: skip
            self._ticket_configs[tid].append(cid)
        for email in [contact.get("email", "")] + [
            n["author"] for n in notes if "@" in n["author"]
        ]:
            self.stable_id("contact", email, 1000)
        last = self._notes[tid][-1]
        self._tickets[tid] = Ticket(
            id=tid, summary=r["summary"], board=r["board"], status=INITIAL_STATUS,
            priority=r.get("priority", ""), company=r.get("company", ""),
            contact_name=contact.get("name", ""), contact_email=contact.get("email", ""),
            type=r.get("type", ""), subtype=r.get("subtype", ""), created=r["created"],
            updated=max(last.created, r["created"]), updated_by=r.get("escalated_by") or "admin",
            escalated_by=r.get("escalated_by", ""),
            escalation_reason=r.get("escalation_reason", ""),
        )  # fmt: skip

    def _add_member(self, identifier: str, *, active: bool = True) -> None:
        if identifier.lower() in self._members:
            return
        first, last = {**KNOWN_MEMBERS, **FORMER_MEMBERS}.get(
            identifier, (identifier[:1].upper(), identifier[1:].title())
        )
        self.add_member(identifier, first, last, active=active)

    def stable_id(self, kind: str, key: str, start: int) -> int:
        """A stable numeric id for a record the corpus names only (company, contact, priority)."""
        with self._lock:
            table = self._ids[kind]
            return table.setdefault(key.lower(), start + len(table))

    # --- reading ---------------------------------------------------------------------------

    def member(self, identifier: str) -> Member | None:
        with self._lock:
            return self._members.get(identifier.lower())

    def members(self) -> list[Member]:
        """Everyone in the PSA, the former and the API member included, by id."""
        with self._lock:
            return sorted(self._members.values(), key=lambda m: m.id)

    def member_by_id(self, member_id: int) -> Member | None:
        with self._lock:
            return next((m for m in self._members.values() if m.id == member_id), None)

    def boards(self) -> list[Board]:
        with self._lock:
            return sorted(self._boards.values(), key=lambda b: b.id)

    def board(self, key: str | int) -> Board:
        with self._lock:
            wanted = key.lower() if isinstance(key, str) else key
            found = next(
                (b for b in self._boards.values() if wanted in (b.id, b.name.lower())), None
            )
        if found is None:
            raise NotInSandbox(f"board {key}")
        return found

    def tickets(self) -> list[Ticket]:
        with self._lock:
            return sorted(self._tickets.values(), key=lambda t: t.id)

    def ticket(self, ticket_id: int) -> Ticket:
        with self._lock:
            if ticket_id not in self._tickets:
                raise NotInSandbox(f"ticket {ticket_id}")
            return self._tickets[ticket_id]

    def notes(self, ticket_id: int) -> list[Note]:
        with self._lock:
            self.ticket(ticket_id)
            return list(self._notes[ticket_id])

    def time_entries(self, ticket_id: int | None = None) -> list[TimeEntry]:
        with self._lock:
            return [t for t in self._time if ticket_id in (None, t.ticket_id)]

    def configurations(self, ticket_id: int) -> list[Configuration]:
        with self._lock:
            self.ticket(ticket_id)
            return [self._configs[cid] for cid in self._ticket_configs.get(ticket_id, [])]

    def configuration(self, config_id: int) -> Configuration:
        with self._lock:
            if config_id not in self._configs:
                raise NotInSandbox(f"configuration {config_id}")
            return self._configs[config_id]

    # --- changing (each change tells the listeners after the lock is released) --------------

    def add_note(
        self,
        ticket_id: int,
        text: str,
        *,
        author: str,
        detail: bool = False,
        internal: bool = False,
        resolution: bool = False,
    ) -> Note:
        with self._lock:
            note = self._add_note(ticket_id, text, author, detail, internal, resolution)
        self._emit("note", ticket_id, author)
        return note

    def _add_note(self, ticket_id: int, text: str, author: str, *flags: bool) -> Note:
        ticket = self.ticket(ticket_id)
        note = Note(next(self._note_ids), ticket_id, text, author, now_iso(), *flags)
        self._notes[ticket_id].append(note)
        self._tickets[ticket_id] = replace(ticket, updated=note.created, updated_by=author)
        return note

    def set_status(self, ticket_id: int, status: str, *, actor: str) -> Ticket:
        """Move the ticket to a status of its board; tells listeners only when it changed."""
        with self._lock:
            before = self.ticket(ticket_id)
            after = self._set_status(before, status, actor)
        if after.status != before.status:
            self._emit("status", ticket_id, actor)
        return after

    def _set_status(self, ticket: Ticket, status: str, actor: str) -> Ticket:
        board = self.board(ticket.board)
        name = board.status_name(board.status_id(status) or 0)
        if name is None:
            raise ValueError(f"{status!r} is not a status of board {ticket.board!r}")
        if name != ticket.status:
            ticket = replace(ticket, status=name, updated=now_iso(), updated_by=actor)
            self._tickets[ticket.id] = ticket
        return ticket

    def escalate(self, ticket_id: int, member: str = "kpatel", reason: str | None = None) -> Ticket:
        """What a technician does in the PSA: one save that adds the reason and escalates."""
        with self._lock:
            before = self.ticket(ticket_id)
            if reason:
                self._add_note(ticket_id, reason, member, False, True, False)
            after = self._set_status(self.ticket(ticket_id), ESCALATED_STATUS, member)
        if reason or after.status != before.status:
            self._emit("status", ticket_id, member)
        return after

    def add_ticket(self, record: dict[str, Any]) -> Ticket:
        """A new ticket, written like a line of the corpus (its notes, time and items too)."""
        with self._lock:
            if int(record["id"]) in self._tickets:
                raise ValueError(f"ticket {record['id']} exists")
            for kind, key, start in (("company", "company", 250), ("priority", "priority", 1)):
                self.stable_id(kind, record.get(key, ""), start)
            if record.get("escalated_by"):
                self._add_member(record["escalated_by"])
            self._seed_ticket(record)
            return self._tickets[int(record["id"])]

    def resolve(self, ticket_id: int, resolution: str, *, member: str = "sseniorr") -> Ticket:
        """What a senior does when the work is done: one save that writes the resolution note
        and closes the ticket (each dialect shows both in its vendor's fields)."""
        with self._lock:
            before = self.ticket(ticket_id)
            self._add_note(ticket_id, resolution, member, False, False, True)
            after = self._set_status(self.ticket(ticket_id), RESOLVED_STATUS, member)
        if after.status != before.status:
            self._emit("status", ticket_id, member)
        return after

    def resolution(self, ticket_id: int) -> Note | None:
        """The newest resolution note of the ticket, if any."""
        return next((n for n in reversed(self.notes(ticket_id)) if n.resolution), None)

    def add_member(
        self, identifier: str, first_name: str, last_name: str, *, active: bool = True
    ) -> Member:
        """A new person in the PSA (its id comes next; the email is made from the identifier)."""
        with self._lock:
            if identifier.lower() in self._members:
                raise ValueError(f"{identifier!r} is already a member")
            email = f"{identifier}@{EMAIL_DOMAIN}"
            member = Member(
                100 + len(self._members), identifier, first_name, last_name, email, active
            )
            self._members[identifier.lower()] = member
            return member

    def set_member_active(self, identifier: str, active: bool) -> Member:
        """What an admin does when someone leaves (False), or comes back (True)."""
        with self._lock:
            member = self._members.get(identifier.lower())
            if member is None:
                raise NotInSandbox(f"no member {identifier!r}")
            self._members[identifier.lower()] = replace(member, active=active)
            return self._members[identifier.lower()]

    # --- listeners and deliveries -------------------------------------------------------------

    def set_listener(self, name: str, listener: Listener) -> None:
        """One listener per dialect name: re-creating a dialect's app replaces its listener."""
        with self._lock:
            self._listeners[name] = listener

    def _emit(self, kind: str, ticket_id: int, actor: str) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            listener(kind, ticket_id, actor)

    def record_delivery(self, delivery: Delivery) -> None:
        with self._delivered:
            self.deliveries.append(delivery)
            self._delivered.notify_all()

    def wait_for_deliveries(self, n: int, timeout: float = 5.0) -> list[Delivery]:
        """Wait until `n` delivery attempts are recorded; returns all there are (maybe fewer)."""
        with self._delivered:
            self._delivered.wait_for(lambda: len(self.deliveries) >= n, timeout)
            return list(self.deliveries)
