"""Who may frame the panel, and the headers every panel response carries.

The panel lives in the PSA's iframe, so `frame-ancestors` names the tenant's PSA and nothing
else; a page whose tenant is unknown may only be framed by Baton itself.
"""

from __future__ import annotations

from connector import tenants as tenant_ops
from connector.models import Tenant


def psa_origins(tenant: Tenant | None) -> list[str]:
    """The origins the tenant's PSA shows its screens from (where the panel is framed)."""
    if tenant is None:
        return []
    return tenant_ops.psa_vendor(tenant).frame_origins(tenant_ops.connection_settings(tenant))


def content_security_policy(tenant: Tenant | None) -> str:
    ancestors = " ".join(["'self'", *psa_origins(tenant)])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; "
        f"frame-ancestors {ancestors}"
    )


def message_origins(tenant: Tenant | None) -> list[str]:
    """Exact origins whose postMessage replies the panel trusts (the vendor's identity adds
    its own patterns)."""
    return [o for o in psa_origins(tenant) if "*" not in o]


def page_headers(tenant: Tenant | None) -> dict[str, str]:
    """The headers of every panel page: the CSP above, and no caching of pages naming people."""
    return {
        "Content-Security-Policy": content_security_policy(tenant),
        "Cache-Control": "no-store",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }
