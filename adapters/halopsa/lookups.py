"""What Baton looks up once and keeps: the instance's note outcomes, its statuses, the API agent.

Outcomes and statuses are per instance (ids differ between instances) and change rarely; each
is read once an hour at most, and at once again when a write says the kept one is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.base import NotFound
from adapters.halopsa.client import HaloClient, rows_of
from adapters.values import int_or_none, squash

KEEP_SECONDS = 3600.0
# The outcome names Halo ships for an agent-only note and for one the end user sees.
PRIVATE_NOTE = "privatenote"
PUBLIC_NOTES = ("publicnote", "note", "addnote")


@dataclass(frozen=True)
class Outcomes:
    private: int | None  # the instance's own private-note outcome
    public: int | None


@dataclass(frozen=True)
class Status:
    id: int
    name: str


def _named(outcome: dict[str, Any]) -> set[str]:
    return {squash(str(outcome.get(k) or "")) for k in ("outcome", "buttonname")}


def pick_outcomes(rows: list[dict[str, Any]]) -> Outcomes:
    """The private note by name, else an agent-only outcome that is a note; the public one by
    name among those not hidden from the user."""
    usable = [o for o in rows if int_or_none(o.get("id")) is not None and not o.get("hidden")]
    private = next((o for o in usable if PRIVATE_NOTE in _named(o)), None) or next(
        (o for o in usable if o.get("hidefromuser") and any("note" in n for n in _named(o))),
        None,
    )
    public = next(
        (o for name in PUBLIC_NOTES for o in usable
         if name in _named(o) and not o.get("hidefromuser")),
        None,
    )  # fmt: skip
    return Outcomes(
        private=int_or_none(private.get("id")) if private else None,
        public=int_or_none(public.get("id")) if public else None,
    )


class HaloLookups(HaloClient):
    def _outcomes(self) -> Outcomes:
        return self._kept(
            "outcomes", KEEP_SECONDS, lambda: pick_outcomes(self._rows("/Outcome", "outcomes"))
        )

    def _statuses(self, *, fresh: bool = False) -> list[Status]:
        if fresh:
            self._forget("statuses")
        return self._kept("statuses", KEEP_SECONDS, self._read_statuses)

    def _read_statuses(self) -> list[Status]:
        """GET /api/Status: a plain array on a live instance, {"statuses": [...]} on older ones."""
        body = self._json(self._call("GET", "/Status"))
        found = []
        for row in rows_of(body, "statuses"):
            status_id = int_or_none(row.get("id"))
            if status_id is not None:
                found.append(Status(status_id, str(row.get("name") or row.get("shortname") or "")))
        return found

    def _status_id(self, status: str) -> int:
        """A status as the tenant stores it (an id) or as people name it."""
        wanted = status.strip()
        if int_or_none(wanted) is not None:
            return int(wanted)
        for fresh in (False, True):  # an admin may have just added it
            for known in self._statuses(fresh=fresh):
                if known.name.strip().casefold() == wanted.casefold():
                    return known.id
        raise NotFound(f"Halo has no ticket status {status!r}")

    def _api_agent_id(self, *, patient: bool = True) -> int | None:
        """The agent the token acts as (the application's "agent to log in as")."""
        return self._kept(
            "api_agent",
            KEEP_SECONDS,
            lambda: int_or_none(self._object("/Agent/me", patient=patient).get("id")),
        )
