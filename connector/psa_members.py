"""The PSA's people, as an admin makes them Baton members: the PSA's list with who is a member
already, the chosen ones added in one step with a role each, and each member's state in the PSA.
Through the adapter interface only; shared by the admin API, the console and the CLI.

A member's state in the PSA is stored, not worked out each time it is shown: every request and
sign-in needs it without a call to the PSA (slow, rate-limited, sometimes down), and so does the
members table. It is brought up to date whenever the PSA's list is read; a member the PSA has
deactivated loses their panel sessions there and then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from adapters.base import AdapterError, PSAAdapter, PSAMember
from connector import tenants as tenant_ops
from connector.db import session, utcnow
from connector.errors import APIError
from connector.models import Member, Tenant


@dataclass(frozen=True)
class Listed:
    """One of the PSA's people, and the Baton member they already are, if they are."""

    person: PSAMember
    member: Member | None


def _key(psa_id: str) -> str:
    return psa_id.strip().casefold()  # as sign-in matches them: some PSAs ignore case


def read(tenant: Tenant, psa: PSAAdapter) -> list[Listed]:
    """Everyone the PSA lists, deactivated people included, by name; the tenant's members'
    states are stored on the way."""
    try:
        people = psa.list_members()
    except AdapterError as exc:
        raise APIError(502, "psa_error", f"the PSA did not list its members: {exc}") from None
    members = list(session.scalars(select(Member).where(Member.tenant_id == tenant.id)))
    _store_states(members, people)
    by_key = {_key(m.psa_member_id): m for m in members}
    people = sorted(people, key=lambda p: (p.name.casefold(), p.psa_id))
    return [Listed(p, by_key.get(_key(p.psa_id))) for p in people]


def _store_states(members: list[Member], people: list[PSAMember]) -> None:
    listed = {_key(p.psa_id): p for p in people}
    now = utcnow()
    for member in members:
        person = listed.get(_key(member.psa_member_id))
        # "missing" locks nobody out: a typed id may be wrong, a PSA may hide some people.
        state = "missing" if person is None else "active" if person.active else "deactivated"
        if state == "deactivated" and not member.deactivated:
            member.end_sessions()
        member.psa_state, member.psa_checked_at = state, now
    session.commit()


def view(entry: Listed) -> dict[str, Any]:
    return {
        "psa_member_id": entry.person.psa_id,
        "name": entry.person.name,
        "email": entry.person.email,
        "active": entry.person.active,
        "member_id": entry.member.id if entry.member else None,
        "role": entry.member.role if entry.member else None,
    }


def list_views(tenant: Tenant, psa: PSAAdapter, include_inactive: bool) -> list[dict[str, Any]]:
    return [view(e) for e in read(tenant, psa) if include_inactive or e.person.active]


def add_from_psa(
    tenant: Tenant, psa: PSAAdapter, picks: Sequence[Mapping[str, str]]
) -> list[tuple[Member, str]]:
    """Add the chosen people, each with their role, all or none: a 422 names every pick that
    cannot be added. Name and email are the PSA's. Each member comes with its API token."""
    listed = {_key(entry.person.psa_id): entry for entry in read(tenant, psa)}
    problems: dict[str, dict[str, list[str]]] = {}
    chosen: list[tuple[PSAMember, str]] = []
    seen: set[str] = set()
    for index, pick in enumerate(picks):
        psa_id, key = pick["psa_member_id"], _key(pick["psa_member_id"])
        problem = _problem(psa_id, listed.get(key), key in seen)
        seen.add(key)
        if problem:
            problems[str(index)] = {"psa_member_id": [problem]}
        else:
            chosen.append((listed[key].person, pick["role"]))
    if problems:
        summary = "; ".join(
            f"members.{index}.psa_member_id: {fields['psa_member_id'][0]}"
            for index, fields in problems.items()
        )
        raise APIError(422, "invalid_request", summary, fields={"members": problems})
    now = utcnow()
    made = []
    for person, role in chosen:
        member, token = tenant_ops.new_member(
            tenant,
            psa_member_id=person.psa_id,
            name=person.name[:200],  # the columns' sizes; a PSA allows longer
            email=person.email[:320],
            role=role,
        )
        member.psa_state, member.psa_checked_at = "active", now
        made.append((member, token))
    tenant_ops.commit_members(tenant, "one of the chosen members")
    return made


def _problem(psa_id: str, entry: Listed | None, again: bool) -> str:
    if again:
        return f"{psa_id!r} is chosen twice"
    if entry is None:
        return f"{psa_id!r} is not one of the PSA's members"
    who = f"{entry.person.name} ({entry.person.psa_id})"
    if entry.member is not None:
        return f"{who} is already a member, as {entry.member.role}"
    if not entry.person.active:
        return f"{who} is deactivated in the PSA"
    return ""
