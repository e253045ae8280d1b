"""Who is calling: the admin token, and members by bearer token (panel sessions build on it)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from sqlalchemy import select

from connector import tenants as tenant_ops
from connector.db import session
from connector.errors import APIError
from connector.models import Member
from connector.security import hash_token, tokens_equal

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_admin_token(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        expected = current_app.extensions["baton"].settings.admin_token
        if not tokens_equal(bearer_token(), expected):
            raise APIError(
                401, "unauthorized", "a valid admin token is required (Authorization: Bearer ...)"
            )
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def member_from_token(token: str | None) -> Member | None:
    if not token:
        return None
    return session.scalar(select(Member).where(Member.token_hash == hash_token(token)))


def current_member() -> Member:
    """The calling member, or 401. Cached on `g` for the request."""
    member = g.get("member")
    if member is None:
        member = member_from_token(bearer_token())
        if member is None:
            loader = current_app.extensions["baton"].session_member_loader
            member = loader() if loader else None
        if member is None:
            raise APIError(
                401, "unauthorized", "sign in first: a member token or panel session is required"
            )
        refuse_deactivated(member)
        g.member = member
    return member


def refuse_deactivated(member: Member) -> None:
    """403 for a member the PSA has deactivated: whoever leaves the PSA leaves Baton too."""
    if member.deactivated:
        psa = tenant_ops.psa_vendor(member.tenant).name
        raise APIError(
            403,
            "member_deactivated",
            f"{member.name} is deactivated in {psa}; Baton lets them in again once {psa} "
            "has them active (ask your Baton admin)",
        )


def require_senior(member: Member) -> None:
    if not member.is_senior:
        raise APIError(403, "forbidden", "only engineers and admins can do this")


def require_admin(member: Member) -> None:
    if member.role != "admin":
        raise APIError(403, "forbidden", "only admins can do this")
