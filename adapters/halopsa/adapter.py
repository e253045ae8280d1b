"""The HaloPSA adapter: the PSAAdapter protocol, made of one part per job."""

from __future__ import annotations

from typing import Literal

from adapters.halopsa.context import HaloContext
from adapters.halopsa.identity import HaloIdentity
from adapters.halopsa.install import HaloWebhookInstall
from adapters.halopsa.setup import HaloSetup
from adapters.halopsa.webhook import HaloWebhooks
from adapters.halopsa.writeback import HaloWriteback


class HaloAdapter(
    HaloWebhooks,
    HaloContext,
    HaloWriteback,
    HaloSetup,
    HaloWebhookInstall,
    HaloIdentity,
):
    # TicketEvent.status is the ticket's status_id as the API answers it (ids are per instance
    # and stable; names can be renamed).
    status_by: Literal["name", "id"] = "id"
    webhook_follows_trigger = False
