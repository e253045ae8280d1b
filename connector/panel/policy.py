"""Who may frame the panel, and the headers every panel response carries.

The panel lives in the PSA's iframe, so `frame-ancestors` names the tenant's PSA and nothing
else; a page whose tenant is unknown may only be framed by Baton itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from connector.models import Tenant

# A ConnectWise cloud API host serves REST only; the screens (and so the pod's parent) are on
# the matching UI host: api-na.myconnectwise.net -> na.myconnectwise.net.
CONNECTWISE_CLOUD = (".myconnectwise.net", ".connectwisedev.com")
AUTOTASK_UI = "https://*.autotask.net"


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL (a bare host is taken as https), or None."""
    url = (url or "").strip()
    if not url:
        return None
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def psa_origins(tenant: Tenant | None) -> list[str]:
    """The origins the tenant's PSA shows its screens from (where the panel is framed)."""
    if tenant is None:
        return []
    settings = dict(tenant.connection.settings or {}) if tenant.connection else {}
    dialect = settings.get("dialect", "connectwise") if tenant.vendor == "sandbox" else ""
    if tenant.vendor == "autotask" or dialect == "autotask":
        origins = [AUTOTASK_UI]
        if tenant.vendor == "sandbox" and (site := origin_of(settings.get("site", ""))):
            origins.append(site)
        return origins
    site = origin_of(settings.get("site", ""))
    if site is None:
        return []
    origins = [site]
    scheme, _, host = site.partition("://")
    if host.startswith("api-") and host.endswith(CONNECTWISE_CLOUD):
        origins.append(f"{scheme}://{host[len('api-') :]}")
    return origins


def content_security_policy(tenant: Tenant | None) -> str:
    ancestors = " ".join(["'self'", *psa_origins(tenant)])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; "
        f"frame-ancestors {ancestors}"
    )


def message_origins(tenant: Tenant | None) -> list[str]:
    """Exact origins (besides ConnectWise's cloud) whose postMessage replies the panel trusts."""
    return [o for o in psa_origins(tenant) if "*" not in o]


def page_headers(tenant: Tenant | None) -> dict[str, str]:
    """The headers of every panel page: the CSP above, and no caching of pages naming people."""
    return {
        "Content-Security-Policy": content_security_policy(tenant),
        "Cache-Control": "no-store",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }
