"""Autotask's errors: its status codes do not mean what they say, so the message decides."""

from __future__ import annotations

import json
import re
from typing import Any

import requests

from adapters.base import (
    AdapterError,
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from adapters.values import lower_keys

THREADS_PER_ENDPOINT = 3  # per API tracking identifier and endpoint, for integrations since 2023.1
UNKNOWN_USER = "Autotask does not know the API user {user}: check API user"
CREDENTIALS_HELP = "Autotask refused the API user and Secret: wrong Secret or API user"
INTEGRATION_CODE_HELP = "the Integration code (API tracking identifier) is wrong"
_VENDOR_CODE = re.compile(r"\b(itgenatr\d+)\b", re.IGNORECASE)
_PERMISSION = re.compile(
    r"adequate permission|sufficient permission|not have (the )?permission|permission denied",
    re.IGNORECASE,
)


def error_message(response: requests.Response) -> tuple[str, str]:
    """Autotask's {"errors": ["..."]} (or ASP.NET's {"Message": ...}) as one readable line."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text.lower().startswith(("<!doctype", "<html")):
            return "an HTML page instead of JSON (is the zone URL an Autotask REST URL?)", ""
        return text[:300], _vendor_code(text)
    messages: list[str] = []
    if isinstance(body, dict):
        lowered = lower_keys(body)
        errors = lowered.get("errors")
        for err in errors if isinstance(errors, list) else [errors] if errors else []:
            if isinstance(err, dict):
                err = lower_keys(err).get("message") or json.dumps(err)
            messages.append(str(err))
        messages += [str(lowered[k]) for k in ("message", "exceptionmessage") if lowered.get(k)]
    elif isinstance(body, list):
        messages = [str(item) for item in body]
    text = "; ".join(m.strip() for m in messages if m.strip()) or response.text.strip()[:300]
    return text[:500], _vendor_code(text)


def _vendor_code(text: str) -> str:
    match = _VENDOR_CODE.search(text)
    return match.group(1) if match else ""


def squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def classify(exc: AdapterError) -> AdapterError:
    """Autotask's status codes do not mean what they say: read the message too."""
    text, squashed = str(exc), squash(str(exc))
    kw: dict[str, Any] = {"status": exc.status, "vendor_code": exc.vendor_code}
    if "threadthreshold" in squashed or "itgenatr005" in squashed:
        return RateLimited(
            f"{text} (Autotask allows {THREADS_PER_ENDPOINT} concurrent requests per endpoint)",
            retry_after=getattr(exc, "retry_after", None),
            **kw,
        )
    if isinstance(exc, RateLimited):
        return exc
    if "threshold" in squashed and "exceed" in squashed:  # the hourly request threshold
        return RateLimited(text, **kw)
    if exc.status == 401:
        return AuthenticationFailed(f"{text} ({CREDENTIALS_HELP})", **kw)
    if "zoneinformationcouldnotbedetermined" in squashed:
        return AuthenticationFailed(text, **kw)
    if "integrationcode" in squashed or "trackingidentifier" in squashed:
        return AuthenticationFailed(f"{text} ({INTEGRATION_CODE_HELP})", **kw)
    if _PERMISSION.search(text):
        return PermissionDenied(text, **kw)
    if "nomatchingrecords" in squashed:
        return NotFound(text, **kw)
    return exc
