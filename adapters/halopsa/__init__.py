"""HaloPSA, as the registry knows it.

Everything Baton knows about Halo is in this folder: the REST client with its token and retries
(client.py) and error bodies (errors.py), what is looked up once (lookups.py), webhook
credentials and parsing with the ticket re-read (webhook.py), the ticket reader (context.py,
text.py), note and status writes (writeback.py), set-up (setup.py, install.py), the custom tab
(panel.py) and its signed agent (identity.py), the sandbox dialect (sandbox/) and recorded
payloads (fixtures/). Facts: halopsa.md of the shared reference notes.

Still UNCONFIRMED on a real instance (docs/halopsa.md lists them with what Baton does about
each): when a tenant is required and whether form or query carries it; the 3600 s token
lifetime; the numeric values of a webhook's authentication type and events (so the event is
ticked by hand); the acting agent in a payload's top-level agent_id; the shape of a batched
delivery; whether Actions are paged; whether a one-element POST answers an object or a list;
whether GET /api/Agent and /api/Outcome wrap their lists; the custom tab's parameter names
(agent_id, hmac) and its menu path; the scope agents need; Halo's self-hosted request limits
and whether a 429 carries Retry-After.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import PSAVendor
from adapters.fields import SettingField
from adapters.halopsa.adapter import HaloAdapter
from adapters.halopsa.install import webhook_steps
from adapters.halopsa.panel import IDENTITY, frame_origins, panel_setup

if TYPE_CHECKING:
    from adapters.sandbox.dialect import SandboxDialect

FIELDS = (
    SettingField(
        "site",
        "Halo URL",
        kind="url",
        help="The address you open Halo at, e.g. https://yourcompany.halopsa.com",
    ),
    SettingField(
        "client_id",
        "Client ID",
        secret=True,
        help="From Configuration > Integrations > Halo API > View Applications: a "
        '"Client ID and Secret (Services)" application',
    ),
    SettingField("client_secret", "Client secret", secret=True),
    SettingField(
        "tenant",
        "Halo tenant",
        required=False,
        max_length=100,
        help="Only if Halo needs one (API Details shows it); found through /api/authinfo if empty",
    ),
    SettingField(
        "scope",
        "Scope",
        required=False,
        help="The permissions asked for: all, unless the application grants less",
    ),
    SettingField(
        "webhook_secret",
        "Webhook secret",
        secret=True,
        required=False,
        min_length=10,
        max_length=64,
        help="The webhook's Basic password; issued by Baton when it installs the webhook",
    ),
    SettingField(
        "tab_secret",
        "Custom tab secret",
        secret=True,
        required=False,
        max_length=200,
        help="The Baton tab's iframe secret: lets the tab sign agents in",
    ),
)


def sandbox_dialect() -> SandboxDialect:
    from adapters.halopsa.sandbox import DIALECT

    return DIALECT


VENDOR = PSAVendor(
    key="halopsa",
    name="HaloPSA",
    fields=FIELDS,
    connect=HaloAdapter,
    status_by=HaloAdapter.status_by,
    member_id_help="the Halo agent ID (a number; the custom tab and webhooks name agents by it)",
    panel_setup=panel_setup,
    frame_origins=frame_origins,
    identity=IDENTITY,
    sandbox=sandbox_dialect,
    # Per instance, tokens included (Halo-hosted; halopsa.md section 9). No concurrency limit
    # is documented.
    request_windows=("300/5 minutes",),
    webhook_setup=webhook_steps,
)
