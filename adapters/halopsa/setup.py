"""Setting a tenant up: statuses, agents as members, and a connection test in plain words."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from adapters.base import (
    AdapterError,
    AuthenticationFailed,
    ConnectionCheck,
    PermissionDenied,
    PSAMember,
    RateLimited,
    StatusOption,
    Unavailable,
)
from adapters.halopsa.client import record_count, rows_of
from adapters.halopsa.errors import AGENT_HELP, RATE_HELP, TICKETS_HELP, URL_HELP
from adapters.halopsa.lookups import HaloLookups
from adapters.values import int_or_none, lower_keys


class HaloSetup(HaloLookups):
    def list_statuses(self) -> list[StatusOption]:
        """Read fresh for the trigger picker (and kept for set_status)."""
        return [StatusOption(id=str(s.id), name=s.name) for s in self._statuses(fresh=True)]

    def list_members(self) -> list[PSAMember]:
        """Every agent but API-only ones, by the id webhooks name the acting agent with."""
        try:
            own = self._api_agent_id()
        except AdapterError:
            own = None
        members = []
        rows = self._rows("/Agent", "agents", includedisabled="true", includeenabled="true")
        for agent in rows:
            agent_id = int_or_none(agent.get("id"))
            if agent_id is None or agent.get("isapiagent") or agent_id == own:
                continue
            full = " ".join(str(agent[k]).strip() for k in ("firstname", "surname") if agent.get(k))
            members.append(
                PSAMember(
                    psa_id=str(agent_id),
                    name=str(agent.get("name") or full or agent_id),
                    email=str(agent.get("email") or ""),
                    active=not agent.get("isdisabled"),
                )
            )
        return members

    def test_connection(self) -> ConnectionCheck:
        """Halo URL (authinfo), client ID and secret (a token), the API agent, ticket access:
        stop at the first thing that fails."""
        host = urlsplit(self.site).hostname or self.site
        steps: list[tuple[str, Callable[[], str]]] = [
            ("Halo URL", self._auth_server_words),
            ("Client ID and secret", self._token_words),
            ("API agent", self._agent_words),
            ("Ticket access", self._ticket_words),
        ]
        checks: list[tuple[str, bool, str]] = []
        for what, probe in steps:
            try:
                checks.append((what, True, probe()))
            except AdapterError as exc:
                checks.append(self._failed(what, exc, host))
                break
        return ConnectionCheck(ok=all(c[1] for c in checks), checks=tuple(checks))

    def _failed(self, what: str, exc: AdapterError, host: str) -> tuple[str, bool, str]:
        if isinstance(exc, Unavailable) and exc.status is None:
            return "Halo URL", False, f"cannot reach {host}: {URL_HELP}"
        if isinstance(exc, RateLimited):
            return what, False, RATE_HELP
        if what == "Client ID and secret":
            if exc.vendor_code.lower() == "invalid_scope":
                return "Scope", False, str(exc)
            if exc.status == 500 and "tenant" in str(exc).lower():
                return "Tenant", False, str(exc)
            return what, False, str(exc)
        if isinstance(exc, AuthenticationFailed):
            return what, False, f"Halo refused Baton's token: {exc}"
        if isinstance(exc, PermissionDenied):
            return what, False, AGENT_HELP if what == "API agent" else TICKETS_HELP
        return what, False, str(exc)

    def _auth_server_words(self) -> str:
        server = self._auth_server(fresh=True)  # the settings may have just changed
        words = f"{urlsplit(self.site).hostname} answers; it signs in at {server.token_url}"
        return words + (f" for tenant {server.tenant}" if server.tenant else "")

    def _token_words(self) -> str:
        self._token()
        return f"Halo issued a token for the client ID (scope {self.scope})"

    def _agent_words(self) -> str:
        me = lower_keys(self._object("/Agent/me"))
        return f"Baton acts in Halo as {me.get('name') or 'agent'} (agent {me.get('id', '?')})"

    def _ticket_words(self) -> str:
        body = self._json(self._call("GET", "/Tickets", params={"count": 1}))
        visible = record_count(body)
        seen = len(rows_of(body, "tickets")) if visible is None else visible
        return f"the API agent can read tickets ({seen} visible)"
