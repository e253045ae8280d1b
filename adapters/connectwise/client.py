"""ConnectWise PSA (Manage) REST API and callbacks.

Reference: ../shared/reference/psa-apis.md sections 1-3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import requests

from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    ConfigurationItem,
    ConnectionCheck,
    Ignored,
    MalformedWebhook,
    Note,
    NotFound,
    PermissionDenied,
    StatusOption,
    Ticket,
    TicketContext,
    TicketEvent,
    TimeEntry,
    Unavailable,
    Visibility,
    WebhookInstallation,
    WebhookRejected,
    WebhookRequest,
)
from adapters.http import VendorHTTP

PAGE_SIZE = 1000  # the maximum; without it ConnectWise silently returns 25 rows
MAX_PAGES = 100
KEY_TTL_SECONDS = 300.0
CLOUD_REGIONS = ("na", "eu", "au", "aus", "za")
UI_TO_API = {f"{r}.myconnectwise.net": f"api-{r}.myconnectwise.net" for r in CLOUD_REGIONS}
UI_TO_API["staging.connectwisedev.com"] = "api-staging.connectwisedev.com"
API_TO_UI = {api: ui for ui, api in UI_TO_API.items()}
# Hosts that may serve a callback signing key (Metadata.key_url is attacker-controlled).
KEY_URL_HOST = re.compile(
    r"(api-na|api-eu|api-au|api-aus|api-za|na|eu|au|aus|za|sandbox-na|sandbox-eu|"
    r"sandbox-au|api-staging|staging)\.(myconnectwise\.net|connectwisedev\.com)"
)
CODEBASE = re.compile(r"[A-Za-z0-9_.]+/")
CLIENT_ID_MENTION = re.compile(r"client\s*id", re.IGNORECASE)
CLIENT_ID_HELP = (
    "the clientId header was refused: register one at developer.connectwise.com "
    "and paste it into Client ID"
)
KEYS_HELP = (
    "ConnectWise refused the public/private key pair: check both keys, the Company ID "
    "and that the API member is active"
)
ROLE_HELP = (
    "the API member's security role cannot read Service Tickets: "
    "give it Service Desk > Service Tickets Inquire"
)
REQUIRED_SETTINGS = ("site", "company_id", "public_key", "private_key", "client_id")

# Codebases change when ConnectWise moves a cloud tenant; keyed by (api site, company).
_CODEBASES: dict[tuple[str, str], str] = {}
# key_url -> (expires at, signing key)
_SIGNING_KEYS: dict[str, tuple[float, str]] = {}
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


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


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


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _name(ref: Any, *keys: str) -> str:
    """The first non-empty of `keys` on a ConnectWise reference object ({id, name, ...})."""
    if not isinstance(ref, dict):
        return ""
    return next((str(ref[k]) for k in keys if ref.get(k)), "")


def _lower_keys(value: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _numeric(value: str) -> bool:
    return value.isascii() and value.isdigit()  # "²".isdigit() is True


def _condition_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ConnectWiseAdapter:
    vendor = "connectwise"
    status_by: Literal["name", "id"] = "name"

    def __init__(
        self,
        settings: Mapping[str, str],
        options: AdapterOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        missing = [k for k in REQUIRED_SETTINGS if not str(settings.get(k) or "").strip()]
        if missing:
            raise AdapterError(f"ConnectWise settings are missing: {', '.join(missing)}")
        self.options = options
        self.configured_site = settings["site"].strip().rstrip("/")
        self.site = api_site(settings["site"])
        self.company = settings["company_id"].strip()
        self.client_id = settings["client_id"].strip()
        self._headers = self._auth(settings["public_key"].strip(), settings["private_key"].strip())
        self.http = VendorHTTP(self.vendor, options, error_message=error_message, sleep=sleep)
        # The signing-key fetch answers a live webhook: one quick try, no credentials sent.
        key_options = AdapterOptions(
            allow_private_urls=options.allow_private_urls, timeout_seconds=5.0, max_attempts=1
        )
        self._key_http = VendorHTTP(self.vendor, key_options, error_message=error_message)

    # --- transport ------------------------------------------------------------------

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
        codebase = str(_lower_keys(info).get("codebase") or "v4_6_release/").lstrip("/")
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
        if not _numeric(value):
            raise NotFound(f"connectwise ticket ids are numbers, not {value[:40]!r}")
        return value

    # --- reading ---------------------------------------------------------------------

    def fetch_context(self, ticket_id: str) -> TicketContext:
        tid = self._ticket_id(ticket_id)
        raw = self._get(f"/service/tickets/{tid}")
        notes = sorted(
            (
                n
                for n in self._list(f"/service/tickets/{tid}/allNotes")
                if n.get("noteType", "TicketNote") == "TicketNote"
            ),
            key=lambda n: (str(n.get("dateCreated") or ""), str(n.get("id")).zfill(20)),
        )
        description = str(raw.get("initialDescription") or "")
        if not description:
            first = next((n for n in notes if n.get("detailDescriptionFlag")), None)
            if first is not None:
                description = str(first.get("text") or "")
                notes.remove(first)
        host = urlsplit(self.site).hostname or ""
        url = ""
        if host in API_TO_UI:
            url = (
                f"https://{API_TO_UI[host]}/v4_6_release/services/system_io/Service/"
                f"fv_sr100_request.rails?service_recid={tid}"
            )
        ticket = Ticket(
            id=tid,
            title=str(raw.get("summary") or ""),
            description=description,
            status=_name(raw.get("status"), "name"),
            number=tid,
            company=_name(raw.get("company"), "name", "identifier"),
            contact=str(raw.get("contactName") or "") or _name(raw.get("contact"), "name"),
            priority=_name(raw.get("priority"), "name"),
            board=_name(raw.get("board"), "name"),
            created_at=_when(
                raw.get("dateEntered") or _lower_keys(raw.get("_info")).get("dateentered")
            ),
            url=url,
        )
        return TicketContext(
            ticket=ticket,
            notes=tuple(self._note(n) for n in notes),
            time_entries=tuple(self._time_entries(tid)),
            configurations=tuple(self._configurations(tid)),
        )

    @staticmethod
    def _note(n: dict[str, Any]) -> Note:
        author = _name(n.get("member"), "identifier", "name") or _name(n.get("contact"), "name")
        return Note(
            id=str(n.get("id", "")),
            text=str(n.get("text") or ""),
            author=author or str(n.get("createdBy") or ""),
            created_at=_when(n.get("dateCreated")),
            internal=bool(n.get("internalAnalysisFlag") or n.get("internalFlag")),
        )

    def _time_entries(self, tid: str) -> list[TimeEntry]:
        cond = f'chargeToType="ServiceTicket" AND chargeToId={tid}'
        entries = []
        for e in self._list("/time/entries", conditions=cond):
            start, end = _when(e.get("timeStart")), _when(e.get("timeEnd"))
            if isinstance(e.get("actualHours"), (int, float)):
                minutes = float(e["actualHours"]) * 60
            elif start and end:
                minutes = (end - start).total_seconds() / 60
            else:
                minutes = 0.0
            text = "\n".join(str(e[k]) for k in ("notes", "internalNotes") if e.get(k))
            member = _name(e.get("member"), "identifier", "name")
            entries.append(TimeEntry(member=member, minutes=minutes, started_at=start, notes=text))
        return entries

    def _configurations(self, tid: str) -> list[ConfigurationItem]:
        items = []
        for ref in self._list(f"/service/tickets/{tid}/configurations"):
            try:
                c = self._get(f"/company/configurations/{int(ref['id'])}")
            except (KeyError, TypeError, ValueError, NotFound):
                continue  # deleted since it was attached; the rest still helps
            fields = {"os": "osType", "ip": "ipAddress", "serial": "serialNumber"}
            details = {k: str(c[f]) for k, f in fields.items() if c.get(f)}
            name = str(c.get("name") or ref.get("deviceIdentifier") or "")
            items.append(
                ConfigurationItem(name=name, type=_name(c.get("type"), "name"), details=details)
            )
        return items

    # --- writing ---------------------------------------------------------------------

    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        tid = self._ticket_id(ticket_id)
        internal = visibility == "internal"
        body = {
            "text": f"{title}\n\n{text}" if title else text,  # ConnectWise notes have no title
            "detailDescriptionFlag": not internal,
            "internalAnalysisFlag": internal,
            "resolutionFlag": False,
            "processNotifications": False,  # Baton emails people itself
        }
        created = self._json(self._call("POST", f"/service/tickets/{tid}/notes", json=body))
        if not isinstance(created, dict) or created.get("id") is None:
            raise AdapterError("connectwise created a note but returned no id")
        return str(created["id"])

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        tid = self._ticket_id(ticket_id)
        cond = f"text contains {_condition_string(marker)}"
        for note in self._list(f"/service/tickets/{tid}/notes", conditions=cond):
            # The server filter only narrows (LIKE may read "[...]" as a pattern): check here.
            if marker in str(note.get("text") or ""):
                return str(note.get("id"))
        return None

    def set_status(self, ticket_id: str, status: str) -> None:
        tid = self._ticket_id(ticket_id)
        ticket = self._get(f"/service/tickets/{tid}")
        if _name(ticket.get("status"), "name").lower() == status.strip().lower():
            return  # already there; a PATCH would only fire another callback
        board = ticket.get("board")
        if not isinstance(board, dict) or not board.get("id"):
            raise AdapterError(f"connectwise ticket {tid} has no board")
        path = f"/service/boards/{int(board['id'])}/statuses"
        found = self._list(path, conditions=f"name={_condition_string(status.strip())}")
        if not found and _numeric(status.strip()):
            found = self._list(path, conditions=f"id={int(status)}")
        if not found:
            raise NotFound(f"board {board.get('name') or board['id']} has no status {status!r}")
        patch = [{"op": "replace", "path": "status", "value": {"id": found[0]["id"]}}]
        self._call("PATCH", f"/service/tickets/{tid}", json=patch)

    def list_statuses(self) -> list[StatusOption]:
        options = []
        for board in self._list("/service/boards"):
            if board.get("inactiveFlag") or board.get("id") is None:
                continue
            for st in self._list(f"/service/boards/{int(board['id'])}/statuses"):
                if not st.get("inactive"):
                    group = str(board.get("name") or "")
                    options.append(
                        StatusOption(id=str(st["id"]), name=str(st.get("name") or ""), group=group)
                    )
        return options

    def install_webhook(self, callback_url: str) -> WebhookInstallation:
        url = callback_url + ("&" if "?" in callback_url else "?") + "recordId="
        host = urlsplit(callback_url).hostname or callback_url
        existing = self._list(
            "/system/callbacks", conditions=f"url contains {_condition_string(host)}"
        )
        for cb in existing:
            if cb.get("url") in (url, callback_url) and str(cb.get("type")).lower() == "ticket":
                if cb.get("inactiveFlag") or not cb.get("isSelfSuppressedFlag"):
                    repair = [
                        {"op": "replace", "path": "inactiveFlag", "value": False},
                        {"op": "replace", "path": "isSelfSuppressedFlag", "value": True},
                    ]
                    self._call("PATCH", f"/system/callbacks/{int(cb['id'])}", json=repair)
                return WebhookInstallation(
                    id=str(cb["id"]), url=str(cb["url"]), active=True, created=False
                )
        body = {
            "url": url,
            "objectId": 1,
            "type": "ticket",
            "level": "owner",
            "description": "Baton escalation handoffs",
            "inactiveFlag": False,
            "isSelfSuppressedFlag": True,  # our own note writes must not call us back
            "payloadVersion": "3.0.0",
        }
        created = self._json(self._call("POST", "/system/callbacks", json=body))
        return WebhookInstallation(
            id=str(created.get("id")),
            url=str(created.get("url") or url),
            active=not created.get("inactiveFlag"),
            created=True,
        )

    # --- setup checks ------------------------------------------------------------------

    def test_connection(self) -> ConnectionCheck:
        """Company id, keys + clientId, ticket access: stop at the first thing that fails."""
        host = urlsplit(self.site).hostname or self.site
        denied = (AuthenticationFailed, PermissionDenied)
        steps: list[tuple[str, Callable[[], object], str, tuple[type[AdapterError], ...], str]] = [
            ("Company ID", lambda: self._codebase(refresh=True),
             f"{host} knows company {self.company}", (), ""),
            ("API keys", lambda: self._call("GET", "/system/info"), "the keys and the clientId "
             "were accepted", (AuthenticationFailed,), KEYS_HELP),
            ("Ticket access", lambda: self._call("GET", "/service/tickets", params={"pageSize": 1}),
             "the API member can read service tickets", denied, ROLE_HELP),
        ]  # fmt: skip
        checks: list[tuple[str, bool, str]] = []
        for what, probe, passed, refused, helptext in steps:
            try:
                probe()
            except AdapterError as exc:
                if isinstance(exc, Unavailable) and exc.status is None:
                    checks.append(("Site", False, f"cannot reach {host}: check Site"))
                elif isinstance(exc, denied) and CLIENT_ID_MENTION.search(str(exc)):
                    checks.append(("Client ID", False, CLIENT_ID_HELP))
                else:
                    checks.append((what, False, helptext if isinstance(exc, refused) else str(exc)))
                break
            checks.append((what, True, passed))
        return ConnectionCheck(ok=all(c[1] for c in checks), checks=tuple(checks))

    def verify_member(self, member_id: str, member_hash: str, member_context: str = "") -> str:
        """The member's identifier if ConnectWise accepts the Hosted API memberHash."""
        member_id = member_id.strip()
        if not member_id or not member_hash or ":" in member_id:
            raise AuthenticationFailed("ConnectWise sign-in needs a member id and member hash")
        headers = self._auth(member_id, member_hash)
        url = f"{self.site}/{self._codebase()}apis/3.0/system/myMembers/info"
        try:
            info = _lower_keys(self._json(self.http.request("GET", url, headers=headers)))
        except (AuthenticationFailed, PermissionDenied, NotFound) as exc:
            raise AuthenticationFailed(
                f"ConnectWise did not confirm member {member_id!r}", status=exc.status
            ) from exc
        identifier = str(info.get("identifier") or "")
        if identifier.lower() != member_id.lower():
            raise AuthenticationFailed(f"ConnectWise did not confirm member {member_id!r}")
        return identifier

    # --- webhooks ----------------------------------------------------------------------

    @staticmethod
    def _payload(request: WebhookRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise MalformedWebhook("connectwise callback body is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedWebhook("connectwise callback body is not a JSON object")
        return _lower_keys(body)

    def _check_key_url(self, key_url: str) -> None:
        parts = urlsplit(key_url)
        host = (parts.hostname or "").lower()
        if "@" in parts.netloc or "\\" in key_url or any(c.isspace() for c in key_url):
            raise WebhookRejected("key_url host not allowed")
        cloud = (
            parts.scheme == "https" and KEY_URL_HOST.fullmatch(host) and parts.port in (None, 443)
        )
        own = origin(key_url) in (origin(self.configured_site), origin(self.site))
        if not (cloud or (own and (parts.scheme == "https" or self.options.allow_private_urls))):
            raise WebhookRejected("key_url host not allowed")
        company = _lower_keys(dict(parse_qsl(parts.query))).get("companyname")
        if company is not None and company.lower() != self.company.lower():
            raise WebhookRejected("key_url is for another ConnectWise company")

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
        signature = _header(request.headers, "x-content-signature")
        if not signature:
            raise WebhookRejected("missing x-content-signature")
        key_url = _lower_keys(payload.get("metadata")).get("key_url")
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
        if not _numeric(record_id):
            raise MalformedWebhook(f"connectwise callback has no numeric ID ({record_id[:20]!r})")
        query_id = _lower_keys(dict(request.query)).get("recordid")
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
        actor = str(p.get("memberid") or "") or _name(entity.get("_info"), "updatedBy")
        return TicketEvent(
            ticket_id=record_id,
            delivery_key=message_id,
            status=_name(entity.get("status"), "name"),
            title=str(entity.get("summary") or ""),
            actor=actor,
            ticket_number=record_id,
        )
