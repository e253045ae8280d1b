"""Rate limits (flask-limiter, counted in Redis so every web process shares them).

Webhooks are limited per tenant (in connector.ingest_gate's one Redis round trip), the API
per member. A refused request gets 429 with Retry-After: the PSA retries it later, so nothing
accepted is ever dropped.
"""

from __future__ import annotations

import hashlib

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)


def member_key() -> str:
    """The caller's token or session, hashed; the address only for anonymous callers."""
    cookie = request.cookies.get(current_app.config.get("SESSION_COOKIE_NAME", "session"))
    credential = request.headers.get("Authorization") or cookie
    if credential:
        return "member:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
    return "addr:" + (get_remote_address() or "unknown")


def init_app(app: Flask) -> None:
    settings = app.extensions["baton"].settings
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 2}
    app.config["RATELIMIT_KEY_PREFIX"] = "baton-limits"
    # A rate-limit store that is down must not refuse webhooks: fail open, the PSA is trusted.
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True
    limiter.init_app(app)
