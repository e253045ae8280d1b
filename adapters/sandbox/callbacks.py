"""Delivering a dialect's webhooks: a background sender with retries, every attempt recorded.

The dialect signs each body its vendor's way and hands over the headers to send it with.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import requests

from adapters.sandbox.store import Delivery, SandboxStore

log = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0
BACKOFF_SECONDS = 0.25
IDLE_SECONDS = 5.0


class CallbackSender:
    """POSTs bodies from one daemon thread, in order; every attempt is recorded."""

    def __init__(self, store: SandboxStore, *, backoff: float = BACKOFF_SECONDS):
        self._store = store
        self._backoff = backoff
        self._queue: queue.Queue[tuple[str, bytes, dict[str, str]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        with self._start_lock:
            self._queue.put((url, body, headers))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-callbacks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                url, body, headers = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._start_lock:  # idle: let the thread end; send() starts a new one
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                self._deliver(url, body, headers)
            except Exception:  # the sender thread must survive anything
                log.exception("sandbox callback to %s failed", url)

    def _deliver(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            status, error = None, ""
            try:
                response = requests.post(
                    url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
                )
                status = response.status_code
            except requests.RequestException as exc:
                error = str(exc)
            self._store.record_delivery(Delivery(url, status, body, headers, attempt, error))
            if status is not None and 200 <= status < 300:
                return
            if attempt < ATTEMPTS:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        log.warning("sandbox callback to %s gave up after %d attempts", url, ATTEMPTS)
