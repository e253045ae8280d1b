"""Halo's error bodies as one readable line, and the plain words Test connection uses.

Halo answers in several shapes (halopsa.md section 9): OAuth's {"error", "error_description"}
from the token endpoint, {"ClassName", "Message"}, {"resultCode", "errorMessage"}, {"Message"},
and ASP.NET field maps keyed like "id" or "[0].id" for a 400. Bodies are free-form otherwise.
"""

from __future__ import annotations

from typing import Any

import requests

from adapters.values import lower_keys

URL_HELP = (
    "check Halo URL: it is the address you open Halo at, e.g. https://yourcompany.halopsa.com"
)
CLIENT_HELP = (
    "Halo refused the client ID and secret: check both (Configuration > Integrations > Halo API "
    "> View Applications); Halo changes the client ID when an application is first saved"
)
GRANT_HELP = (
    "the application is not a client-credentials one: choose Authentication method "
    '"Client ID and Secret (Services)" and an agent to log in as'
)
SCOPE_HELP = (
    "Halo refused the scope {scope!r}: give the application that permission, or set Scope to "
    "what it grants (Baton needs read:tickets edit:tickets; install also admin)"
)
TENANT_HELP = (
    "Halo could not sign in for tenant {tenant!r}: check Tenant (Configuration > Integrations > "
    "Halo API > API Details shows it), or leave it empty for Baton to look it up"
)
AGENT_HELP = (
    "the application's agent cannot read agents: give the API agent a role that can, or the "
    "application the admin scope"
)
TICKETS_HELP = (
    "the API agent cannot read tickets: give the application read:tickets and edit:tickets, "
    "and the agent access to the teams that hold escalated tickets"
)
RATE_HELP = "Halo is limiting Baton's requests (about 300 every 5 minutes): try again in a minute"
HTML_ANSWER = "an HTML page instead of JSON (is Halo URL the address of your Halo?)"
NOT_FIELDS = {"error", "message", "errormessage", "title", "classname", "resultcode", "status"}


def error_message(response: requests.Response) -> tuple[str, str]:
    """(one readable line, the vendor's error code if it sent one)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text.lower().startswith(("<!doctype", "<html")):
            return HTML_ANSWER, ""
        return text[:300], ""
    if isinstance(body, str):
        return body[:300], ""
    if isinstance(body, list):
        return "; ".join(str(item) for item in body)[:500], ""
    if not isinstance(body, dict):
        return response.text.strip()[:300], ""
    fields = lower_keys(body)
    if isinstance(fields.get("error"), str):  # OAuth, from the token endpoint
        code = fields["error"]
        described = str(fields.get("error_description") or "").strip()
        return (f"{code}: {described}" if described else code)[:500], code
    code = str(fields.get("resultcode") or fields.get("classname") or "")
    said = [str(fields[k]).strip() for k in ("errormessage", "message", "title") if fields.get(k)]
    said += _field_errors(fields.get("errors", body))
    text = "; ".join(s for s in said if s) or response.text.strip()[:300]
    return text[:500], code


def _field_errors(value: Any) -> list[str]:
    """ASP.NET's {"[0].id": ["The id field is required."]} as "[0].id: The id field ..."."""
    if not isinstance(value, dict):
        return []
    found = []
    for name, messages in value.items():
        if isinstance(messages, list) and str(name).lower() not in NOT_FIELDS:
            found.append(f"{name}: {' '.join(str(m) for m in messages)}")
    return found
