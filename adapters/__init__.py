"""The adapter registry: vendor name -> adapter factory, imported only when first used.

The connector asks `adapter_for(tenant.vendor, ...)` and never names a vendor module.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from adapters.base import AdapterOptions, PSAAdapter

# vendor -> "module:callable"; the callable takes (settings, options) and returns a PSAAdapter.
ADAPTERS: dict[str, str] = {
    "connectwise": "adapters.connectwise.client:ConnectWiseAdapter",
    "autotask": "adapters.autotask.client:AutotaskAdapter",
    "sandbox": "adapters.sandbox:connect",  # a ConnectWiseAdapter aimed at the simulated PSA
}
VENDORS = ("connectwise", "autotask", "sandbox")


def adapter_for(vendor: str, settings: Mapping[str, str], options: AdapterOptions) -> PSAAdapter:
    """Build the tenant's adapter; an unknown vendor is a ValueError."""
    try:
        module_name, _, factory_name = ADAPTERS[vendor].partition(":")
    except KeyError:
        raise ValueError(f"unknown PSA vendor {vendor!r}") from None
    factory = getattr(importlib.import_module(module_name), factory_name)
    adapter: PSAAdapter = factory(settings, options)
    return adapter
