"""How an agent inside Halo is proven: the custom tab's signed agent parameter.

hmac = base64(HMAC-SHA256(the tab's iframe secret, agent_id)). Only the agent id is signed and
nothing says when: a captured tab address stays valid, so the agent is looked up too (a
disabled agent is refused) and the proof is all Baton takes from the address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from adapters.base import AuthenticationFailed, NotFound
from adapters.halopsa.client import HaloClient
from adapters.values import lower_keys, numeric


def agent_signature(secret: str, agent_id: str) -> str:
    """What Halo appends as hmac= for this agent."""
    digest = hmac.new(secret.encode(), agent_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _digest(proof: str) -> bytes:
    """The proof's bytes, in base64 or its URL-safe form, padded or not. A "+" that the sender
    did not encode in the address reads as a space."""
    text = proof.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


class HaloIdentity(HaloClient):
    def verify_member(self, member_id: str, proof: str, context: str = "") -> str:
        """The agent's id if the tab's signature holds and Halo has the agent enabled."""
        agent_id = member_id.strip()
        if not self.tab_secret:
            raise AuthenticationFailed(
                "Halo's custom tab secret is not set in Baton: use a sign-in link"
            )
        if not numeric(agent_id) or not proof:
            raise AuthenticationFailed("Halo sign-in needs the tab's agent_id and hmac")
        expected = base64.b64decode(agent_signature(self.tab_secret, agent_id))
        if not hmac.compare_digest(expected, _digest(proof)):
            raise AuthenticationFailed(f"Halo did not sign agent {agent_id} (wrong tab secret?)")
        try:
            agent = lower_keys(self._object(f"/Agent/{agent_id}"))
        except NotFound as exc:
            raise AuthenticationFailed(f"Halo has no agent {agent_id}", status=exc.status) from exc
        if agent.get("isdisabled"):
            raise AuthenticationFailed(f"Halo agent {agent_id} is disabled")
        return agent_id
