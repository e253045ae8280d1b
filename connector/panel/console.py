"""The admin console page: /panel/admin, for the admins of the member's tenant only.

A shell on the panel's base template; admin.js does everything through the JSON API
(connector/api/console.py and the notification, analytics and sign-in link endpoints), so all of
it stays possible without the page. Others get 403 and a page that says only that.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from connector import tenants as tenant_ops
from connector.auth import current_member
from connector.errors import APIError
from connector.panel.policy import page_headers

bp = Blueprint("console_page", __name__, template_folder="templates")


@bp.get("/panel/admin")
def admin_console():
    try:
        member = current_member()
    except APIError as exc:
        refused = "Sign in to Baton first: open the panel in your PSA, or use your sign-in link."
        return render_template("admin.html", refused=refused), exc.status, page_headers(None)
    if member.role != "admin":
        refused = "The admin console is for your tenant's Baton admins."
        page = render_template("admin.html", refused=refused, member=member)
        return page, 403, page_headers(member.tenant)
    public_url = current_app.extensions["baton"].settings.public_url
    page = render_template(
        "admin.html",
        refused=None,
        member=member,
        tenant=member.tenant,
        psa=tenant_ops.psa_vendor(member.tenant),
        public_url=public_url,
    )
    return page, 200, page_headers(member.tenant)
