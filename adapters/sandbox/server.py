"""Serving the sandbox PSA over real HTTP: standalone, in a test thread, or embedded.

One WSGI app per vendor dialect, each mounted at its vendor's key (`/connectwise`, ...), under
the sandbox's own pages. `python -m adapters.sandbox --port 8800` runs it standalone.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server

from adapters.sandbox.store import SandboxStore
from adapters.sandbox.ui import create_ui_app
from adapters.sandbox.vendor import dialects, sandbox_of


def sandbox_wsgi_app(store: SandboxStore, public_base: str) -> DispatcherMiddleware:
    """Every dialect under one root; `public_base` is the URL that root is reachable at."""
    public_base = public_base.rstrip("/")
    mounts = {
        f"/{key}": sandbox_of(spoken).create_app(store, f"{public_base}/{key}")
        for key, spoken in dialects().items()
    }
    return DispatcherMiddleware(create_ui_app(store), mounts)


class SandboxServer:
    """A sandbox PSA listening on a real port, served from a daemon thread."""

    def __init__(self, store: SandboxStore, host: str = "127.0.0.1", port: int = 0):
        self.store = store
        self._server: BaseWSGIServer = make_server(host, port, NotFound(), threaded=True)
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"http://{netloc}:{self._server.server_port}"
        # The port is known only once bound, and the apps need their public URL.
        self._server.app = sandbox_wsgi_app(store, self.url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-psa", daemon=True
        )  # a short poll interval makes stop() quick
        self._thread.start()

    def site(self, dialect: str) -> str:
        """Where a dialect is served: what its vendor's connection calls the site."""
        return f"{self.url}/{dialect}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_sandbox(store: SandboxStore, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    return SandboxServer(store, host, port)


def main(argv: list[str] | None = None) -> None:
    spoken = dialects()
    parser = argparse.ArgumentParser(
        description=f"Run the sandbox PSA ({', '.join(v.name for v in spoken.values())})."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--corpus", help="tickets .jsonl to seed from (default: the bundled one)")
    args = parser.parse_args(argv)
    store = SandboxStore(args.corpus)
    server = serve_sandbox(store, args.host, args.port)
    print(f"Sandbox PSA at {server.url} ({len(store.tickets())} tickets)")
    for key, vendor in spoken.items():
        for line in sandbox_of(vendor).describe(server.site(key)):
            print(f"  {line}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
