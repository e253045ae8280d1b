"""A tenant's never-send terms and patterns: stored encrypted, checked, compiled for redaction.

Shared by the admin API and the admin console. A term is write-only (it may be a secret: only
its label and length are shown); a pattern is shown, so an admin can read and fix it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector.db import session
from connector.errors import APIError
from connector.models import RedactionPattern, Tenant
from connector.redaction.tenant import (
    MAX_ENTRIES,
    RuleError,
    TenantRules,
    check_pattern,
    check_term,
    compile_rules,
)
from connector.tenants import secret_box

KINDS = ("term", "pattern")


def _value(row: RedactionPattern) -> str:
    return secret_box().decrypt_json(row.value_encrypted)["value"]


def _rows(tenant: Tenant) -> list[RedactionPattern]:
    query = select(RedactionPattern).where(RedactionPattern.tenant_id == tenant.id)
    return list(session.scalars(query.order_by(RedactionPattern.id)))


def _split(values: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    terms = [v for kind, v in values if kind == "term"]
    return terms, [v for kind, v in values if kind == "pattern"]


def rules_for(tenant: Tenant) -> TenantRules | None:
    """The tenant's compiled rules for redact(), or None when it has none."""
    return compile_rules(*_split([(row.kind, _value(row)) for row in _rows(tenant)]))


def view(row: RedactionPattern) -> dict[str, Any]:
    value = _value(row)
    return {
        "id": row.id,
        "kind": row.kind,
        "label": row.label,
        "pattern": value if row.kind == "pattern" else None,
        "length": len(value),
        "created_at": row.created_at,
    }


def list_views(tenant: Tenant) -> list[dict[str, Any]]:
    return [view(row) for row in _rows(tenant)]


def add(tenant: Tenant, kind: str, value: str, label: str = "") -> RedactionPattern:
    """Check, then store one term or pattern; 422 with the reason when it is refused."""
    value = value.strip() if kind == "term" else value
    try:
        check_term(value) if kind == "term" else check_pattern(value)
        existing = [(row.kind, _value(row)) for row in _rows(tenant)]
        if len(existing) >= MAX_ENTRIES:
            raise RuleError(f"a tenant has at most {MAX_ENTRIES} terms and patterns")
        compile_rules(*_split([*existing, (kind, value)]))
    except RuleError as exc:
        raise APIError(
            422, "invalid_request", f"value: {exc}", fields={"value": [str(exc)]}
        ) from None
    row = RedactionPattern(
        tenant_id=tenant.id,
        kind=kind,
        value_encrypted=secret_box().encrypt_json({"value": value}),
        label=label.strip(),
    )
    session.add(row)
    session.commit()
    return row


def remove(tenant: Tenant, pattern_id: int) -> None:
    row = session.get(RedactionPattern, pattern_id)
    if row is None or row.tenant_id != tenant.id:
        raise APIError(404, "unknown_pattern", f"no redaction pattern {pattern_id}")
    session.delete(row)
    session.commit()
