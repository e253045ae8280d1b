"""The panel inside Halo: a custom tab on the ticket screen, framed by the instance itself.

With the tab's secure URL parameter on, Halo appends the viewing agent's id and an HMAC of it
made with the tab's iframe secret; Baton checks it (identity.py). Without it, each member signs
in once with a link.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import PanelIdentity, PanelSetup, PanelStep
from adapters.halopsa.client import site_base
from adapters.values import origin_of

# Where Halo puts them, as a working verifier of Halo's custom tabs reads them (halopsa.md 8).
AGENT_PARAMETER = "agent_id"
SIGNATURE_PARAMETER = "hmac"
IDENTITY = PanelIdentity(
    method="signed_url", member_fields=(AGENT_PARAMETER,), proof_field=SIGNATURE_PARAMETER
)


def frame_origins(settings: Mapping[str, str]) -> list[str]:
    """The instance's own origin: Halo shows its screens where its API is."""
    site = origin_of(site_base(settings.get("site", ""))) if settings.get("site") else None
    return [site] if site else []


def panel_setup(panel_url: str, baton_origin: str) -> PanelSetup:
    return PanelSetup(
        steps=(
            PanelStep(
                "In Halo, open Configuration > Custom Objects > Custom Tabs and add a tab that "
                "shows a web page (an iframe), for tickets.",
                (("Name", "Baton"), ("URL", panel_url)),
            ),
            PanelStep(
                "Turn on the secure URL parameter, set an iframe secret, and paste the same "
                "secret into Custom tab secret under Connection (above). Save."
            ),
            PanelStep(
                "Allow the tab on the ticket types your technicians escalate (the ticket type's "
                "custom tabs), then open a ticket: the Baton tab signs each agent in."
            ),
        ),
        note=(
            "What the signed parameter proves: which Halo agent opened the tab (Halo signs the "
            "agent id with the tab's secret; Baton checks it in constant time and that the "
            "agent is not disabled). What it does not: it carries no time, so a copied tab "
            "address signs that agent in again until the secret changes; and only the agent "
            "id is signed, so Baton trusts nothing else in the address (the ticket id least "
            "of all). Agents must be Baton members (Members, below); without the secret "
            "each member signs in once with a sign-in link."
        ),
    )
