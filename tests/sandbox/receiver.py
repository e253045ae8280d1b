"""A webhook endpoint on loopback for the sandbox tests: it records what each dialect sends."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class Receiver:
    """A webhook endpoint on loopback that records what it is sent."""

    def __init__(self, status: int = 200):
        self.status = status
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self._arrived = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def _app(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        with self._arrived:
            self.received.append((request.url, dict(request.headers), request.get_data()))
            self._arrived.notify_all()
        return Response("", status=self.status)(environ, start_response)

    def wait(self, n: int, timeout: float = 5.0) -> list[tuple[str, dict[str, str], bytes]]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= n, timeout)
            return list(self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()
