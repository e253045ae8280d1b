"""The panel in Debian's Chromium: Baton on a live server, the sandbox PSA, the fake model, an
RQ worker.

Members sign in the way people do: an admin makes a sign-in link and the browser opens it.
Every page fails its test on a JavaScript error or a Content-Security-Policy violation.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from adapters.sandbox import SandboxStore, serve_sandbox
from connector.queue import QUEUE_NAMES, ThreadWorker, queue
from tests.conftest import ADMIN_TOKEN
from tests.integration.pipeline import connect_sandbox_tenant

# Every browser test saves its screens; into docs/ only when asked
# (BATON_SCREENSHOTS=docs/screenshots ./dev test tests/browser), so a test run leaves the
# checkout as it was.
REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPOSITORY / os.environ.get("BATON_SCREENSHOTS", "test-results/screenshots")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POD = {"width": 400, "height": 760}  # a ConnectWise pod
TAB = {"width": 1280, "height": 860}  # a full browser tab

MEMBERS = {
    "sam": ("sseniorr", "Sam Senior", "sam@example.com", "engineer"),
    "dana": ("dlead", "Dana Lead", "dana@example.com", "engineer"),
    "kiran": ("kpatel", "Kiran Patel", "kiran@example.com", "technician"),
}


def listening(page) -> None:
    """Until the page's live stream is open: an escalation published before it is only
    found by the page's next re-read, not announced as arriving."""
    expect(page.locator("html")).to_have_attribute("data-live", "open")


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class BurstWorker:
    """A real RQ worker in a thread: burst after burst until stopped (no job waits for it)."""

    def __init__(self, app):
        self.app = app
        self.connection = app.extensions["baton"].redis
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)

    def _run(self) -> None:
        queues = [queue(self.connection, name) for name in QUEUE_NAMES]
        while not self.stopping.is_set():
            ThreadWorker(queues, connection=self.connection, app=self.app).work(
                burst=True, logging_level="WARNING"
            )
            self.stopping.wait(0.1)

    def start(self) -> BurstWorker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


@dataclass
class Panel:
    app: Any
    url: str
    store: SandboxStore
    browser: Browser
    fake: Any  # the fake Anthropic server
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    contexts: list[BrowserContext] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def admin(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        return session

    def api(self, who: str, path: str) -> dict[str, Any]:
        token = self.members[who]["token"]
        answer = requests.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def page(self, who: str | None, *, viewport=TAB, color_scheme="light", **options) -> Page:
        """A new browser context; signed in as `who` through a sign-in link (None: signed out)."""
        context = self.browser.new_context(
            viewport=viewport, color_scheme=color_scheme, base_url=self.url, **options
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.url)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"{who}: {error}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"{who}: {msg.text}")
                if "Content Security Policy" in msg.text
                else None
            ),
        )
        if who is not None:
            member = self.members[who]
            link = self.admin().post(
                f"{self.url}/api/v1/admin/tenants/acme/members/{member['id']}/sign-in-link"
            )
            assert link.status_code == 201, link.text
            page.goto(link.json()["url"])
            page.wait_for_url("**/panel/")
        return page

    def escalate(self, ticket_id: int, member: str = "kpatel", reason: str | None = None) -> int:
        """Escalate in the sandbox PSA; its webhook records the escalation. Returns its id."""
        from sqlalchemy import select

        from connector.db import session
        from connector.models import Escalation

        self.store.escalate(ticket_id, member=member, reason=reason)

        def recorded() -> int | None:
            with self.app.app_context():
                found = session.scalar(
                    select(Escalation.id).where(Escalation.ticket_id == str(ticket_id))
                )
                session.remove()
                return found

        return wait_for(recorded, what=f"the escalation of ticket {ticket_id}")

    def handoff_state(self, escalation_id: int) -> str:
        return self.api("sam", f"/api/v1/escalations/{escalation_id}")["handoff"]["state"]

    def wait_terminal(self, escalation_id: int, timeout: float = 20.0) -> str:
        def terminal() -> str | None:
            state = self.handoff_state(escalation_id)
            if state in ("ready", "fallback"):
                return state
            time.sleep(0.2)
            return None

        return wait_for(terminal, timeout, what=f"escalation {escalation_id}'s handoff")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: a test module that runs its own sync_playwright (the pilot
    # report's) cannot start one while another is open in the same thread.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def sandbox() -> Iterator[tuple[SandboxStore, Any]]:
    store = SandboxStore()
    server = serve_sandbox(store)
    yield store, server
    server.stop()


@pytest.fixture
def panel(app_factory, live_server_factory, sandbox, browser, fake_anthropic) -> Iterator[Panel]:
    store, server = sandbox
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    app.config["BATON_SSE_HEARTBEAT_SECONDS"] = 1
    panel = Panel(app=app, url=live.url, store=store, browser=browser, fake=fake_anthropic)
    admin = panel.admin()
    connect_sandbox_tenant(admin, live.url, store, server)
    for key, (psa_id, name, email, role) in MEMBERS.items():
        member = admin.post(
            f"{live.url}/api/v1/admin/tenants/acme/members",
            json={"psa_member_id": psa_id, "name": name, "email": email, "role": role},
        )
        assert member.status_code == 201, member.text
        panel.members[key] = member.json()
    worker = BurstWorker(app).start()
    yield panel
    for context in panel.contexts:
        context.close()
    worker.stop()
    assert not panel.problems, panel.problems


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def shot(page: Page, section: str, name: str) -> None:
    """One section of a page, without the passing toasts over it."""
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(section).screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")
