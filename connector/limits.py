"""Rate limits (flask-limiter, counted in Redis so every web process shares them).

Webhooks are limited per tenant, the API per member. A refused request gets 429 with
Retry-After: the PSA retries it later, so nothing accepted is ever dropped.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import lru_cache

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

log = logging.getLogger(__name__)

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)


@lru_cache(maxsize=16)
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


def webhook_wait(slug: str, rate: str) -> int | None:
    """Seconds a tenant's PSA must wait, or None when this delivery is within the limit.

    The same fixed window and Redis keys as flask-limiter, through the `limits` strategy it
    holds, but only the hit itself: one Lua call (INCR and its expiry). The decorator would also
    read the window back on every request for X-RateLimit headers no PSA reads; here the window
    is read only to say Retry-After on a refusal. A store that is down lets the delivery in.
    """
    item = _item(rate)
    try:
        if limiter.limiter.hit(item, "webhook", slug):
            return None
        reset = limiter.limiter.get_window_stats(item, "webhook", slug).reset_time
    except Exception as exc:  # fail open, as RATELIMIT_SWALLOW_ERRORS does for the rest
        log.warning(
            "webhook rate limit unavailable", extra={"fields": {"error": type(exc).__name__}}
        )
        return None
    return max(1, int(reset - time.time() + 0.999))


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
