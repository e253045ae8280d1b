"""Autotask's REST transport: zone discovery, credentials, the thread limit, retries, paging.

Reference: psa-apis.md sections 4-6 (the shared reference notes).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from adapters.autotask.errors import THREADS_PER_ENDPOINT, UNKNOWN_USER, classify, error_message
from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    NotFound,
    OutboundBlocked,
    RateLimited,
    Unavailable,
    require_settings,
)
from adapters.http import MAX_RETRY_AFTER_SECONDS, VendorHTTP
from adapters.values import lower_keys, numeric, origin

# Zone discovery needs no credentials and is exempt from the thread limit. V1.0 is pinned:
# versionInformation also lists V2.0, whose zoneInformation is a 404.
ZONE_DISCOVERY_URL = "https://webservices.autotask.net/atservicesrest/V1.0/zoneInformation"
API_VERSION = "V1.0/"
ZONE_HOST_SUFFIX = ".autotask.net"
MAX_RECORDS = 500  # the query API's maximum page
MAX_PAGES = 200
REQUIRED_SETTINGS = ("username", "secret", "integration_code")


@dataclass(frozen=True)
class Zone:
    url: str  # e.g. https://webservices5.autotask.net/ATServicesRest/
    web_url: str = ""  # e.g. https://ww5.autotask.net/


# username -> its zone; re-resolved after a 401 (tenants move between zones).
_ZONES: dict[str, Zone] = {}
# (username, endpoint) -> the 3 request slots Autotask allows at once.
_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


# The ticket status "Complete": a system value every Autotask instance has.
COMPLETE_STATUS = 5


def zone_base(url: str) -> str:
    """The zone root ending in "/": a pasted .../V1.0/ path or a missing slash is normalised."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    url = re.sub(r"/v1\.0/?$", "", url.rstrip("/"), flags=re.IGNORECASE)
    return url.rstrip("/") + "/"


def _endpoint(url: str) -> str:
    """The object endpoint a URL calls (Autotask's thread limit is per endpoint)."""
    match = re.search(r"/v1\.0/([^/?#]+)", urlsplit(url).path, re.IGNORECASE)
    return match.group(1).lower() if match else urlsplit(url).path.lower()


@contextmanager
def _thread_slot(username: str, url: str) -> Iterator[None]:
    key = (username.lower(), _endpoint(url))
    with _LOCK:
        slot = _SLOTS.setdefault(key, threading.BoundedSemaphore(THREADS_PER_ENDPOINT))
    with slot:
        yield


def eq(field: str, value: Any) -> dict[str, Any]:
    return {"op": "eq", "field": field, "value": value}


class AutotaskClient:
    """The calls every part of the adapter makes; the parts are its subclasses."""

    vendor = "autotask"

    def __init__(
        self,
        settings: Mapping[str, str],
        options: AdapterOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        require_settings(settings, REQUIRED_SETTINGS, "Autotask")
        self.options = options
        self.username = settings["username"].strip()
        self.integration_code = settings["integration_code"].strip()
        self._secret = settings["secret"].strip()
        self.webhook_secret = str(settings.get("webhook_secret") or "").strip()
        zone_url = str(settings.get("zone_url") or "").strip()
        self.configured_zone = zone_base(zone_url) if zone_url else ""
        self.sleep = sleep
        # One attempt per call here: _send retries, knowing what Autotask's 500s mean.
        single = replace(options, max_attempts=1)
        self.http = VendorHTTP(
            self.vendor, single, error_message=error_message, sleep=sleep, endpoint_of=_endpoint
        )
        self._fields: dict[str, list[dict[str, Any]]] = {}
        self._names: dict[tuple[str, int], str] = {}

    @property
    def _headers(self) -> dict[str, str]:
        return {
            "ApiIntegrationCode": self.integration_code,
            "UserName": self.username,
            "Secret": self._secret,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _send(
        self, method: str, url: str, *, credentials: bool = True, **kw: Any
    ) -> requests.Response:
        """One call with Autotask-aware retries: thread-threshold refusals, 429 and (for
        reads and idempotent writes) 5xx are retried with backoff; a create is retried only
        when Autotask refused it before doing anything."""
        headers = self._headers if credentials else {"Accept": "application/json"}
        attempts = max(1, self.options.max_attempts)
        idempotent = method in ("GET", "PATCH") or "/query" in urlsplit(url).path.lower()
        for attempt in range(1, attempts + 1):
            try:
                if not credentials:
                    return self.http.request(method, url, headers=headers, **kw)
                with _thread_slot(self.username, url):
                    return self.http.request(method, url, headers=headers, **kw)
            except OutboundBlocked:
                raise
            except AdapterError as exc:
                error = classify(exc)
                retry = isinstance(error, RateLimited) or (
                    idempotent and isinstance(error, Unavailable)
                )
                if retry and attempt < attempts:
                    after = error.retry_after if isinstance(error, RateLimited) else None
                    wait = self._backoff(attempt) if after is None else after
                    if wait <= MAX_RETRY_AFTER_SECONDS:
                        self.sleep(wait)
                        continue
                if error is exc:
                    raise
                raise error from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(1.0 * 2 ** (attempt - 1), 8.0) * random.uniform(0.75, 1.0)

    def _zone(self, *, refresh: bool = False) -> Zone:
        if self.configured_zone:
            return Zone(self.configured_zone)
        key = self.username.lower()
        with _LOCK:
            if not refresh and key in _ZONES:
                return _ZONES[key]
        try:
            response = self._send(
                "GET", ZONE_DISCOVERY_URL, params={"user": self.username}, credentials=False
            )
            info = lower_keys(self._json(response))
        except AuthenticationFailed as exc:  # HTTP 500 "Zone information could not be determined"
            raise AuthenticationFailed(
                UNKNOWN_USER.format(user=self.username), status=exc.status
            ) from exc
        url = str(info.get("url") or "").strip()
        if not url:
            raise AuthenticationFailed(UNKNOWN_USER.format(user=self.username))
        zone = Zone(zone_base(url), str(info.get("weburl") or "").strip())
        host = origin(zone.url)[1]
        trusted = (origin(zone.url)[0] == "https" and host.endswith(ZONE_HOST_SUFFIX)) or origin(
            zone.url
        )[:2] == origin(ZONE_DISCOVERY_URL)[:2]
        if not trusted:  # the credentials go to this host: never to one Autotask did not name
            raise AdapterError(f"Autotask zone discovery answered an unexpected host {host!r}")
        with _LOCK:
            _ZONES[key] = zone
        return zone

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        """An API call relative to the zone's V1.0 root; after a 401 the zone is re-read once
        (a tenant moved to another zone answers 401 on the old one)."""
        if path.startswith(("http://", "https://")):
            return self._send(method, path, **kw)
        zone = self._zone().url
        try:
            return self._send(method, zone + API_VERSION + path, **kw)
        except AuthenticationFailed as exc:
            if self.configured_zone or exc.status != 401:
                raise
            fresh = self._zone(refresh=True).url
            if fresh == zone:
                raise
        return self._send(method, fresh + API_VERSION + path, **kw)

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            where = urlsplit(response.url).path
            raise AdapterError(
                f"autotask answered {where} with something that is not JSON "
                "(is the zone URL an Autotask REST URL?)"
            ) from exc

    def _object(self, response: requests.Response) -> dict[str, Any]:
        body = self._json(response)
        if not isinstance(body, dict):
            where = urlsplit(response.url).path
            raise AdapterError(f"autotask answered {where} with {type(body).__name__}")
        return body

    def _item(self, path: str) -> dict[str, Any] | None:
        """GET {Entity}/{id}: Autotask answers a missing record with {"item": null}."""
        item = self._object(self._call("GET", path)).get("item")
        return item if isinstance(item, dict) else None

    def _query(
        self, entity: str, filters: list[dict[str, Any]], *, max_records: int | None = None
    ) -> list[dict[str, Any]]:
        """Every page of a query, following pageDetails.nextPageUrl until it is null."""
        body = {"filter": filters, "MaxRecords": max_records or MAX_RECORDS}
        response = self._call("POST", f"{entity}/query", json=body)
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._object(response)
            items = page.get("items")
            if not isinstance(items, list):
                raise AdapterError(f"autotask answered {entity}/query without items")
            rows.extend(item for item in items if isinstance(item, dict))
            next_url = lower_keys(page.get("pageDetails")).get("nextpageurl")
            if not next_url or not items:
                return rows
            response = self._call("POST", self._next_url(str(next_url)), json=body)
        raise AdapterError(f"autotask: {entity}/query has more than {MAX_PAGES} pages")

    def _next_url(self, link: str) -> str:
        base = self._zone().url
        url = urljoin(base, link)
        if origin(url) != origin(base):  # never send the credentials to another host
            raise AdapterError(f"autotask pagination pointed at {urlsplit(url).hostname}")
        return url

    @staticmethod
    def _ticket_id(ticket_id: str) -> str:
        value = str(ticket_id).strip()
        if not numeric(value):
            raise NotFound(f"autotask ticket ids are numbers, not {value[:40]!r}")
        return value
