"""The pilot report in Debian's Chromium: an admin signed in with a sign-in link sees the two
figures side by side, each with its n, on the seeded set of tests/integration/test_analytics.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from tests.integration.test_analytics import PRICES, seed

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "report.png"


@pytest.fixture
def report_site(app_factory, live_server_factory, admin_headers):
    app = app_factory(prices=PRICES)
    client = app.test_client()
    seeded = seed(app, client, admin_headers)
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    # pilot week 8 reached today, a threshold the 0.0875 hours a week clears: "keep"
    started = (seeded["now"] - timedelta(days=56)).date().isoformat()
    answer = client.put(
        "/api/v1/tenant/pilot",
        json={"pilot_started_on": started, "verdict_threshold_hours": 0.08},
        headers=seeded["admin"],
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    me = requests.get(f"{live.url}/api/v1/me", headers=seeded["admin"], timeout=10).json()
    link = requests.post(
        f"{live.url}/api/v1/admin/tenants/acme/members/{me['member']['id']}/sign-in-link",
        json={},
        headers=admin_headers,
        timeout=10,
    )
    assert link.status_code == 201, link.text
    return live, link.json()["url"], seeded


def test_report_shows_both_figures_side_by_side_with_their_n(report_site):
    live, sign_in_url, _ = report_site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1200})
            page.goto(sign_in_url)  # exchanged once for the session cookie
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def console(msg) -> None:
                if msg.type == "error" and "favicon" not in msg.location.get("url", ""):
                    errors.append(msg.text)

            page.on("console", console)
            page.goto(f"{live.url}/panel/report")
            expect(page.locator("#report")).to_have_attribute("data-loaded", "true")

            # the in-product figure: median 240 s over n = 5
            expect(page.locator("#ttfa-median")).to_have_text("4.0 min")
            expect(page.locator("#ttfa-n")).to_have_text(re.compile(r"^n = 5 escalations"))
            # the claim against the baseline: 10 - 4 = 6 minutes, with both n
            expect(page.locator("#recovered-value")).to_have_text("6.0 min")
            expect(page.locator("#recovered-n")).to_have_text(
                "baseline n = 5 (median 10.0 min); in-product n = 5"
            )
            # side by side: same row, the in-product figure on the left
            left = page.locator("#figure-ttfa").bounding_box()
            right = page.locator("#figure-recovered").bounding_box()
            assert left and right
            assert abs(left["y"] - right["y"]) < 2 and left["x"] + left["width"] <= right["x"]

            expect(page.locator("#verdict-outcome")).to_have_text("Keep")
            expect(page.locator("#ai-cost")).to_have_text(f"${43000 / 1e6 / 7:.4f}")
            expect(page.locator("#ai-input")).to_have_text(f"{7500 / 7:.0f}")
            # the chart: two weeks with data, the baseline as a line labelled with its n
            expect(page.locator("#chart svg rect.bar")).to_have_count(2)
            expect(page.locator("#baseline-label")).to_have_text(
                "manual baseline median 10.0 min (n = 5)"
            )
            expect(page.locator("#weeks tbody tr")).to_have_count(8)
            href = page.locator("#csv").get_attribute("href")
            assert href == "/api/v1/analytics/escalations.csv?days=56"
            csv_answer = page.request.get(f"{live.url}{href}")
            assert csv_answer.status == 200 and csv_answer.text().count("\n") == 8

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert errors == []
        finally:
            browser.close()


def test_report_refuses_a_visitor_without_a_session(report_site):
    live, _, _ = report_site
    answer = requests.get(f"{live.url}/panel/report", timeout=10)
    assert answer.status_code == 401
    assert "Sign in to Baton first" in answer.text
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
