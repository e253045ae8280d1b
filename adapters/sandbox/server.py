"""Serving the sandbox PSA over real HTTP: standalone, in a test thread, or embedded.

One WSGI app per vendor dialect, each mounted at its site root: `/connectwise` and
`/autotask`. `python -m adapters.sandbox.server --port 8800` runs it standalone.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server

from adapters.sandbox.adapter import SANDBOX_AUTOTASK_USERNAME
from adapters.sandbox.store import SandboxStore
from adapters.sandbox.ui import create_ui_app

CONNECTWISE_MOUNT = "/connectwise"
AUTOTASK_MOUNT = "/autotask"


def sandbox_wsgi_app(store: SandboxStore, public_base: str) -> DispatcherMiddleware:
    """Every dialect under one root; `public_base` is the URL that root is reachable at."""
    from adapters.autotask.sandbox.app import create_autotask_app
    from adapters.connectwise.sandbox.app import create_connectwise_app

    public_base = public_base.rstrip("/")
    connectwise = create_connectwise_app(store, public_base=public_base + CONNECTWISE_MOUNT)
    autotask = create_autotask_app(store, public_base=public_base + AUTOTASK_MOUNT)
    return DispatcherMiddleware(
        create_ui_app(store), {CONNECTWISE_MOUNT: connectwise, AUTOTASK_MOUNT: autotask}
    )


class SandboxServer:
    """A sandbox PSA listening on a real port, served from a daemon thread."""

    def __init__(self, store: SandboxStore, host: str = "127.0.0.1", port: int = 0):
        self.store = store
        self._server: BaseWSGIServer = make_server(host, port, NotFound(), threaded=True)
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"http://{netloc}:{self._server.server_port}"
        self.connectwise_site = self.url + CONNECTWISE_MOUNT
        self.autotask_site = self.url + AUTOTASK_MOUNT
        # The port is known only once bound, and the apps need their public URL.
        self._server.app = sandbox_wsgi_app(store, self.url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-psa", daemon=True
        )  # a short poll interval makes stop() quick
        self._thread.start()

    @property
    def autotask_zone_url(self) -> str:
        """What zone discovery answers for the sandbox API user: the Autotask dialect's root."""
        return self.autotask_site + "/ATServicesRest/"

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
    parser = argparse.ArgumentParser(description="Run the sandbox PSA (ConnectWise, Autotask).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--corpus", help="tickets .jsonl to seed from (default: the bundled one)")
    args = parser.parse_args(argv)
    store = SandboxStore(args.corpus)
    server = serve_sandbox(store, args.host, args.port)
    print(f"Sandbox PSA at {server.url} ({len(store.tickets())} tickets)")
    print(f"  ConnectWise site: {server.connectwise_site}  company: {store.company}")
    print(f"  public key: {store.public_key}  private key: {store.private_key}")
    print(f"  Autotask zone URL: {server.autotask_zone_url}  API user: {SANDBOX_AUTOTASK_USERNAME}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
