"""How a member inside ConnectWise is proven: the Hosted API member hash."""

from __future__ import annotations

from adapters.base import AuthenticationFailed, NotFound, PanelIdentity, PermissionDenied
from adapters.connectwise.client import ConnectWiseClient
from adapters.values import lower_keys

# The Hosted API's postMessage: the pod asks its parent for getMemberAuthentication and gets
# the member id, a memberHash that proves it (checked below) and a member context.
IDENTITY = PanelIdentity(
    method="frame_message",
    request="getMemberAuthentication",
    member_fields=("memberid", "memberId"),
    proof_field="memberHash",
    context_field="memberContext",
    origin_patterns=(
        r"^https://[a-z0-9-]+(\.[a-z0-9-]+)*\.myconnectwise\.net$",
        r"^https://[a-z0-9-]+(\.[a-z0-9-]+)*\.connectwisedev\.com$",
    ),
)


class ConnectWiseIdentity(ConnectWiseClient):
    def verify_member(self, member_id: str, proof: str, context: str = "") -> str:
        """The member's identifier if ConnectWise accepts the Hosted API memberHash (the proof);
        the member context is not needed for the Basic form used here."""
        member_id = member_id.strip()
        if not member_id or not proof or ":" in member_id:
            raise AuthenticationFailed("ConnectWise sign-in needs a member id and member hash")
        headers = self._auth(member_id, proof)
        url = f"{self.site}/{self._codebase()}apis/3.0/system/myMembers/info"
        try:
            info = lower_keys(self._json(self.http.request("GET", url, headers=headers)))
        except (AuthenticationFailed, PermissionDenied, NotFound) as exc:
            raise AuthenticationFailed(
                f"ConnectWise did not confirm member {member_id!r}", status=exc.status
            ) from exc
        identifier = str(info.get("identifier") or "")
        if identifier.lower() != member_id.lower():
            raise AuthenticationFailed(f"ConnectWise did not confirm member {member_id!r}")
        return identifier
