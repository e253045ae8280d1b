"""ConnectWise callbacks from the sandbox: signed like ConnectWise, sent to every CallbackEntry
that a ticket change concerns."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from urllib.parse import urlsplit

from adapters.connectwise.sandbox.render import ticket_json
from adapters.connectwise.sandbox.state import connectwise_state
from adapters.connectwise.setup import CALLBACK_DESCRIPTION
from adapters.sandbox.callbacks import CallbackSender
from adapters.sandbox.store import Listener, SandboxStore

CODEBASE = "v2025_1/"


def content_signature(body: bytes, signing_key: str) -> str:
    """ConnectWise's x-content-signature: base64(HMAC-SHA256(SHA256(key), raw body))."""
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def key_url(store: SandboxStore, public_base: str) -> str:
    """Where a callback's receiver fetches the signing key (Metadata.key_url)."""
    state = connectwise_state(store)
    return (
        f"{public_base}/{CODEBASE}/system/callbackkey/index.rails"
        f"?companyName={state.company}&id={state.signing_key_id}"
    )  # the double slash after the codebase is what real ConnectWise sends


def register_webhook(store: SandboxStore, callback_url: str) -> str | None:
    """What `install_webhook` creates, registered directly: owned by the API member, so its
    own note writes are suppressed. Callbacks are signed with the key at key_url: no secret."""
    api_member = store.member(store.api_member)
    connectwise_state(store).add_callback(
        {
            "url": callback_url + "?recordId=",
            "objectId": 1,
            "type": "ticket",
            "level": "owner",
            "description": CALLBACK_DESCRIPTION,
            "inactiveFlag": False,
            "isSelfSuppressedFlag": True,
            "payloadVersion": "3.0.0",
            "memberId": api_member.id if api_member else 0,
        }
    )
    return None


def callback_listener(store: SandboxStore, public_base: str) -> Listener:
    """The store listener that fires a ticket callback for each change, like ConnectWise."""
    state = connectwise_state(store)
    sender = CallbackSender(store)
    where = key_url(store, public_base)

    def fire(kind: str, ticket_id: int, actor: str) -> None:
        t = store.ticket(ticket_id)
        entity = json.dumps(ticket_json(store, t))
        board = store.board(t.board)
        actor_member = store.member(actor)
        for cb in state.callbacks():
            if cb["inactiveFlag"] or cb["type"] != "ticket":
                continue
            if cb["isSelfSuppressedFlag"] and actor_member and actor_member.id == cb["memberId"]:
                continue  # the callback's creator does not hear about its own changes
            scope = {"board": board.id, "status": board.status_id(t.status)}
            if cb["level"] in scope and cb["objectId"] != scope[cb["level"]]:
                continue
            body = json.dumps({
                "MessageId": str(uuid.uuid4()), "FromUrl": urlsplit(public_base).netloc,
                "CompanyId": state.company, "MemberId": actor, "Action": "updated",
                "Type": "ticket", "ID": ticket_id, "ProductInstanceId": state.product_instance_id,
                "PartnerId": state.partner_id, "Entity": entity, "Metadata": {"key_url": where},
                "CallbackObjectRecId": cb["id"],
            }).encode()  # fmt: skip
            headers = {
                "Content-Type": "application/json",
                "x-content-signature": content_signature(body, state.signing_key),
            }
            sender.send(cb["url"] + str(ticket_id), body, headers)

    return fire
