"""Reading what vendors send: timestamps, keys in any case, headers, numeric ids, origins."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit


def when(value: Any) -> datetime | None:
    """An ISO 8601 timestamp ("Z" included), or None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def lower_keys(value: Any) -> dict[str, Any]:
    """A JSON object with lower-case keys (vendors are not consistent); {} for anything else."""
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by its lower-case name, from any mapping of headers."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def numeric(value: str) -> bool:
    return value.isascii() and value.isdigit()  # "²".isdigit() is True


def squash(text: str) -> str:
    """Lower-case letters and digits only: labels and messages compared however spelled."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def int_or_none(value: Any) -> int | None:
    """An integer id however it was sent (int, integral float, digits); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and numeric(value.strip()):
        return int(value.strip())
    return None


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: what "same host" means."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


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
