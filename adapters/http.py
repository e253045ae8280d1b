"""Outbound HTTP for vendor APIs and chat webhooks: one guarded, retrying, limited session.

The outbound guard lives in the transport, so every request (and every redirect hop,
since each hop is sent through the transport again) is checked; no caller can forget it.
Every vendor request also passes the connection's PSALimiter (issue 19): the PSA's request
windows and concurrent-request slots, counted in Redis so all workers of all processes share
them, and waited for (bounded) instead of being refused by the PSA.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import limits
import redis
import requests
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from requests.adapters import HTTPAdapter

from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    Conflict,
    NotFound,
    OutboundBlocked,
    PermissionDenied,
    RateLimited,
    Unavailable,
)

log = logging.getLogger(__name__)

# The longest Retry-After we are willing to sleep inside a job; longer waits go back to the queue.
MAX_RETRY_AFTER_SECONDS = 30.0
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


def address_is_private(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_multicast
        or addr.is_unspecified
        or str(addr) in {"169.254.169.254", "fd00:ec2::254"}
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise OutboundBlocked unless `url` may be called from Baton."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise OutboundBlocked(f"refused outbound URL {url!r}: not an http(s) URL")
    if parts.scheme == "http" and not allow_private:
        raise OutboundBlocked(f"refused outbound URL to {host}: https is required")
    if allow_private:
        return
    if host.lower() in METADATA_HOSTS:
        raise OutboundBlocked(f"refused outbound URL to {host}: cloud metadata host")
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise Unavailable(f"cannot resolve {host}: {exc.strerror}") from exc
    for info in infos:
        ip = str(info[4][0])
        if address_is_private(ip):
            raise OutboundBlocked(f"refused outbound URL to {host}: it resolves to {ip}")


class GuardedAdapter(HTTPAdapter):
    def __init__(self, allow_private: bool):
        super().__init__()
        self.allow_private = allow_private

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        check_url(request.url or "", allow_private=self.allow_private)
        return super().send(request, *args, **kwargs)


def guarded_session(allow_private: bool) -> requests.Session:
    session = requests.Session()
    guard = GuardedAdapter(allow_private)
    session.mount("https://", guard)
    session.mount("http://", guard)
    session.max_redirects = 3
    return session


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


ErrorMessage = Callable[[requests.Response], tuple[str, str]]


def default_error_message(response: requests.Response) -> tuple[str, str]:
    return response.text[:300], ""


# A counting semaphore with leases: `limits` counts windows only, and redis-py's Lock has one
# holder. A slot's score is when its lease ends, so a worker killed mid-request frees it then.
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""
SLOT_POLL_SECONDS = 0.05


@lru_cache(maxsize=4)
def window_storage(uri: str) -> Storage:
    """The `limits` storage for request windows: Redis (shared), or memory in one process."""
    storage = storage_from_string(uri)
    assert isinstance(storage, Storage)  # a synchronous one: redis:// or memory://
    return storage


class PSALimiter:
    """One PSA connection's limits, held across every worker: request windows ("300/5
    minutes", through `limits`' moving window) and at most `max_concurrent` requests in flight
    per endpoint. A request waits for both up to `max_wait_seconds`; past that it is
    RateLimited with a Retry-After, and its job goes back to the queue."""

    def __init__(
        self,
        connection: redis.Redis,
        storage: Storage,
        key: str,
        *,
        windows: tuple[str, ...] = (),
        max_concurrent: int | None = None,
        lease_seconds: float = 60.0,
        max_wait_seconds: float = MAX_RETRY_AFTER_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.connection = connection
        self.key = key
        self.windows = [limits.parse(w) for w in windows]
        self.window_limiter = MovingWindowRateLimiter(storage)
        self.max_concurrent = max_concurrent
        self.lease_seconds = lease_seconds
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep
        self._take_slot = connection.register_script(_TAKE_SLOT)

    @contextmanager
    def hold(self, endpoint: str) -> Iterator[None]:
        until = time.monotonic() + self.max_wait_seconds
        slot = self._slot(endpoint, until) if self.max_concurrent else None
        try:
            self._window(until)
            yield
        finally:
            if slot is not None:
                self.connection.zrem(*slot)

    def _slot(self, endpoint: str, until: float) -> tuple[str, str]:
        name = f"baton-psa-slots:{self.key}:{endpoint}"
        token = uuid.uuid4().hex
        while True:
            now = time.time()
            expires = now + self.lease_seconds
            args: list[float | str] = [
                now, expires, self.max_concurrent or 0, token, int(self.lease_seconds) + 1
            ]  # fmt: skip
            if self._take_slot(keys=[name], args=args):
                return name, token
            if time.monotonic() + SLOT_POLL_SECONDS > until:
                raise RateLimited(
                    f"all {self.max_concurrent} request slots of {endpoint or 'the PSA'} stayed "
                    f"busy for {self.max_wait_seconds:.0f}s",
                    retry_after=SLOT_POLL_SECONDS * 20,
                )
            self.sleep(SLOT_POLL_SECONDS)

    def _window(self, until: float) -> None:
        for window in self.windows:
            while not self.window_limiter.hit(window, "baton-psa", self.key):
                stats = self.window_limiter.get_window_stats(window, "baton-psa", self.key)
                if stats.remaining > 0:
                    continue  # the window moved between the refused hit and this look at it
                wait = max(0.01, stats.reset_time - time.time())
                if time.monotonic() + wait > until:
                    raise RateLimited(
                        f"the PSA's window of {window} is used up for {wait:.0f}s",
                        retry_after=wait,
                    )
                self.sleep(wait)


class VendorHTTP:
    """A vendor API client's transport: guard, timeouts, retries, one error taxonomy."""

    def __init__(
        self,
        vendor: str,
        options: AdapterOptions,
        *,
        error_message: ErrorMessage = default_error_message,
        sleep: Callable[[float], None] = time.sleep,
        endpoint_of: Callable[[str], str] = lambda url: "",
    ):
        self.vendor = vendor
        self.options = options
        self.session = guarded_session(options.allow_private_urls)
        self.error_message = error_message
        self.sleep = sleep
        self.endpoint_of = endpoint_of  # what the PSA counts concurrent requests per

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send with retries on 429 (honouring Retry-After, capped) and 5xx/timeouts."""
        kwargs.setdefault("timeout", self.options.timeout_seconds)
        attempts = max(1, self.options.max_attempts)
        for attempt in range(1, attempts + 1):
            limiter = self.options.limiter
            try:
                with limiter.hold(self.endpoint_of(url)) if limiter else nullcontext():
                    response = self.session.request(method, url, **kwargs)
            except (OutboundBlocked, RateLimited):
                raise
            except (requests.Timeout, requests.ConnectionError) as exc:
                if attempt == attempts:
                    raise Unavailable(
                        f"{self.vendor}: {method} {urlsplit(url).path} failed: {type(exc).__name__}"
                    ) from exc
                self.sleep(self._backoff(attempt))
                continue
            except requests.RequestException as exc:
                raise Unavailable(f"{self.vendor}: {type(exc).__name__}") from exc
            retryable = response.status_code == 429 or response.status_code >= 500
            if retryable and attempt < attempts:
                wait = retry_after_seconds(response)
                wait = self._backoff(attempt) if wait is None else wait
                # A longer wait than this is better spent back on the queue than in a job.
                if wait <= MAX_RETRY_AFTER_SECONDS:
                    self.sleep(wait)
                    continue
            if response.status_code >= 400:
                raise self.error_for(response)
            return response
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(0.5 * 2 ** (attempt - 1), 8.0) * random.uniform(0.75, 1.0)

    def error_for(self, response: requests.Response) -> AdapterError:
        message, code = self.error_message(response)
        where = f"{response.request.method} {urlsplit(response.url).path}"
        text = f"{self.vendor} answered {response.status_code} to {where}: {message}"
        status = response.status_code
        if status == 401:
            return AuthenticationFailed(text, status=status, vendor_code=code)
        if status == 403:
            return PermissionDenied(text, status=status, vendor_code=code)
        if status == 404:
            return NotFound(text, status=status, vendor_code=code)
        if status == 409:
            return Conflict(text, status=status, vendor_code=code)
        if status == 429:
            return RateLimited(
                text, status=status, vendor_code=code, retry_after=retry_after_seconds(response)
            )
        if status >= 500:
            return Unavailable(text, status=status, vendor_code=code)
        return AdapterError(text, status=status, vendor_code=code)
