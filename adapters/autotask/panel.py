"""The panel inside Autotask: a LiveLink on the ticket page; members sign in with a link."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import PanelIdentity, PanelSetup, PanelStep

UI_ORIGINS = ["https://*.autotask.net"]  # ww1.autotask.net, ww5.autotask.net, ...
# Autotask passes no verifiable identity to a LiveLink.
IDENTITY = PanelIdentity(method="sign_in_link")


def frame_origins(settings: Mapping[str, str]) -> list[str]:
    """Every zone's UI host: the API zone does not say which one shows the tenant's screens."""
    return list(UI_ORIGINS)


def panel_setup(panel_url: str, baton_origin: str) -> PanelSetup:
    """A LiveLink that opens the panel with the ticket's id filled in by Autotask."""
    return PanelSetup(
        steps=(
            PanelStep(
                "In Autotask, open Admin > Automation > LiveLinks Designer and add a LiveLink.",
                (("Name", "Baton handoff"), ("Entity", "Ticket")),
            ),
            PanelStep(
                "Set the link to open a new window with this URL. Replace <variable> with the "
                "ticket ID variable from the LiveLink's variable list.",
                (("URL", f"{panel_url}&ticket=<variable>"),),
            ),
            PanelStep(
                "Make the LiveLink available on the ticket page for your technicians' security "
                "levels, then save."
            ),
        ),
        note=(
            "Autotask passes no verifiable identity to a LiveLink, so each member signs in to "
            "Baton once with their own sign-in link (Members, below)."
        ),
    )
