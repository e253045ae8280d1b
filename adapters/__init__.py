"""The vendor registry: the connector knows a PSA only through the `PSAVendor` it finds here.

Adding a PSA is one folder under adapters/ whose package defines `VENDOR`, and one line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache

from adapters.base import AdapterOptions, PSAAdapter, PSAVendor

# One line per PSA: the package that defines its VENDOR. The order is the order people see.
VENDOR_PACKAGES = (
    "adapters.connectwise",
    "adapters.autotask",
    "adapters.halopsa",
    "adapters.sandbox",  # a real vendor's adapter aimed at the simulated PSA, in its dialect
)


@cache
def vendors() -> dict[str, PSAVendor]:
    """Every registered vendor by key, imported on first use."""
    found = [importlib.import_module(name).VENDOR for name in VENDOR_PACKAGES]
    return {vendor.key: vendor for vendor in found}


def vendor(key: str) -> PSAVendor:
    """The registered vendor; an unknown key is a ValueError."""
    try:
        return vendors()[key]
    except KeyError:
        raise ValueError(f"unknown PSA vendor {key!r}") from None


def speaking(key: str, settings: Mapping[str, str]) -> PSAVendor:
    """The vendor whose screens, ids and webhooks a connection has (a sandbox speaks one)."""
    registered = vendor(key)
    return registered.speaks(settings) if registered.speaks else registered


def adapter_for(key: str, settings: Mapping[str, str], options: AdapterOptions) -> PSAAdapter:
    """Build the tenant's adapter; an unknown vendor is a ValueError."""
    return vendor(key).connect(settings, options)
