"""Halo's REST transport: settings, the authorisation server and its token, retries, lists.

Every call carries a client-credentials bearer token: found through `/api/authinfo` (which names
the authorisation server and, for Halo-hosted instances, the tenant), cached per connection until
shortly before it expires, and fetched again once after a 401. Halo allows about 300 requests per
rolling 5 minutes per instance, so what does not change often (the token, the authorisation
server, outcomes, statuses, the API agent) is fetched once and kept.
Reference: halopsa.md sections 1 and 9 (the shared reference notes).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    require_settings,
)
from adapters.halopsa.errors import (
    CLIENT_HELP,
    GRANT_HELP,
    RATE_HELP,
    SCOPE_HELP,
    TENANT_HELP,
    error_message,
)
from adapters.http import MAX_RETRY_AFTER_SECONDS, VendorHTTP
from adapters.values import int_or_none, lower_keys, numeric, origin

REQUIRED_SETTINGS = ("site", "client_id", "client_secret")
DEFAULT_SCOPE = "all"
# Without a Retry-After Halo's window needs a long pause: clients that waited 5 s were refused
# again (halopsa.md section 9).
RATE_LIMIT_WAIT_SECONDS = 30.0
TOKEN_REFRESH_MARGIN_SECONDS = 120.0
DEFAULT_TOKEN_SECONDS = 3600
AUTH_SERVER_TTL_SECONDS = 3600.0
# Halo-hosted instances may name an authorisation server on Halo's own domains; any other host
# must be the instance itself, or the client secret could be sent to a stranger.
HALO_AUTH_DOMAINS = (".haloservicedesk.com", ".halopsa.com", ".haloitsm.com", ".halocrm.io")
PAGE_SIZE = 100
# "Closed", the status a new Halo instance closes tickets with (status id 9).
CLOSED_STATUS = 9
MAX_PAGES = 100

T = TypeVar("T")


@dataclass(frozen=True)
class AuthServer:
    token_url: str
    tenant: str  # sent as ?tenant= when not empty


@dataclass(frozen=True)
class Token:
    value: str
    refresh_at: float  # time.monotonic()


# site -> (expires at, its authorisation server)
_AUTH_SERVERS: dict[str, tuple[float, AuthServer]] = {}
# (token URL, tenant, connection) -> token; one lock per key, so one fetch when many need one
_TOKENS: dict[tuple[str, str, str], Token] = {}
_TOKEN_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
# (connection, what) -> (expires at, value): outcomes, statuses, the API agent
_KEPT: dict[tuple[str, str], tuple[float, Any]] = {}
_LOCK = threading.Lock()


def site_base(site: str) -> str:
    """The instance's root: a bare host becomes https, a pasted /api or /auth path is dropped."""
    site = site.strip().rstrip("/")
    if "://" not in site:
        site = "https://" + site
    for suffix in ("/api", "/auth"):
        if site.lower().endswith(suffix):
            site = site[: -len(suffix)]
    return site


def rows_of(body: Any, key: str) -> list[dict[str, Any]]:
    """A Halo list however it comes: a bare array, or {"record_count": n, key: [...]}."""
    items = lower_keys(body).get(key) if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise AdapterError(f"halopsa answered a {key} list with {type(body).__name__}")
    return [item for item in items if isinstance(item, dict)]


def record_count(body: Any) -> int | None:
    return int_or_none(lower_keys(body).get("record_count")) if isinstance(body, dict) else None


def first_record(body: Any) -> dict[str, Any]:
    """What a one-element POST answers: the saved record, or a list holding it."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    if isinstance(body, dict):
        return body
    raise AdapterError(f"halopsa answered a save with {type(body).__name__}")


class HaloClient:
    """The calls every part of the adapter makes; the parts are its subclasses."""

    vendor = "halopsa"

    def __init__(
        self,
        settings: Mapping[str, str],
        options: AdapterOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        require_settings(settings, REQUIRED_SETTINGS, "HaloPSA")
        self.options = options
        self.site = site_base(settings["site"])
        self.api = self.site + "/api"
        self.client_id = settings["client_id"].strip()
        self._client_secret = settings["client_secret"].strip()
        self.tenant = str(settings.get("tenant") or "").strip()
        self.scope = str(settings.get("scope") or "").strip() or DEFAULT_SCOPE
        self.webhook_secret = str(settings.get("webhook_secret") or "").strip()
        self.tab_secret = str(settings.get("tab_secret") or "").strip()
        # What is kept between adapters belongs to this site, client and secret: another tenant
        # naming the same client without its secret must not borrow this one's token.
        secret_digest = hashlib.sha256(self._client_secret.encode()).hexdigest()
        self._connection = f"{self.api}\0{self.client_id}\0{secret_digest}\0{self.scope}"
        self.sleep = sleep
        # One attempt per call here: _send retries, knowing what Halo's 429 needs.
        single = replace(options, max_attempts=1)
        self.http = VendorHTTP(self.vendor, single, error_message=error_message, sleep=sleep)

    # --- sending, with Halo's retries --------------------------------------------------------

    def _send(
        self, method: str, url: str, *, idempotent: bool, patient: bool = True, **kw: Any
    ) -> requests.Response:
        """One request; when `patient`, a 429 waits once (Retry-After, else 30 s) and reads (and
        other idempotent calls) are retried after 5xx and timeouts. A webhook is answered
        without waiting (not patient): the PSA delivers it again."""
        attempts = max(1, self.options.max_attempts)
        waited = False
        for attempt in range(1, attempts + 1):
            try:
                return self.http.request(method, url, **kw)
            except RateLimited as exc:
                wait = RATE_LIMIT_WAIT_SECONDS if exc.retry_after is None else exc.retry_after
                if (
                    patient
                    and not waited
                    and attempt < attempts
                    and wait <= MAX_RETRY_AFTER_SECONDS
                ):
                    waited = True
                    self.sleep(wait)
                    continue
                raise RateLimited(
                    f"{exc} ({RATE_HELP})",
                    retry_after=wait,
                    status=429,
                    vendor_code=exc.vendor_code,
                ) from exc
            except Unavailable:
                if not (idempotent and patient) or attempt == attempts:
                    raise
                self.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(1.0 * 2 ** (attempt - 1), 8.0) * random.uniform(0.75, 1.0)

    # --- the authorisation server and the token ------------------------------------------------

    def _auth_server(self, *, fresh: bool = False) -> AuthServer:
        now = time.monotonic()
        with _LOCK:
            kept = _AUTH_SERVERS.get(self.site)
        if fresh or kept is None or kept[0] <= now:
            kept = (now + AUTH_SERVER_TTL_SECONDS, self._discover_auth_server())
            with _LOCK:
                _AUTH_SERVERS[self.site] = kept
        server = kept[1]
        return AuthServer(server.token_url, self.tenant or server.tenant)

    def _discover_auth_server(self) -> AuthServer:
        """GET /api/authinfo (no credentials): the authorisation server and the tenant, if the
        instance has one; an instance without it uses {site}/auth."""
        try:
            response = self._send("GET", f"{self.api}/authinfo", idempotent=True)
            info = lower_keys(response.json())
        except (NotFound, PermissionDenied, ValueError):
            info = {}
        except AdapterError as exc:
            if isinstance(exc, RateLimited) or (isinstance(exc, Unavailable) and not exc.status):
                raise  # limited or unreachable: a guessed server would not help
            info = {}
        auth_url = str(info.get("auth_url") or "").strip().rstrip("/") or f"{self.site}/auth"
        scheme, host, _port = origin(auth_url)
        trusted = origin(auth_url) == origin(self.site) or (
            scheme == "https" and host.endswith(HALO_AUTH_DOMAINS)
        )
        if not trusted:  # the client secret goes to this host: never to one Halo does not own
            raise AdapterError(f"Halo's authinfo named an unexpected authorisation server {host!r}")
        return AuthServer(f"{auth_url}/token", str(info.get("tenant_id") or "").strip())

    def _token(self, *, stale: str | None = None) -> str:
        """A bearer token for this connection: the kept one unless it is `stale` or expiring."""
        server = self._auth_server()
        key = (server.token_url, server.tenant, self._connection)
        with _LOCK:
            lock = _TOKEN_LOCKS.setdefault(key, threading.Lock())
        with lock:
            kept = _TOKENS.get(key)
            if kept and kept.value != stale and kept.refresh_at > time.monotonic():
                return kept.value
            token = self._fetch_token(server)
            _TOKENS[key] = token
            return token.value

    def _fetch_token(self, server: AuthServer) -> Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "scope": self.scope,
        }
        params = {"tenant": server.tenant} if server.tenant else None
        try:  # not retried: a wrong tenant answers 500, which no retry mends
            response = self._send(
                "POST", server.token_url, params=params, data=form, idempotent=False
            )
        except AdapterError as exc:
            raise self._token_refused(exc, server) from exc
        body = lower_keys(self._json(response))
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthenticationFailed("Halo's token endpoint answered without an access_token")
        lifetime = int_or_none(body.get("expires_in")) or DEFAULT_TOKEN_SECONDS
        refresh_in = max(lifetime - TOKEN_REFRESH_MARGIN_SECONDS, lifetime / 2)
        return Token(value, time.monotonic() + refresh_in)

    def _token_refused(self, exc: AdapterError, server: AuthServer) -> AdapterError:
        """The token endpoint's refusal in plain words (it speaks OAuth's error codes)."""
        kw: dict[str, Any] = {"status": exc.status, "vendor_code": exc.vendor_code}
        code = exc.vendor_code.lower()
        if code == "invalid_scope":
            return PermissionDenied(SCOPE_HELP.format(scope=self.scope), **kw)
        if code in ("unauthorized_client", "unsupported_grant_type", "invalid_grant"):
            return AuthenticationFailed(GRANT_HELP, **kw)
        if code == "invalid_client" or exc.status in (400, 401):
            return AuthenticationFailed(f"{CLIENT_HELP} ({exc.vendor_code or exc.status})", **kw)
        if exc.status == 500 and server.tenant:  # a wrong tenant was seen to answer 500
            return AuthenticationFailed(TENANT_HELP.format(tenant=server.tenant), **kw)
        return exc

    # --- API calls -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        patient: bool = True,
        **kw: Any,
    ) -> requests.Response:
        """One API call under /api; after a 401 one fresh token and one retry."""
        once = method == "GET" if idempotent is None else idempotent
        token = self._token()
        try:
            return self._send(
                method, self.api + path, headers=self._bearer(token), idempotent=once,
                patient=patient, **kw,
            )  # fmt: skip
        except AuthenticationFailed as exc:
            if exc.status != 401:
                raise
        fresh = self._token(stale=token)  # revoked or expired early: nothing was done
        return self._send(
            method, self.api + path, headers=self._bearer(fresh), idempotent=once,
            patient=patient, **kw,
        )  # fmt: skip

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            where = urlsplit(response.url).path
            raise AdapterError(
                f"halopsa answered {where} with something that is not JSON "
                "(is Halo URL the address of your Halo?)"
            ) from exc

    def _object(self, path: str, *, patient: bool = True, **params: Any) -> dict[str, Any]:
        body = self._json(self._call("GET", path, params=params or None, patient=patient))
        if not isinstance(body, dict):
            raise AdapterError(f"halopsa answered {path} with {type(body).__name__}")
        return body

    def _rows(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every row of a list. Asked unpaged; if Halo pages anyway (fewer rows than its
        record_count), what came is its first page and the rest is read page by page."""
        body = self._json(self._call("GET", path, params=params or None))
        rows = rows_of(body, key)
        total = record_count(body)
        if total is None or len(rows) >= total:
            return rows
        size = len(rows) or PAGE_SIZE
        for page_no in range(2 if rows else 1, MAX_PAGES + 1):
            paging = {"pageinate": "true", "page_size": size, "page_no": page_no}
            page = rows_of(self._json(self._call("GET", path, params={**params, **paging})), key)
            rows.extend(page)
            if not page or len(rows) >= total:
                return rows
        raise AdapterError(f"halopsa: {path} has more than {MAX_PAGES} pages")

    def _kept(self, what: str, ttl: float, fetch: Callable[[], T]) -> T:
        """A value of this connection fetched once per `ttl` seconds."""
        key = (self._connection, what)
        now = time.monotonic()
        with _LOCK:
            kept = _KEPT.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]  # type: ignore[no-any-return]
        value = fetch()
        with _LOCK:
            _KEPT[key] = (now + ttl, value)
        return value

    def _forget(self, what: str) -> None:
        with _LOCK:
            _KEPT.pop((self._connection, what), None)

    @staticmethod
    def _ticket_id(ticket_id: str) -> str:
        value = str(ticket_id).strip()
        if not numeric(value):
            raise NotFound(f"halopsa ticket ids are numbers, not {value[:40]!r}")
        return value
