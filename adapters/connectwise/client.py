"""ConnectWise's REST transport: settings, auth, the hosted codebase, paging, errors.

Reference: psa-apis.md sections 1-2 (the shared reference notes).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import requests

from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    NotFound,
    require_settings,
)
from adapters.http import VendorHTTP
from adapters.values import lower_keys, numeric, origin

PAGE_SIZE = 1000  # the maximum; without it ConnectWise silently returns 25 rows
MAX_PAGES = 100
CLOUD_REGIONS = ("na", "eu", "au", "aus", "za")
UI_TO_API = {f"{r}.myconnectwise.net": f"api-{r}.myconnectwise.net" for r in CLOUD_REGIONS}
UI_TO_API["staging.connectwisedev.com"] = "api-staging.connectwisedev.com"
API_TO_UI = {api: ui for ui, api in UI_TO_API.items()}
CODEBASE = re.compile(r"[A-Za-z0-9_.]+/")
REQUIRED_SETTINGS = ("site", "company_id", "public_key", "private_key", "client_id")

# Codebases change when ConnectWise moves a cloud tenant; keyed by (api site, company).
_CODEBASES: dict[tuple[str, str], str] = {}
_LOCK = threading.Lock()


def api_site(site: str) -> str:
    """The REST base for a configured Site: cloud UI hosts become their api-* host."""
    site = site.strip().rstrip("/")
    if "://" not in site:
        site = "https://" + site
    host = (urlsplit(site).hostname or "").lower()
    if host in UI_TO_API:
        return "https://" + UI_TO_API[host]
    if host in API_TO_UI:
        return "https://" + host  # a pasted .../v4_6_release/apis/3.0 path is not ours to keep
    return site


def error_message(response: requests.Response) -> tuple[str, str]:
    """ConnectWise's {"code","message","errors":[...]} as one readable line."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text.lower().startswith(("<!doctype", "<html")):
            return "an HTML page instead of JSON (is Site the API host?)", ""
        return text[:300], ""
    if not isinstance(body, dict):
        return str(body)[:300], ""
    code = str(body.get("code") or "")
    parts = [f"{code}: {body.get('message') or ''}".strip(": ")]
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            field = f" ({err['field']})" if err.get("field") else ""
            parts.append(f"{err.get('code') or ''}: {err.get('message') or ''}{field}".strip(": "))
    return "; ".join(p for p in parts if p)[:500], code


def ref_name(ref: Any, *keys: str) -> str:
    """The first non-empty of `keys` on a ConnectWise reference object ({id, name, ...})."""
    if not isinstance(ref, dict):
        return ""
    return next((str(ref[k]) for k in keys if ref.get(k)), "")


def condition_string(value: str) -> str:
    """A value quoted for a `conditions` clause."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ConnectWiseClient:
    """The calls every part of the adapter makes; the parts are its subclasses."""

    vendor = "connectwise"

    def __init__(
        self,
        settings: Mapping[str, str],
        options: AdapterOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        require_settings(settings, REQUIRED_SETTINGS, "ConnectWise")
        self.options = options
        self.configured_site = settings["site"].strip().rstrip("/")
        self.site = api_site(settings["site"])
        self.company = settings["company_id"].strip()
        self.client_id = settings["client_id"].strip()
        self._headers = self._auth(settings["public_key"].strip(), settings["private_key"].strip())
        self.http = VendorHTTP(self.vendor, options, error_message=error_message, sleep=sleep)
        # The signing-key fetch answers a live webhook: one quick try, no credentials sent.
        key_options = replace(options, timeout_seconds=5.0, max_attempts=1)
        self._key_http = VendorHTTP(self.vendor, key_options, error_message=error_message)

    def _auth(self, user: str, secret: str) -> dict[str, str]:
        token = base64.b64encode(f"{self.company}+{user}:{secret}".encode()).decode()
        return {
            "Authorization": f"Basic {token}",
            "clientId": self.client_id,
            "Accept": "application/json",
        }

    def _codebase(self, *, refresh: bool = False) -> str:
        key = (self.site, self.company.lower())
        with _LOCK:
            if not refresh and key in _CODEBASES:
                return _CODEBASES[key]
        response = self.http.request(
            "GET",
            f"{self.site}/login/companyinfo/{quote(self.company, safe='')}",
            headers={"Accept": "application/json"},
        )
        info = self._json(response)
        if info is None:
            raise AuthenticationFailed(
                f"unknown company id: ConnectWise at {urlsplit(self.site).hostname} "
                f"does not know company {self.company!r}; check Company ID"
            )
        codebase = str(lower_keys(info).get("codebase") or "v4_6_release/").lstrip("/")
        codebase = codebase if codebase.endswith("/") else codebase + "/"
        if not CODEBASE.fullmatch(codebase):
            raise AdapterError(f"ConnectWise reported an unexpected codebase {codebase[:40]!r}")
        with _LOCK:
            _CODEBASES[key] = codebase
        return codebase

    def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> requests.Response:
        """One API call; a 404 may mean the hosted codebase moved, so re-read it once."""
        if path.startswith(("http://", "https://")):
            return self.http.request(method, path, headers=self._headers, params=params, **kw)
        codebase = self._codebase()
        url = f"{self.site}/{codebase}apis/3.0{path}"
        try:
            return self.http.request(method, url, headers=self._headers, params=params, **kw)
        except NotFound:
            fresh = self._codebase(refresh=True)
            if fresh == codebase:
                raise
        url = f"{self.site}/{fresh}apis/3.0{path}"
        return self.http.request(method, url, headers=self._headers, params=params, **kw)

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            where = urlsplit(response.url).path
            raise AdapterError(
                f"connectwise answered {where} with something that is not JSON "
                "(is Site the ConnectWise API host?)"
            ) from exc

    def _get(self, path: str) -> dict[str, Any]:
        body = self._json(self._call("GET", path))
        if not isinstance(body, dict):
            raise AdapterError(f"connectwise answered {path} with {type(body).__name__}")
        return body

    def _list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of a list, following Link rel="next" and always asking for 1000 rows."""
        params["pageSize"] = PAGE_SIZE
        response = self._call("GET", path, params=params)
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._json(response)
            if not isinstance(page, list):
                raise AdapterError(f"connectwise answered {path} with {type(page).__name__}")
            rows.extend(r for r in page if isinstance(r, dict))
            link = response.links.get("next", {}).get("url")
            if not link or not page:
                return rows
            response = self._call("GET", self._next_url(link, params))
        raise AdapterError(f"connectwise: {path} has more than {MAX_PAGES} pages")

    def _next_url(self, link: str, params: Mapping[str, Any]) -> str:
        url = urljoin(self.site + "/", link)
        if origin(url) != origin(self.site):  # never send the keys to another host
            raise AdapterError(f"connectwise pagination pointed at {urlsplit(url).hostname}")
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        present = {k.lower() for k in query}
        # Some servers drop conditions or pageSize from the next link; keep ours.
        query.update({k: str(v) for k, v in params.items() if k.lower() not in present})
        return urlunsplit(parts._replace(query=urlencode(query)))

    @staticmethod
    def _ticket_id(ticket_id: str) -> str:
        value = str(ticket_id).strip()
        if not numeric(value):
            raise NotFound(f"connectwise ticket ids are numbers, not {value[:40]!r}")
        return value
