"""The statements escalations.record() sends, built once per dialect and run on the connection
(the commonest writes have no ORM machinery around them).

A ticket enters its escalated status in one statement (INSERT ... ON CONFLICT ... DO UPDATE
... WHERE): its row is created escalated, or flipped from not escalated, unless this delivery
was recorded before. Of two concurrent deliveries exactly one gets a row back; the other waits
on the row's lock and then finds it escalated.

On PostgreSQL a new escalation is then ONE statement: data-modifying CTEs enter the ticket,
insert the escalation, its pending handoff and the delivery's audit row, and, sent in
autocommit, that statement is its own transaction, so the row is committed in one round trip.
SQLite has no INSERT inside WITH: there the same statements run one after another in the
session's transaction.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector.models import Escalation, Handoff, Member, TicketState, WebhookDelivery

TICKETS = cast(Table, TicketState.__table__)
ESCALATIONS = cast(Table, Escalation.__table__)
HANDOFFS = cast(Table, Handoff.__table__)
AUDIT = cast(Table, WebhookDelivery.__table__)
MEMBERS = cast(Table, Member.__table__)

# The audit columns a caller gives; escalation_id is the new row's own.
AUDIT_COLUMNS = tuple(
    c.name for c in AUDIT.columns if c.name not in ("id", "escalation_id", "stream_id")
)


def _param(table: Table, column: str, name: str) -> Any:
    return bindparam(name, type_=table.c[column].type)


def _with_defaults(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` and every other column's Python-side default, as parameters: an INSERT inside
    a CTE is not given them at execution, as a statement of its own is."""
    defaults = {}
    for column in table.columns:
        default = column.default
        if column.name in values or column.primary_key or default is None:
            continue
        value = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
        if default.is_callable and not isinstance(value, list | dict):
            # A clock, say: its first value would be frozen into the statement built once.
            raise TypeError(f"{table.name}.{column.name}: give the CTE its value")
        defaults[column.name] = literal(value, column.type)
    return values | defaults


def _insert(dialect: str, table: Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _escalation_values() -> dict[str, Any]:
    """The new escalation's columns as parameters; its member is found inside the statement
    (b_member when the caller has it, else by the PSA member id b_actor)."""
    member_by_actor = (
        select(MEMBERS.c.id)
        .where(MEMBERS.c.tenant_id == bindparam("b_tenant"))
        .where(MEMBERS.c.psa_member_id == bindparam("b_actor"))
        .scalar_subquery()
    )
    return {
        "tenant_id": _param(ESCALATIONS, "tenant_id", "b_tenant"),
        "ticket_id": _param(ESCALATIONS, "ticket_id", "b_ticket"),
        "ticket_number": _param(ESCALATIONS, "ticket_number", "b_number"),
        "ticket_title": _param(ESCALATIONS, "ticket_title", "b_title"),
        "escalated_by": _param(ESCALATIONS, "escalated_by", "b_by"),
        "escalated_by_member_id": func.coalesce(
            bindparam("b_member", type_=Integer), member_by_actor
        ),
        "reason": _param(ESCALATIONS, "reason", "b_reason"),
        "delivery_key": _param(ESCALATIONS, "delivery_key", "b_key"),
        "source": _param(ESCALATIONS, "source", "b_source"),
        "received_at": _param(ESCALATIONS, "received_at", "b_at"),
    }


@lru_cache(maxsize=4)
def enter(dialect: str) -> Any:
    """Returns the ticket row's id when this delivery puts the ticket in its escalated spell."""
    insert = _insert(dialect, TICKETS)
    recorded_before = exists().where(
        ESCALATIONS.c.tenant_id == bindparam("b_tenant"),
        ESCALATIONS.c.delivery_key == bindparam("b_key"),
    )
    return (
        insert.values(
            tenant_id=bindparam("b_tenant"),
            ticket_id=bindparam("b_ticket"),
            status=bindparam("b_status"),
            escalated=True,
            updated_at=bindparam("b_at"),
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "ticket_id"],
            set_={
                "escalated": True,
                "status": insert.excluded.status,
                "updated_at": insert.excluded.updated_at,
            },
            where=TICKETS.c.escalated.is_(False) & ~recorded_before,
        )
        .returning(TICKETS.c.id)
    )


# A status outside the trigger ends an escalated spell; a ticket never escalated has no row.
LEAVE = (
    update(TICKETS)
    .where(
        TICKETS.c.tenant_id == bindparam("b_tenant"),
        TICKETS.c.ticket_id == bindparam("b_ticket"),
        TICKETS.c.escalated.is_(True),
    )
    .values(escalated=False, status=bindparam("b_status"), updated_at=bindparam("b_at"))
)


@lru_cache(maxsize=4)
def insert_escalation(dialect: str) -> Any:
    """ON CONFLICT DO NOTHING on (tenant, delivery key): no row back when recorded before."""
    return (
        _insert(dialect, ESCALATIONS)
        .values(**_escalation_values())
        .on_conflict_do_nothing(index_elements=["tenant_id", "delivery_key"])
        .returning(ESCALATIONS.c.id)
    )


INSERT_HANDOFF = HANDOFFS.insert().values(
    escalation_id=bindparam("b_escalation"), state="pending", started_at=bindparam("b_at")
)


@lru_cache(maxsize=2)
def new_escalation(audited: bool) -> Any:
    """PostgreSQL: enter, escalation, pending handoff and (audited) the audit row with the new
    escalation's id, in one statement. Returns the new id, or no row when the ticket did not
    enter its spell (already escalated, or this delivery recorded before)."""
    entered = enter("postgresql").cte("entered")
    values = _with_defaults(ESCALATIONS, _escalation_values())
    created = (
        postgresql.insert(ESCALATIONS)
        .from_select(list(values), select(*values.values()).select_from(entered))
        .on_conflict_do_nothing(index_elements=["tenant_id", "delivery_key"])
        .returning(ESCALATIONS.c.id, ESCALATIONS.c.received_at)
        .cte("created")
    )
    handoff = _with_defaults(
        HANDOFFS,
        {
            "escalation_id": created.c.id,
            "state": literal("pending"),
            "started_at": created.c.received_at,
        },
    )
    # Unreferenced by the final SELECT, so added explicitly: PostgreSQL runs every
    # data-modifying CTE to completion whether or not it is read.
    writes = [
        HANDOFFS.insert()
        .from_select(list(handoff), select(*handoff.values()).select_from(created))
        .cte("handoff")
    ]
    if audited:
        audit = _with_defaults(
            AUDIT,
            {c: _param(AUDIT, c, f"a_{c}") for c in AUDIT_COLUMNS}
            | {"escalation_id": created.c.id},
        )
        writes.append(
            AUDIT.insert()
            .from_select(
                list(audit),
                select(*audit.values()).select_from(created),
            )
            .cte("audit")
        )
    return select(created.c.id).add_cte(*writes)
