"""A simulated PSA for the demo and the end-to-end tests, served over real HTTP.

It speaks each registered vendor's REST dialect (the dialects live in the vendors' folders)
and fires their signed webhooks, seeded with the escalation corpus, so a real vendor adapter
talks to it exactly as to a real site. As a vendor ("sandbox") it is that adapter, aimed here.
"""

from adapters.sandbox.server import SandboxServer, sandbox_wsgi_app, serve_sandbox
from adapters.sandbox.store import SandboxStore
from adapters.sandbox.vendor import VENDOR, connect, escalated_status, register_webhook

__all__ = [
    "VENDOR",
    "SandboxServer",
    "SandboxStore",
    "connect",
    "escalated_status",
    "register_webhook",
    "sandbox_wsgi_app",
    "serve_sandbox",
]
