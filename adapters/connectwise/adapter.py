"""The ConnectWise adapter: the PSAAdapter protocol, made of one part per job."""

from __future__ import annotations

from typing import Literal

from adapters.connectwise.context import ConnectWiseContext
from adapters.connectwise.identity import ConnectWiseIdentity
from adapters.connectwise.setup import ConnectWiseSetup
from adapters.connectwise.webhook import ConnectWiseWebhooks
from adapters.connectwise.writeback import ConnectWiseWriteback


class ConnectWiseAdapter(
    ConnectWiseWebhooks,
    ConnectWiseContext,
    ConnectWiseWriteback,
    ConnectWiseSetup,
    ConnectWiseIdentity,
):
    status_by: Literal["name", "id"] = "name"  # callbacks carry the status by name
    # One callback per board that holds an escalation status (level "board"), not every ticket.
    webhook_follows_trigger = True
