"""The Autotask adapter: the PSAAdapter protocol, made of one part per job."""

from __future__ import annotations

from typing import Literal

from adapters.autotask.context import AutotaskContext
from adapters.autotask.install import AutotaskWebhookInstall
from adapters.autotask.setup import AutotaskSetup
from adapters.autotask.webhook import AutotaskWebhooks
from adapters.autotask.writeback import AutotaskWriteback


class AutotaskAdapter(
    AutotaskWebhooks,
    AutotaskContext,
    AutotaskWriteback,
    AutotaskSetup,
    AutotaskWebhookInstall,
):
    status_by: Literal["name", "id"] = "id"  # webhooks carry the status picklist id
    webhook_follows_trigger = False
