"""The Anthropic client, the wall-clock deadline over a call, and one ai_calls row per call.

SDK retries are off (max_retries=0): the 2.x SDK sleeps for any Retry-After without a cap, so
retries happen here, only while the deadline leaves room for another attempt.

A streamed call is read in a daemon thread and handed over through a queue, so the deadline
covers the whole stream: the first byte and every gap between bytes are bounded, and a
stream that trickles on is given up at the deadline. An error that arrives mid-stream (the
SDK raises it with the 200 it came in, and does not retry it) is retried here only while
nothing of the answer has been shown.

The organisation's limits (requests and input tokens per minute, per model, configured) are
counted in Redis through `limits`, so every worker shares them: an attempt waits for room
inside the deadline, and one that would have to wait past it is not sent (the handoff falls
back, in time, as after a 429).
"""

from __future__ import annotations

import contextlib
import functools
import json
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
import limits
from flask import current_app, has_app_context
from limits.strategies import MovingWindowRateLimiter

from adapters.http import window_storage
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
# The API sends a stream's headers at once, and pings while the model thinks: silence this
# long is a stall, not a slow model.
FIRST_BYTE_SECONDS = 5.0
STREAM_GAP_SECONDS = 10.0
TICK_SECONDS = 0.1  # how often a waiting stream reader lets its listener flush
MID_STREAM_TRANSIENT = ("overloaded_error", "api_error")


@dataclass
class CallResult:
    message: Any | None  # anthropic.types.Message on success
    outcome: str  # ok | timeout | rate_limited | overloaded | api_error | no_api_key | ...
    error: str | None
    latency_ms: int
    attempts: int
    # Tokens billed for attempts that gave no message (a stream broken after it began).
    spent: tuple[int, int] = (0, 0)

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
    if isinstance(exc, anthropic.APIStatusError) and (
        exc.status_code == 529 or exc.type == "overloaded_error"
    ):
        return "overloaded"
    if isinstance(exc, anthropic.APIConnectionError):
        return "unreachable"
    if isinstance(exc, httpx2.TimeoutException):  # raised as is while a stream is read
        return "stalled"
    if isinstance(exc, httpx2.TransportError):
        return "dropped"
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


def estimated_input_tokens(request: dict[str, Any]) -> int:
    """What a request will count against an input-token limit, before it is sent (about 4
    characters a token; the API's own count would cost a request)."""
    text = json.dumps([request.get("system"), request.get("messages")], ensure_ascii=False)
    return len(text) // 4 + 1


def _wait_for_model_limits(model: str, tokens: int, until: float) -> bool:
    """Take one request and `tokens` input tokens of the model's per-minute limits, waiting
    while there is time; False when the room would come only after `until` (monotonic)."""
    if not has_app_context():  # a call made outside any app has no settings to hold it to
        return True
    runtime = current_app.extensions["baton"]
    rpm, tpm = runtime.settings.model_limits.get(model, (None, None))
    wanted = [
        (limits.RateLimitItemPerMinute(n), min(cost, n))  # one call bigger than a minute's
        for n, cost in ((rpm, 1), (tpm, tokens))  # tokens still goes, alone in its minute
        if n
    ]
    if not wanted:
        return True
    windows = MovingWindowRateLimiter(window_storage(runtime.settings.redis_url or "memory://"))
    while True:
        full = [w for w in wanted if not windows.test(w[0], "baton-model", model, cost=w[1])]
        if not full:
            # Another worker may have taken the room since the test: then wait again.
            if all(windows.hit(item, "baton-model", model, cost=cost) for item, cost in wanted):
                return True
            continue
        reset = max(windows.get_window_stats(i, "baton-model", model).reset_time for i, _ in full)
        wait = max(0.05, min(reset - time.time(), 1.0))  # the window moves: look again soon
        if time.monotonic() + wait > until:
            return False
        time.sleep(wait)


def call_model(
    send: Callable[[anthropic.Anthropic, httpx2.Timeout], Any],
    *,
    deadline_seconds: float,
    model: str = "",
    input_tokens: int = 0,
) -> CallResult:
    """Call `send(client, timeout)` until it answers, fails for good, or the deadline nears."""

    def attempt(client: anthropic.Anthropic, remaining: float) -> Any:
        timeout = httpx2.Timeout(remaining, connect=min(5.0, remaining))
        return _with_hard_timeout(partial(send, client, timeout), remaining + 0.25)

    def retryable(exc: BaseException) -> bool:
        # A timeout used up the attempt's whole share of the deadline.
        return isinstance(exc, RETRYABLE) and not isinstance(exc, anthropic.APITimeoutError)

    return _attempts(
        attempt, retryable, deadline_seconds=deadline_seconds, model=model, tokens=input_tokens
    )


def stream_model(
    open_stream: Callable[[anthropic.Anthropic, httpx2.Timeout], Any],
    on_text: Callable[[str], bool],
    *,
    deadline_seconds: float,
    model: str = "",
    input_tokens: int = 0,
) -> CallResult:
    """A streamed call: `open_stream(client, timeout)` gives the SDK's MessageStream manager;
    `on_text(text so far)` runs in this thread as the answer grows (and every TICK_SECONDS
    while it waits) and says whether anything has been shown. Once something has, a failure
    is final: a second attempt would rewrite what a senior may be reading."""
    reader = _StreamReader(open_stream, on_text)

    def retryable(exc: BaseException) -> bool:
        if reader.shown:
            return False
        if isinstance(exc, anthropic.APIStatusError) and exc.status_code == 200:
            return exc.type in MID_STREAM_TRANSIENT
        return isinstance(exc, (*RETRYABLE, TimeoutError, httpx2.TransportError))

    result = _attempts(
        reader.attempt, retryable, deadline_seconds=deadline_seconds, model=model,
        tokens=input_tokens,
    )  # fmt: skip
    result.spent = reader.spent
    return result


class _StreamReader:
    def __init__(
        self,
        open_stream: Callable[[anthropic.Anthropic, httpx2.Timeout], Any],
        on_text: Callable[[str], bool],
    ):
        self.open_stream = open_stream
        self.on_text = on_text
        self.shown = False
        self.spent = (0, 0)  # usage of the attempts that failed after their message began

    def attempt(self, client: anthropic.Anthropic, remaining: float) -> Any:
        """The final message; raises what the stream raised, or TimeoutError on a stall."""
        usage = [(0, 0)]  # the snapshot's usage so far, kept by the reading thread
        try:
            return self._attempt(client, remaining, usage)
        except BaseException:
            self.spent = (self.spent[0] + usage[-1][0], self.spent[1] + usage[-1][1])
            raise

    def _attempt(
        self, client: anthropic.Anthropic, remaining: float, usage: list[tuple[int, int]]
    ) -> Any:
        started = time.monotonic()
        box: thread_queue.Queue[tuple[str, Any]] = thread_queue.Queue()
        gap = min(STREAM_GAP_SECONDS, remaining)  # httpx2's read timeout: every gap
        timeout = httpx2.Timeout(gap, connect=min(5.0, remaining))

        opened_streams: list[Any] = []

        def read() -> None:
            try:
                with self.open_stream(client, timeout) as stream:
                    opened_streams.append(stream)
                    box.put(("open", None))
                    began = False
                    for event in stream:
                        began = began or event.type == "message_start"
                        if event.type in ("message_start", "message_delta"):
                            usage.append(usage_tokens(stream.current_message_snapshot))
                        if event.type == "text":
                            box.put(("text", event.snapshot))
                    box.put(("done", stream.get_final_message() if began else None))
            except BaseException as exc:
                box.put(("error", exc))

        threading.Thread(target=read, name="baton-ai-stream", daemon=True).start()
        until = started + remaining
        first_byte_by = started + min(FIRST_BYTE_SECONDS, remaining)
        opened, text = False, ""
        while True:
            limit = until if opened else first_byte_by
            left = limit - time.monotonic()
            if left <= 0:
                for stream in opened_streams:  # a stream that trickles on must not be read on
                    with contextlib.suppress(Exception):
                        stream.close()
                what = "the answer was not finished" if opened else "no first byte"
                raise TimeoutError(f"{what} after {time.monotonic() - started:.1f}s")
            try:
                kind, value = box.get(timeout=min(TICK_SECONDS, left))
            except thread_queue.Empty:
                if text:
                    self.shown = self.on_text(text)
                continue
            if kind == "open":
                opened = True
            elif kind == "text":
                text = value
                self.shown = self.on_text(text)
            elif kind == "done" and value is not None:
                return value
            elif kind == "done":
                raise httpx2.RemoteProtocolError("the event stream ended before its message began")
            else:
                raise value


def _attempts(
    attempt: Callable[[anthropic.Anthropic, float], Any],
    retryable: Callable[[BaseException], bool],
    *,
    deadline_seconds: float,
    model: str = "",
    tokens: int = 0,
) -> CallResult:
    """`attempt(client, seconds left)` until it answers, fails for good, or the deadline nears;
    each attempt first takes its room in the model's limits."""
    started = time.monotonic()
    if not api_key_configured():
        return CallResult(None, "no_api_key", "ANTHROPIC_API_KEY is not set", 0, 0)
    client = make_client()
    attempts = 0
    while True:
        last_start = started + deadline_seconds - MIN_ATTEMPT_SECONDS
        if model and not _wait_for_model_limits(model, tokens, last_start):
            return CallResult(
                None,
                "rate_limited",
                f"held back: the organisation's per-minute limit for {model} has no room "
                "before the deadline",
                _elapsed_ms(started),
                attempts,
            )
        attempts += 1
        remaining = deadline_seconds - (time.monotonic() - started)
        try:
            message = attempt(client, remaining)
            return CallResult(message, "ok", None, _elapsed_ms(started), attempts)
        except (anthropic.APIError, TimeoutError, httpx2.TransportError) as exc:
            wait = _retry_wait(exc, attempts)
            left = deadline_seconds - (time.monotonic() - started)
            if not (
                attempts < MAX_ATTEMPTS and retryable(exc) and wait + MIN_ATTEMPT_SECONDS < left
            ):
                return CallResult(
                    None, _outcome_for(exc), _describe(exc), _elapsed_ms(started), attempts
                )
            log.info(
                "model call retry",
                extra={"fields": {"attempt": attempts, "wait_s": round(wait, 2)}},
            )
            time.sleep(wait)


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
    tokens_in, tokens_out = tokens_in + result.spent[0], tokens_out + result.spent[1]
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
    if stop is None:  # only a stream can end without one: its body stopped early
        return "interrupted", "the stream ended before the answer was complete"
    return None


def text_of(message: Any) -> str:
    """The answer's text blocks joined; thinking blocks come first on today's models, skip them."""
    return "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
