"""Turning Autotask's numbers into words: picklist labels and the names of people and companies."""

from __future__ import annotations

from typing import Any

from adapters.autotask.client import AutotaskClient
from adapters.base import NotFound, PermissionDenied
from adapters.values import int_or_none

MAX_NAME_LOOKUPS = 40  # resources/contacts resolved to names per adapter; the rest keep their ids


class AutotaskLookups(AutotaskClient):
    def _entity_fields(self, entity: str) -> list[dict[str, Any]]:
        if entity not in self._fields:
            body = self._object(self._call("GET", f"{entity}/entityInformation/fields"))
            fields = body.get("fields")
            self._fields[entity] = [f for f in fields or [] if isinstance(f, dict)]
        return self._fields[entity]

    def _picklist(self, entity: str, field: str) -> list[dict[str, Any]]:
        """The picklist values of one field, as Autotask orders them."""
        for f in self._entity_fields(entity):
            if str(f.get("name") or "").lower() == field.lower():
                values = [v for v in f.get("picklistValues") or [] if isinstance(v, dict)]
                return sorted(values, key=lambda v: int_or_none(v.get("sortOrder")) or 0)
        return []

    def _labels(self, entity: str, field: str) -> dict[str, str]:
        """value -> label, or nothing when the field information is out of reach."""
        try:
            return {
                str(v.get("value")): str(v.get("label") or "")
                for v in self._picklist(entity, field)
            }
        except (PermissionDenied, NotFound):
            return {}

    def _name(self, entity: str, record_id: Any) -> str:
        """A resource's, contact's or company's name, or its id when that is not cheap."""
        rid = int_or_none(record_id)
        if rid is None:
            return ""
        key = (entity, rid)
        if key in self._names:
            return self._names[key]
        if len(self._names) >= MAX_NAME_LOOKUPS:
            return str(rid)
        try:
            item = self._item(f"{entity}/{rid}") or {}
        except (PermissionDenied, NotFound):
            item = {}
        if entity == "Companies":
            name = str(item.get("companyName") or "")
        else:
            first, last = item.get("firstName") or "", item.get("lastName") or ""
            name = f"{first} {last}".strip()
        self._names[key] = name or str(rid)
        return self._names[key]
