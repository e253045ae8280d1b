"""ConnectWise PSA (formerly Manage), as the registry knows it.

Everything Baton knows about ConnectWise is in this folder: the REST client (client.py), callback
verification and parsing (webhook.py), the ticket reader (context.py), note and status writes
(writeback.py), set-up (setup.py), the pod (panel.py), member proof (identity.py), the sandbox
dialect (sandbox/) and recorded payloads (fixtures/). Facts: psa-apis.md sections 1-3 of the
shared reference notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import PSAVendor
from adapters.connectwise.adapter import ConnectWiseAdapter
from adapters.connectwise.identity import IDENTITY
from adapters.connectwise.panel import frame_origins, panel_setup
from adapters.fields import SettingField

if TYPE_CHECKING:
    from adapters.sandbox.dialect import SandboxDialect

FIELDS = (
    SettingField(
        "site",
        "Site",
        kind="url",
        help="API base URL, e.g. https://api-na.myconnectwise.net (or your on-premises host)",
    ),
    SettingField(
        "company_id", "Company ID", max_length=100, help="The company id you sign in with"
    ),
    SettingField("public_key", "Public key", secret=True),
    SettingField("private_key", "Private key", secret=True),
    SettingField(
        "client_id",
        "Client ID",
        secret=True,
        help="From developer.connectwise.com/ClientID; sent as the clientId header",
    ),
)


def sandbox_dialect() -> SandboxDialect:
    from adapters.connectwise.sandbox import DIALECT

    return DIALECT


VENDOR = PSAVendor(
    key="connectwise",
    name="ConnectWise PSA",
    fields=FIELDS,
    connect=ConnectWiseAdapter,
    status_by=ConnectWiseAdapter.status_by,
    member_id_help="the ConnectWise member ID (the identifier members sign in with)",
    panel_setup=panel_setup,
    frame_origins=frame_origins,
    identity=IDENTITY,
    sandbox=sandbox_dialect,
    # ConnectWise publishes no request limit: its cloud front end answers 429 with Retry-After.
    request_windows=(),
)
