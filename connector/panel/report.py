"""The pilot report page: /panel/report, for the engineers and admins of the member's tenant.

The page is a shell on the panel's base template; report.js reads /api/v1/analytics/* and
inserts every value as text.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from connector.auth import current_member
from connector.errors import APIError
from connector.metrics import DEFAULT_DAYS
from connector.panel.policy import page_headers

bp = Blueprint("report", __name__, template_folder="templates")


@bp.get("/panel/report")
def report():
    try:
        member = current_member()
    except APIError as exc:
        refused = "Sign in to Baton first: open the panel in your PSA, or use your sign-in link."
        return render_template("report.html", refused=refused), exc.status, page_headers(None)
    if not member.is_senior:
        refused = "The pilot report is for engineers and admins."
        page = render_template("report.html", refused=refused, member=member)
        return page, 403, page_headers(member.tenant)
    page = render_template(
        "report.html", refused=None, member=member, tenant=member.tenant, days=DEFAULT_DAYS
    )
    return page, 200, page_headers(member.tenant)
