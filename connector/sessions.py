"""Panel sessions: who is looking at the panel inside the PSA's iframe.

The cookie is Flask's signed session holding the member id and a CSRF token. It must be
SameSite=None to reach the iframe, so a browser sends it on cross-site requests too: every
cookie-authenticated state-changing request carries the token in `X-Baton-CSRF`. Bearer-token
callers are not browsers riding on ambient cookies and need no such header.

Two ways in: the PSA vouches for the member (a proof its frame hands the panel, or puts in the
panel's URL, checked server-side where the vendor's identity method allows it), or a signed,
expiring, once-only sign-in link that an admin hands out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask, Request, current_app, request
from flask import session as cookie
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update

from adapters.base import AdapterError, AuthenticationFailed, ProvesMembers
from connector import tenants as tenant_ops
from connector.auth import refuse_deactivated
from connector.db import session, utcnow
from connector.errors import APIError
from connector.models import Member, SignInLink, Tenant
from connector.security import hash_token

CSRF_HEADER = "X-Baton-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_LIFETIME = timedelta(days=14)  # refreshed on each request: an active panel stays in
LINK_LIFETIME = timedelta(days=7)
LINK_MAX_LIFETIME = timedelta(days=30)
LINK_SALT = "baton-sign-in-link"
VERIFIED_TTL_SECONDS = 300  # spare the PSA: one check per proof every five minutes


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie session, which builds its signer for every request before it
    looks for a cookie; most requests are the PSA's webhooks, and they carry none."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()  # what Flask's own answers when there is no cookie
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = CookieSessions()
    app.config.update(
        SESSION_COOKIE_NAME="baton_session",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="None",  # the panel lives in the PSA's iframe
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.extensions["baton"].session_member_loader = session_member


# --- the session ------------------------------------------------------------------------------


def session_member() -> Member | None:
    """The member the cookie names, or None; raises 403 on a state change without the token."""
    member_id = cookie.get("member_id")
    if member_id is None:
        return None
    member = session.get(Member, member_id)
    if member is None or not _issued_to(member):
        cookie.clear()  # removed, or their sessions were ended: the cookie means nothing any more
        return None
    if request.method not in SAFE_METHODS:
        check_csrf()
    return member


def _issued_to(member: Member) -> bool:
    issued_key = str(cookie.get("session_key", ""))
    return member.tenant_id == cookie.get("tenant_id") and hmac.compare_digest(
        issued_key.encode(), member.session_key.encode()
    )


def check_csrf() -> None:
    expected = cookie.get("csrf")
    given = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), str(expected).encode()):
        raise APIError(
            403,
            "csrf_failed",
            f"a panel session's changes need the {CSRF_HEADER} header (csrf_token of /api/v1/me)",
        )


def sign_in(member: Member) -> str:
    """Start a fresh session for the member (nothing of a previous one survives)."""
    cookie.clear()
    cookie.permanent = True
    cookie["member_id"] = member.id
    cookie["tenant_id"] = member.tenant_id
    cookie["session_key"] = member.session_key
    cookie["csrf"] = secrets.token_urlsafe(32)
    return str(cookie["csrf"])


def sign_out() -> None:
    if "member_id" in cookie:
        check_csrf()
    cookie.clear()


def csrf_token() -> str | None:
    token = cookie.get("csrf")
    return str(token) if token and "member_id" in cookie else None


# --- the PSA vouches for the member ------------------------------------------------------------


def verify_psa_member(tenant: Tenant, member_id: str, proof: str, context: str) -> Member:
    """Check the proof with the PSA and map its identifier to one of the tenant's members.

    400 when the vendor has no verifiable identity, 401 when the PSA says no, 403 when Baton does
    not know the member, 502 when the PSA cannot answer.
    """
    if tenant_ops.psa_vendor(tenant).identity.method == "sign_in_link":
        raise APIError(
            400,
            "no_panel_identity",
            "this PSA has no verifiable panel identity; use a sign-in link",
        )
    verify = cast(ProvesMembers, tenant_ops.adapter(tenant)).verify_member
    redis = current_app.extensions["baton"].redis
    # Only a digest of the proof is a key: the proof is a credential.
    digest = hashlib.sha256(f"{member_id.lower()}\0{proof}".encode()).hexdigest()
    cache_key = f"baton:member-verified:{tenant.id}:{digest}"
    cached = redis.get(cache_key)
    if cached is not None:
        identifier = cached.decode() if isinstance(cached, bytes) else str(cached)
    else:
        try:
            identifier = verify(member_id, proof, context or "")
        except AuthenticationFailed as exc:
            raise APIError(401, "not_verified", str(exc)) from None
        except AdapterError as exc:
            raise APIError(502, "psa_error", f"the PSA could not confirm you: {exc}") from None
        redis.set(cache_key, identifier, ex=VERIFIED_TTL_SECONDS)
    member = session.scalar(
        select(Member).where(
            Member.tenant_id == tenant.id,
            func.lower(Member.psa_member_id) == identifier.lower(),
        )
    )
    if member is None:
        raise APIError(
            403,
            "unknown_member",
            f"{identifier} is not a Baton member of {tenant.name}: ask your Baton admin to add you",
        )
    refuse_deactivated(member)
    return member


# --- sign-in links: signed, expiring, exchanged once ------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def create_link(member: Member, lifetime: timedelta = LINK_LIFETIME) -> tuple[str, datetime]:
    """A new link for the member: the URL is returned this once, only a hash is stored."""
    refuse_deactivated(member)
    lifetime = min(lifetime, LINK_MAX_LIFETIME)
    secret = secrets.token_urlsafe(32)
    expires_at = utcnow() + lifetime
    session.add(
        SignInLink(member_id=member.id, token_hash=hash_token(secret), expires_at=expires_at)
    )
    session.commit()
    token = _serializer().dumps(secret)
    public_url = current_app.extensions["baton"].settings.public_url
    return f"{public_url}/panel/sign-in?token={token}", expires_at


def revoke_links(member: Member) -> int:
    """Withdraw the member's open links (unused, unexpired); answers how many."""
    now = utcnow()
    revoked: int = session.execute(  # type: ignore[attr-defined]
        update(SignInLink)
        .where(
            SignInLink.member_id == member.id,
            SignInLink.used_at.is_(None),
            SignInLink.revoked_at.is_(None),
            SignInLink.expires_at > now,
        )
        .values(revoked_at=now)
    ).rowcount
    session.commit()
    return revoked


@dataclass
class LinkRefused(Exception):
    status: int
    message: str

    def __str__(self) -> str:
        return self.message


ASK_ADMIN = "Ask your Baton admin for a new sign-in link."


def redeem_link(token: str) -> Member:
    """Exchange a link for its member, once: one conditional UPDATE on used_at decides."""
    try:
        secret = _serializer().loads(token, max_age=int(LINK_MAX_LIFETIME.total_seconds()))
    except SignatureExpired:
        raise LinkRefused(410, f"This sign-in link has expired. {ASK_ADMIN}") from None
    except BadSignature:
        raise LinkRefused(400, f"This sign-in link is not valid. {ASK_ADMIN}") from None
    link = session.scalar(select(SignInLink).where(SignInLink.token_hash == hash_token(secret)))
    member = session.get(Member, link.member_id) if link else None
    if link is None or member is None:  # a removed member's links went with them
        raise LinkRefused(400, f"This sign-in link is not valid. {ASK_ADMIN}")
    if member.deactivated:
        psa = tenant_ops.psa_vendor(member.tenant).name
        raise LinkRefused(403, f"Your {psa} account is deactivated, so Baton is closed to it too.")
    now = utcnow()
    won: int = session.execute(  # type: ignore[attr-defined]
        update(SignInLink)
        .where(
            SignInLink.id == link.id,
            SignInLink.used_at.is_(None),
            SignInLink.revoked_at.is_(None),
            SignInLink.expires_at > now,
        )
        .values(used_at=now)
    ).rowcount
    session.commit()
    if not won:
        session.refresh(link)
        if link.revoked_at is not None:
            raise LinkRefused(410, f"This sign-in link was withdrawn. {ASK_ADMIN}")
        if link.used_at is not None:
            raise LinkRefused(
                410,
                "This sign-in link has already been used; each link works once. "
                "If that was not you, tell your Baton admin. " + ASK_ADMIN,
            )
        raise LinkRefused(410, f"This sign-in link has expired. {ASK_ADMIN}")
    return member


def member_view(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "email": member.email,
        "role": member.role,
        "psa_member_id": member.psa_member_id,
    }
