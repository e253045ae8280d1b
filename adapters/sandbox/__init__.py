"""A simulated PSA for the demo and the end-to-end tests, served over real HTTP.

It speaks ConnectWise's REST dialect and fires its signed callbacks, seeded with the
escalation corpus, so the real ConnectWise adapter talks to it exactly as to a real site.
"""

from adapters.connectwise.sandbox.app import sandbox_member_hash
from adapters.sandbox.adapter import (
    SANDBOX_CLIENT_ID,
    SANDBOX_COMPANY,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connect,
)
from adapters.sandbox.server import SandboxServer, sandbox_wsgi_app, serve_sandbox
from adapters.sandbox.store import SandboxStore

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_COMPANY",
    "SANDBOX_PRIVATE_KEY",
    "SANDBOX_PUBLIC_KEY",
    "SandboxServer",
    "SandboxStore",
    "connect",
    "sandbox_member_hash",
    "sandbox_wsgi_app",
    "serve_sandbox",
]
