"""The Anthropic client, the wall-clock deadline over a call, and one ai_calls row per call.

SDK retries are off (max_retries=0): the 2.x SDK sleeps for any Retry-After without a cap, so
retries happen here, only while the deadline leaves room for another attempt.
"""

from __future__ import annotations

import functools
import logging
import os
import queue as thread_queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anthropic
import httpx2

from connector.db import session
from connector.models import AICall

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MIN_ATTEMPT_SECONDS = 1.0  # not worth starting an attempt with less time than this left
RETRYABLE = (
    anthropic.RateLimitError,
    anthropic.InternalServerError,  # 500, 503, 504 and 529 (OverloadedError)
    anthropic.APIConnectionError,  # includes APITimeoutError
)


@dataclass
class CallResult:
    message: Any | None  # anthropic.types.Message on success
    outcome: str  # ok | timeout | rate_limited | overloaded | api_error | no_api_key | ...
    error: str | None
    latency_ms: int
    attempts: int

    @property
    def ok(self) -> bool:
        return self.message is not None


def api_key_configured() -> bool:
    return bool(os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"))


def make_client() -> anthropic.Anthropic:
    """One client per process and configuration: building one costs an SSL context (a
    profile of the workers showed 44% of their CPU there)."""
    return _client(
        os.environ.get("ANTHROPIC_BASE_URL"),
        os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"),
    )


def prepare_client() -> None:
    """Build the client before the first call, which would otherwise wait for it (0.2 s)."""
    if api_key_configured():
        make_client()


@functools.lru_cache(maxsize=8)
def _client(base_url: str | None, credential: str | None) -> anthropic.Anthropic:
    # ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL are read by the SDK itself; they key the cache.
    return anthropic.Anthropic(max_retries=0)


def _outcome_for(exc: BaseException) -> str:
    if isinstance(exc, anthropic.APITimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, anthropic.RateLimitError):
        return "rate_limited"
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code == 529:
        return "overloaded"
    if isinstance(exc, anthropic.APIConnectionError):
        return "unreachable"
    if isinstance(exc, anthropic.APIStatusError):
        return f"http_{exc.status_code}"
    return "error"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, anthropic.APIStatusError):
        message = exc.message if isinstance(exc.message, str) else ""
        return f"{type(exc).__name__} ({exc.status_code}): {message[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _retry_wait(exc: BaseException, attempt: int) -> float:
    response = getattr(exc, "response", None)
    if response is not None:
        for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            value = response.headers.get(header)
            if value:
                try:
                    return max(0.0, float(value) * scale)
                except ValueError:
                    pass
    return min(0.5 * 2 ** (attempt - 1), 8.0) * random.uniform(0.75, 1.0)


def _with_hard_timeout(func: Callable[[], Any], seconds: float) -> Any:
    """Run `func` in a daemon thread; give up after `seconds` even if a read trickles on."""
    box: thread_queue.Queue[tuple[bool, Any]] = thread_queue.Queue(maxsize=1)

    def run() -> None:
        try:
            box.put((True, func()))
        except BaseException as exc:
            box.put((False, exc))

    threading.Thread(target=run, name="baton-ai-call", daemon=True).start()
    try:
        ok, value = box.get(timeout=seconds)
    except thread_queue.Empty:
        raise TimeoutError(f"no answer within {seconds:.1f}s") from None
    if ok:
        return value
    raise value


def call_model(
    send: Callable[[anthropic.Anthropic, httpx2.Timeout], Any], *, deadline_seconds: float
) -> CallResult:
    """Call `send(client, timeout)` until it answers, fails for good, or the deadline nears."""
    started = time.monotonic()
    if not api_key_configured():
        return CallResult(None, "no_api_key", "ANTHROPIC_API_KEY is not set", 0, 0)
    client = make_client()
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline_seconds - (time.monotonic() - started)
        timeout = httpx2.Timeout(remaining, connect=min(5.0, remaining))
        try:
            message = _with_hard_timeout(partial(send, client, timeout), remaining + 0.25)
            return CallResult(message, "ok", None, _elapsed_ms(started), attempt)
        except (*RETRYABLE, TimeoutError) as exc:
            wait = _retry_wait(exc, attempt)
            left = deadline_seconds - (time.monotonic() - started)
            retry = (
                attempt < MAX_ATTEMPTS
                and not isinstance(exc, anthropic.APITimeoutError | TimeoutError)
                and wait + MIN_ATTEMPT_SECONDS < left
            )
            if not retry:
                return CallResult(
                    None, _outcome_for(exc), _describe(exc), _elapsed_ms(started), attempt
                )
            log.info(
                "model call retry", extra={"fields": {"attempt": attempt, "wait_s": round(wait, 2)}}
            )
            time.sleep(wait)
        except anthropic.APIError as exc:
            return CallResult(
                None, _outcome_for(exc), _describe(exc), _elapsed_ms(started), attempt
            )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def usage_tokens(message: Any) -> tuple[int, int]:
    """Input counts cache reads and writes too; output includes thinking (billed as output)."""
    usage = getattr(message, "usage", None)
    if usage is None:
        return 0, 0
    tokens_in = (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", 0) or 0)
        + (getattr(usage, "cache_read_input_tokens", 0) or 0)
    )
    return tokens_in, usage.output_tokens or 0


def record_call(
    *,
    purpose: str,
    model: str,
    result: CallResult,
    outcome: str | None = None,
    error: str | None = None,
    tenant_id: int | None,
    escalation_id: int | None,
) -> AICall:
    """One row per call Baton made (not for calls never sent, e.g. no API key)."""
    tokens_in, tokens_out = usage_tokens(result.message) if result.message is not None else (0, 0)
    row = AICall(
        tenant_id=tenant_id,
        escalation_id=escalation_id,
        purpose=purpose,
        model=model,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        latency_ms=result.latency_ms,
        outcome=outcome or result.outcome,
        error=error if error is not None else result.error,
    )
    session.add(row)
    session.commit()
    return row


def unusable(result: CallResult) -> tuple[str, str | None] | None:
    """(outcome, problem) when the call gave no usable answer: failed, refused or cut off."""
    if result.message is None:
        return result.outcome, result.error
    stop = getattr(result.message, "stop_reason", None)
    if stop == "refusal":
        return "refusal", "the model declined to answer"
    if stop == "max_tokens":
        return "truncated", "the answer was cut off at max_tokens"
    return None


def text_of(message: Any) -> str:
    """The answer's text blocks joined; thinking blocks come first on today's models, skip them."""
    return "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
