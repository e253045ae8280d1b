"""Setting a tenant up: statuses, members, and a connection test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.autotask.client import ZONE_DISCOVERY_URL
from adapters.autotask.errors import CREDENTIALS_HELP, INTEGRATION_CODE_HELP, UNKNOWN_USER
from adapters.autotask.lookups import AutotaskLookups
from adapters.base import (
    AdapterError,
    AuthenticationFailed,
    ConnectionCheck,
    PermissionDenied,
    PSAMember,
    StatusOption,
    Unavailable,
)
from adapters.values import int_or_none, lower_keys, origin

TICKETS_HELP = (
    "the API user's security level cannot read Tickets: give it a security level "
    "with ticket permissions (e.g. a copy of API User (system))"
)


class AutotaskSetup(AutotaskLookups):
    def list_statuses(self) -> list[StatusOption]:
        return [
            StatusOption(id=str(v.get("value")), name=str(v.get("label") or ""))
            for v in self._picklist("Tickets", "status")
            if v.get("isActive", True) and v.get("value") is not None
        ]

    def list_members(self) -> list[PSAMember]:
        """Every resource but API users, by the resource id webhooks name as PersonID."""
        licenses = self._labels("Resources", "licenseType")
        members = []
        for r in self._query("Resources", [{"op": "gte", "field": "id", "value": 0}]):
            resource_id = int_or_none(r.get("id"))
            if resource_id is None or self._is_api_user(r, licenses):
                continue
            name = " ".join(str(r[k]).strip() for k in ("firstName", "lastName") if r.get(k))
            members.append(
                PSAMember(
                    psa_id=str(resource_id),
                    name=name or str(r.get("userName") or resource_id),
                    email=str(r.get("email") or ""),
                    active=bool(r.get("isActive", True)),
                )
            )
        return members

    def _is_api_user(self, resource: dict[str, Any], licenses: dict[str, str]) -> bool:
        """Baton's own API user, or any other whose license is an API license (not a person)."""
        license_label = licenses.get(str(resource.get("licenseType")), "")
        names = {str(resource.get(k) or "").lower() for k in ("userName", "email")}
        return license_label.lower().startswith("api") or self.username.lower() in names

    def test_connection(self) -> ConnectionCheck:
        """API user (zone), credentials, ticket access: stop at the first thing that fails."""
        checks: list[tuple[str, bool, str]] = []
        host = origin(self.configured_zone or ZONE_DISCOVERY_URL)[1]

        def unreachable(exc: AdapterError) -> bool:
            return isinstance(exc, Unavailable) and exc.status is None

        try:
            zone = self._zone(refresh=True)
        except AdapterError as exc:
            if unreachable(exc):
                checks.append(("Autotask", False, f"cannot reach {host}: check the network"))
            elif isinstance(exc, AuthenticationFailed):
                checks.append(("API user", False, UNKNOWN_USER.format(user=self.username)))
            else:
                checks.append(("API user", False, str(exc)))
            return ConnectionCheck(ok=False, checks=tuple(checks))
        host = origin(zone.url)[1]
        if self.configured_zone:
            checks.append(("API user", True, f"zone discovery skipped: Zone URL is {host}"))
        else:
            checks.append(("API user", True, f"Autotask knows {self.username} (zone {host})"))

        steps: list[tuple[str, Callable[[], str], str]] = [
            ("Credentials", self._threshold_words, CREDENTIALS_HELP),
            ("Ticket access", self._ticket_count_words, TICKETS_HELP),
        ]
        for what, probe, refused in steps:
            try:
                passed = probe()
            except AdapterError as exc:
                if unreachable(exc):
                    checks.append(("Autotask", False, f"cannot reach {host}: check Zone URL"))
                elif isinstance(exc, AuthenticationFailed) and exc.status != 401:
                    checks.append(("Integration code", False, INTEGRATION_CODE_HELP))
                elif isinstance(exc, AuthenticationFailed):
                    checks.append((what, False, CREDENTIALS_HELP))
                elif isinstance(exc, PermissionDenied):
                    checks.append((what, False, refused if what == "Ticket access" else str(exc)))
                else:
                    checks.append((what, False, str(exc)))
                break
            checks.append((what, True, passed))
        return ConnectionCheck(ok=all(c[1] for c in checks), checks=tuple(checks))

    def _threshold_words(self) -> str:
        info = lower_keys(self._object(self._call("GET", "ThresholdInformation")))
        used, limit = info.get("currenttimeframerequestcount"), info.get("externalrequestthreshold")
        words = "the API user, Secret and Integration code were accepted"
        if isinstance(used, int) and isinstance(limit, int):
            words += f" ({used} of {limit} requests used this hour)"
        return words

    def _ticket_count_words(self) -> str:
        body = {"filter": [{"op": "gte", "field": "id", "value": 0}]}
        count = lower_keys(self._object(self._call("POST", "Tickets/query/count", json=body)))
        return f"the API user can read tickets ({count.get('querycount', '?')} visible)"
