"""Setting a tenant up: statuses, members, the callback, and a connection test."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from adapters.base import (
    AdapterError,
    AuthenticationFailed,
    ConnectionCheck,
    PermissionDenied,
    PSAMember,
    StatusOption,
    Unavailable,
    WebhookInstallation,
)
from adapters.connectwise.client import ConnectWiseClient, condition_string
from adapters.values import int_or_none

CLIENT_ID_MENTION = re.compile(r"client\s*id", re.IGNORECASE)
CLIENT_ID_HELP = (
    "the clientId header was refused: register one at developer.connectwise.com "
    "and paste it into Client ID"
)
KEYS_HELP = (
    "ConnectWise refused the public/private key pair: check both keys, the Company ID "
    "and that the API member is active"
)
# What a member list needs; a whole Member record has more than a hundred fields.
MEMBER_FIELDS = "identifier,firstName,lastName,primaryEmail,officeEmail,inactiveFlag,licenseClass"
CALLBACK_DESCRIPTION = "Baton escalation handoffs"
API_LICENSE = "A"  # licenseClass of an API member: keys, not a person
ROLE_HELP = (
    "the API member's security role cannot read Service Tickets: "
    "give it Service Desk > Service Tickets Inquire"
)


class ConnectWiseSetup(ConnectWiseClient):
    def _board_statuses(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(board, status) for every active status of every active board."""
        for board in self._list("/service/boards"):
            if board.get("inactiveFlag") or board.get("id") is None:
                continue
            for st in self._list(f"/service/boards/{int(board['id'])}/statuses"):
                if not st.get("inactive"):
                    yield board, st

    def list_statuses(self) -> list[StatusOption]:
        return [
            StatusOption(
                id=str(st["id"]), name=str(st.get("name") or ""), group=str(board.get("name") or "")
            )
            for board, st in self._board_statuses()
        ]

    def boards_holding(self, statuses: Sequence[str]) -> list[int]:
        """The boards with a status of this name (any case): a ConnectWise status belongs to a
        board, and the same name on two boards is two statuses."""
        wanted = {s.strip().casefold() for s in statuses if s.strip()}
        return sorted(
            {
                int(board["id"])
                for board, st in self._board_statuses()
                if str(st.get("name") or "").strip().casefold() in wanted
            }
        )

    def list_members(self) -> list[PSAMember]:
        """Every member but API members, by the identifier callbacks name them with."""
        members = []
        for m in self._list("/system/members", fields=MEMBER_FIELDS):
            identifier = str(m.get("identifier") or "").strip()
            if not identifier or str(m.get("licenseClass") or "").upper() == API_LICENSE:
                continue
            name = " ".join(str(m[k]).strip() for k in ("firstName", "lastName") if m.get(k))
            members.append(
                PSAMember(
                    psa_id=identifier,
                    name=name or identifier,
                    email=str(m.get("primaryEmail") or m.get("officeEmail") or ""),
                    active=not m.get("inactiveFlag"),
                )
            )
        return members

    def install_webhook(
        self, callback_url: str, statuses: Sequence[str] = ()
    ) -> WebhookInstallation:
        """The narrowest ticket callbacks that still see every escalation: one at level
        "board" per board holding an escalation status (ConnectWise's "Ticket | Board" level:
        every save of a ticket on that board, so a ticket leaving the status is seen too).
        With no such board (no trigger yet, or names no board has) one "owner" callback, every
        ticket. Baton's other ticket callbacks at this URL are removed, so a changed trigger
        moves them; each kept one is repaired (active, self-suppressed)."""
        url = callback_url + ("&" if "?" in callback_url else "?") + "recordId="
        host = urlsplit(callback_url).hostname or callback_url
        boards = self.boards_holding(statuses) if statuses else []
        wanted = {("board", board) for board in boards} or {("owner", 1)}
        existing = self._list(
            "/system/callbacks", conditions=f"url contains {condition_string(host)}"
        )
        kept: dict[tuple[str, int], dict[str, Any]] = {}
        for cb in existing:
            if cb.get("url") not in (url, callback_url) or str(cb.get("type")).lower() != "ticket":
                continue
            scope = (str(cb.get("level") or "").lower(), int_or_none(cb.get("objectId")) or 0)
            if scope[0] == "owner":
                scope = ("owner", 1)  # 0 or 1 both mean "everything"
            if scope not in wanted or scope in kept:
                self._call("DELETE", f"/system/callbacks/{int(cb['id'])}")
                continue
            if cb.get("inactiveFlag") or not cb.get("isSelfSuppressedFlag"):
                repair = [
                    {"op": "replace", "path": "inactiveFlag", "value": False},
                    {"op": "replace", "path": "isSelfSuppressedFlag", "value": True},
                ]
                self._call("PATCH", f"/system/callbacks/{int(cb['id'])}", json=repair)
            kept[scope] = cb
        made: list[dict[str, Any]] = []
        for level, object_id in sorted(wanted - kept.keys()):
            body = {
                "url": url,
                "objectId": object_id,
                "type": "ticket",
                "level": level,
                "description": CALLBACK_DESCRIPTION,
                "inactiveFlag": False,
                "isSelfSuppressedFlag": True,  # our own note writes must not call us back
                "payloadVersion": "3.0.0",
            }
            made.append(self._json(self._call("POST", "/system/callbacks", json=body)))
            kept[(level, object_id)] = made[-1]
        entries = [kept[scope] for scope in sorted(kept)]
        return WebhookInstallation(
            id=",".join(str(cb.get("id")) for cb in entries),
            url=str(entries[0].get("url") or url),
            active=all(not cb.get("inactiveFlag") for cb in made),  # the kept were repaired
            created=bool(made),
        )

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
