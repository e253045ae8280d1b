"""ConnectWise callbacks: the signature over the raw body (key from key_url) and parsing."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from adapters.base import (
    AdapterError,
    Ignored,
    MalformedWebhook,
    TicketEvent,
    WebhookRejected,
    WebhookRequest,
)
from adapters.connectwise.client import ConnectWiseClient, ref_name
from adapters.values import header, lower_keys, numeric, origin

KEY_TTL_SECONDS = 300.0
# Hosts that may serve a callback signing key (Metadata.key_url is attacker-controlled).
KEY_URL_HOST = re.compile(
    r"(api-na|api-eu|api-au|api-aus|api-za|na|eu|au|aus|za|sandbox-na|sandbox-eu|"
    r"sandbox-au|api-staging|staging)\.(myconnectwise\.net|connectwisedev\.com)"
)

# key_url -> (expires at, signing key)
_SIGNING_KEYS: dict[str, tuple[float, str]] = {}
_LOCK = threading.Lock()


class ConnectWiseWebhooks(ConnectWiseClient):
    @staticmethod
    def _payload(request: WebhookRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise MalformedWebhook("connectwise callback body is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedWebhook("connectwise callback body is not a JSON object")
        return lower_keys(body)

    def _check_key_url(self, key_url: str) -> None:
        sites = (self.configured_site, self.site)
        refusal = _key_url_refusal(key_url, sites, self.company, self.options.allow_private_urls)
        if refusal:
            raise WebhookRejected(refusal)

    def _signing_key(self, key_url: str, *, fresh: bool = False) -> tuple[str, bool]:
        """(key, came from cache). Keys are cached briefly: every callback carries a key_url."""
        now = time.monotonic()
        with _LOCK:
            hit = _SIGNING_KEYS.get(key_url)
            if hit and not fresh and hit[0] > now:
                return hit[1], True
        host = urlsplit(key_url).hostname
        try:
            response = self._key_http.request(
                "GET", key_url, headers={"Accept": "application/json"}, allow_redirects=False
            )
            key = response.json().get("signing_key") if response.status_code == 200 else None
        except AdapterError as exc:
            reason = f"HTTP {exc.status}" if exc.status else type(exc).__name__
            raise WebhookRejected(f"could not fetch the signing key from {host}: {reason}") from exc
        except (ValueError, AttributeError) as exc:
            raise WebhookRejected(f"the signing key from {host} is not JSON") from exc
        if not isinstance(key, str) or not key:
            raise WebhookRejected(f"no signing_key from {host} (HTTP {response.status_code})")
        with _LOCK:
            if len(_SIGNING_KEYS) > 256:
                _SIGNING_KEYS.clear()
            _SIGNING_KEYS[key_url] = (now + KEY_TTL_SECONDS, key)
        return key, False

    def verify_webhook(self, request: WebhookRequest) -> None:
        payload = self._payload(request)
        signature = header(request.headers, "x-content-signature")
        if not signature:
            raise WebhookRejected("missing x-content-signature")
        key_url = lower_keys(payload.get("metadata")).get("key_url")
        if not isinstance(key_url, str) or not key_url:
            raise WebhookRejected("missing Metadata.key_url")
        self._check_key_url(key_url)  # before any request: key_url is attacker-controlled

        def signed_with(key: str) -> bool:
            digest = hmac.new(hashlib.sha256(key.encode()).digest(), request.body, hashlib.sha256)
            expected = base64.b64encode(digest.digest())
            return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))

        key, cached = self._signing_key(key_url)
        # A mismatch against a cached key may be a rotation: refetch once before refusing.
        if not signed_with(key) and (
            not cached or not signed_with(self._signing_key(key_url, fresh=True)[0])
        ):
            raise WebhookRejected("signature mismatch")
        company = payload.get("companyid")
        if company and str(company).lower() != self.company.lower():
            raise WebhookRejected("callback is for another ConnectWise company")

    def parse_webhook(self, request: WebhookRequest) -> TicketEvent | Ignored:
        p = self._payload(request)
        message_id = str(p.get("messageid") or "").strip()
        record_id = str(p.get("id") if p.get("id") is not None else "").strip()
        if not message_id:
            raise MalformedWebhook("connectwise callback has no MessageId")
        if not numeric(record_id):
            raise MalformedWebhook(f"connectwise callback has no numeric ID ({record_id[:20]!r})")
        query_id = lower_keys(dict(request.query)).get("recordid")
        if query_id and str(query_id) != record_id:
            raise MalformedWebhook(f"recordId {str(query_id)[:20]!r} does not match ID {record_id}")
        kind = str(p.get("type") or "")
        if kind.lower() != "ticket":
            return Ignored(f"not a ticket callback (type={kind[:40]})", delivery_key=message_id)
        if str(p.get("action") or "").lower() == "deleted":
            return Ignored("ticket deleted", delivery_key=message_id)
        entity = p.get("entity")
        if entity is None or (isinstance(entity, str) and not entity.strip()):
            return Ignored("no entity", delivery_key=message_id)
        if isinstance(entity, str):
            try:
                entity = json.loads(entity)
            except ValueError as exc:
                raise MalformedWebhook("connectwise callback Entity is not JSON") from exc
        if not isinstance(entity, dict):
            raise MalformedWebhook("connectwise callback Entity is not a JSON object")
        record_type = str(entity.get("recordType") or "ServiceTicket")
        if record_type != "ServiceTicket":
            reason = (
                "project ticket" if record_type.startswith("Project") else "not a service ticket"
            )
            return Ignored(f"{reason} (recordType={record_type[:40]})", delivery_key=message_id)
        actor = str(p.get("memberid") or "") or ref_name(entity.get("_info"), "updatedBy")
        return TicketEvent(
            ticket_id=record_id,
            delivery_key=message_id,
            status=ref_name(entity.get("status"), "name"),
            title=str(entity.get("summary") or ""),
            actor=actor,
            ticket_number=record_id,
            closed=entity.get("closedFlag") is True,
        )


@functools.lru_cache(maxsize=256)  # every callback of one company carries the same key_url
def _key_url_refusal(
    key_url: str, sites: tuple[str, str], company: str, allow_private_urls: bool
) -> str | None:
    """Why Baton may not fetch a signing key from this key_url, or None when it may."""
    parts = urlsplit(key_url)
    host = (parts.hostname or "").lower()
    if "@" in parts.netloc or "\\" in key_url or any(c.isspace() for c in key_url):
        return "key_url host not allowed"
    cloud = parts.scheme == "https" and KEY_URL_HOST.fullmatch(host) and parts.port in (None, 443)
    own = origin(key_url) in {origin(site) for site in sites}
    if not (cloud or (own and (parts.scheme == "https" or allow_private_urls))):
        return "key_url host not allowed"
    named = lower_keys(dict(parse_qsl(parts.query))).get("companyname")
    if named is not None and named.lower() != company.lower():
        return "key_url is for another ConnectWise company"
    return None
