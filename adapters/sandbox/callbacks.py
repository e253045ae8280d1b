"""Delivering ConnectWise callbacks: the signature and a background sender with retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def content_signature(body: bytes, signing_key: str) -> str:
    """ConnectWise's x-content-signature: base64(HMAC-SHA256(SHA256(key), raw body))."""
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


class CallbackSender:
    """POSTs signed bodies from one daemon thread, in order; every attempt is recorded."""

    def __init__(self, store: SandboxStore, *, backoff: float = BACKOFF_SECONDS):
        self._store = store
        self._backoff = backoff
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def send(self, url: str, body: bytes) -> None:
        with self._start_lock:
            self._queue.put((url, body))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-callbacks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                url, body = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._start_lock:  # idle: let the thread end; send() starts a new one
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                self._deliver(url, body)
            except Exception:  # the sender thread must survive anything
                log.exception("sandbox callback to %s failed", url)

    def _deliver(self, url: str, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "x-content-signature": content_signature(body, self._store.signing_key),
        }
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
