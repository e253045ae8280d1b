"""The panel inside ConnectWise: a Hosted API pod (or tab) on the service ticket screen."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import PanelSetup, PanelStep
from adapters.values import origin_of

# A cloud API host serves REST only; the screens (and so the pod's parent) are on the matching
# UI host: api-na.myconnectwise.net -> na.myconnectwise.net.
CLOUD_HOSTS = (".myconnectwise.net", ".connectwisedev.com")
POD_HEIGHT = "600"


def frame_origins(settings: Mapping[str, str]) -> list[str]:
    """The Site's origin, and for a cloud API host the UI host that shows the screens."""
    site = origin_of(settings.get("site", ""))
    if site is None:
        return []
    origins = [site]
    scheme, _, host = site.partition("://")
    if host.startswith("api-") and host.endswith(CLOUD_HOSTS):
        origins.append(f"{scheme}://{host[len('api-') :]}")
    return origins


def panel_setup(panel_url: str, baton_origin: str) -> PanelSetup:
    """The Manage Hosted API entry: ConnectWise fills in the ticket id and the screen."""
    return PanelSetup(
        steps=(
            PanelStep(
                "In ConnectWise PSA, open System > Setup Tables > Manage Hosted API and click New."
            ),
            PanelStep(
                "Fill in the new entry with these values and save.",
                (
                    ("Description", "Baton"),
                    ("Screen", "Service Ticket"),
                    ("Origin", baton_origin),
                    ("URL", f"{panel_url}&id=[cw_id]&screen=[cw_screen]"),
                    ("Display", "Pod"),
                    ("Pod Height", POD_HEIGHT),
                ),
            ),
            PanelStep(
                "Open a service ticket: the Baton pod signs each member in through ConnectWise. "
                "For a full-width view add a second entry with Display Tab."
            ),
        ),
        note=(
            "The API member needs the Table Setup permission for Manage Hosted API to see the "
            "setup table; every member who uses the pod must be a Baton member (Members, below)."
        ),
    )
