"""A fake Anthropic Messages API over real HTTP on 127.0.0.1, for tests and benchmarks.

Point the real SDK at it (``ANTHROPIC_BASE_URL=fake.url``, or
``anthropic.Anthropic(api_key="test", base_url=fake.url, max_retries=0)``); never patch the
client. Standard library only. Wire format: ``/work/shared/reference/anthropic.md`` §2 and §4.

Standalone, for benchmarks:
``python -m tests.fakes.anthropic_server --port 8765 --mode answer --latency 0.5``
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MESSAGES, COUNT_TOKENS = "/v1/messages", "/v1/messages/count_tokens"
INVALID = "invalid_request_error"
ERROR_MODES = {
    "429": (429, "rate_limit_error", "Number of requests has exceeded your rate limit (fake)."),
    "529": (529, "overloaded_error", "Overloaded"),
    "500": (500, "api_error", "Internal server error"),
}
MODES = {"answer", "thinking", "slow", "hang", "refusal", "max_tokens", "bad_schema"}
MODES |= {"reject_forced_tools", *ERROR_MODES}  # forced-tool rejection is always on anyway
FORCED_TOOLS = 'tool_choice: type "tool" and "any" are not supported for this model.'
REFUSAL = "I'm sorry, but I can't help with that request."
THINKING_TOKENS = 32  # billed per (empty, display-omitted) thinking block
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "time": "00:00:00",
    "duration": "PT1M", "email": "oncall@example.com", "hostname": "example.com",
    "uri": "https://example.com/", "ipv4": "127.0.0.1", "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}  # fmt: skip


@dataclass
class RequestRecord:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON (a dict for valid requests), None if not JSON
    raw: str
    time: float = field(default_factory=time.time)


class _ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}

    def body(self, request_id: str) -> dict:
        error = {"type": self.kind, "message": self.message, "details": None}
        return {"type": "error", "error": error, "request_id": request_id}


class FakeAnthropic:
    """Serves POST /v1/messages and /v1/messages/count_tokens; see ``set_mode`` for behaviours."""

    def __init__(self, port: int = 0):
        self.port, self.url = port, ""
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._mode: tuple[str, dict] = ("answer", {})
        self._queue: list[tuple[str, dict]] = []
        self._generation = 0  # bumped by reset() to release hanging requests
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeAnthropic:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", self.port), _Handler)
            self._server.fake = self
            self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name="fake-anthropic", daemon=True,
            )  # fmt: skip
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # releases "hang" and "slow" requests
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_mode(self, mode: str, **options) -> None:
        """Default behaviour for subsequent requests. Options: ``latency`` (seconds, any mode),
        ``payload`` (exact JSON object for schema requests), ``text`` (answer for plain
        requests), ``blocks`` (thinking blocks, 1 or 2), ``retry_after`` (429, default "1")."""
        with self._lock:
            self._mode = (_known(mode), dict(options))

    def queue_modes(self, *modes) -> None:
        """One-shot modes used, in order, before the default: names or (name, options) pairs,
        also as one list. A bare name equal to the default mode reuses the default's options."""
        if len(modes) == 1 and isinstance(modes[0], list):
            modes = tuple(modes[0])
        with self._lock:
            for item in modes:
                name, opts = (item, None) if isinstance(item, str) else item
                default = self._mode[1] if name == self._mode[0] else {}
                self._queue.append((_known(name), dict(default if opts is None else opts)))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._mode, self._queue = ("answer", {}), []
            self._generation += 1

    def message_requests(self, purpose_substring: str | None = None) -> list[RequestRecord]:
        """POST /v1/messages requests, optionally those whose body or a header value
        contains ``purpose_substring``."""
        with self._lock:
            found = [r for r in self.requests if r.method == "POST" and _route(r.path) == MESSAGES]
        if purpose_substring:
            found = [r for r in found if _mentions(r, purpose_substring)]
        return found

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _next_mode(self) -> tuple[str, dict, int]:
        with self._lock:
            mode, opts = self._queue.pop(0) if self._queue else self._mode
            return mode, dict(opts), self._generation

    def _wait(self, seconds: float, generation: int) -> bool:
        """Sleep in small steps; False if stop() or reset() interrupted it."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and self._generation == generation:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            self._stopping.wait(min(remaining, 0.05))
        return False

    def _handle(self, rec: RequestRecord) -> tuple[int, dict, dict] | None:
        """(status, JSON body, extra headers), or None to drop the connection unanswered."""
        route = _route(rec.path)
        if rec.method != "POST" or route not in (MESSAGES, COUNT_TOKENS):
            raise _ApiError(404, "not_found_error", f"Not found: {rec.method} {rec.path}")
        if not (rec.headers.get("authorization") or rec.headers.get("x-api-key")):
            raise _ApiError(401, "authentication_error", "invalid x-api-key")
        body = rec.body
        if not isinstance(body, dict):
            raise _ApiError(400, INVALID, "Request body must be a JSON object.")
        _check_request(body, route)
        if route == COUNT_TOKENS:
            text = json.dumps(body.get("messages")) + json.dumps(body.get("system", ""))
            return 200, {"input_tokens": len(text) // 4}, {}
        mode, opts, generation = self._next_mode()
        latency = float(opts.get("latency", 3.0 if mode == "slow" else 0.0))
        if mode == "hang":
            latency = float("inf")
        if latency > 0 and not self._wait(latency, generation):
            return None
        if mode in ERROR_MODES:
            status, kind, message = ERROR_MODES[mode]
            headers = {"retry-after": str(opts.get("retry_after", "1"))} if mode == "429" else {}
            raise _ApiError(status, kind, message, headers)
        return 200, _message(body, mode, opts, len(rec.raw)), {}


def _known(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
    return mode


def _mentions(record: RequestRecord, text: str) -> bool:
    return text in record.raw or any(text in value for value in record.headers.values())


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _route(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/")


def _check_request(body: dict, route: str) -> None:
    """The 400s the real API gives today in every mode (Sonnet 5.5, API version 2026-10-21)."""
    for name in ("model", "messages") + (("max_tokens",) if route == MESSAGES else ()):
        if name not in body:
            raise _ApiError(400, INVALID, f"{name}: Field required")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("tool", "any"):
        raise _ApiError(400, INVALID, FORCED_TOOLS)
    for name in ("temperature", "top_p", "top_k"):
        if name in body:
            raise _ApiError(400, INVALID, f"{name}: is not supported for this model.")
    if body.get("stream"):
        raise _ApiError(400, INVALID, "streaming not supported by fake")


def _message(body: dict, mode: str, opts: dict, body_len: int) -> dict:
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format") or {}
    schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    stop_reason, stop_details = "end_turn", None
    if mode == "refusal":
        text = opts.get("text", REFUSAL)
        stop_reason = "refusal"
        stop_details = {"type": "refusal", "category": None, "explanation": None}
    elif schema is None:
        text = opts.get("text") or "Rewritten: " + _last_user_text(body)[:200]
    else:
        answer = opts["payload"] if "payload" in opts else example_for_schema(schema)
        text = json.dumps(_break_schema(answer, schema) if mode == "bad_schema" else answer)
    if mode == "max_tokens":
        text, stop_reason = text[: len(text) // 2], "max_tokens"
    blocks = int(opts.get("blocks", 1)) if mode == "thinking" else 0
    thinking = [
        {"type": "thinking", "thinking": "", "signature": _id("sig")} for _ in range(blocks)
    ]
    return {
        "id": _id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [*thinking, {"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details,
        "usage": {
            "input_tokens": body_len // 4,
            "output_tokens": len(text) // 4 + THINKING_TOKENS * blocks,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            texts = [b.get("text", "") for b in content or [] if isinstance(b, dict)]
            return " ".join(t for t in texts if t)
    return ""


def example_for_schema(schema: dict, name: str = "", root: dict | None = None, index: int = 0):
    """A plausible value valid for ``schema``, built generically by walking it."""
    root = schema if root is None else root
    if "$ref" in schema:  # local refs only, e.g. "#/$defs/Step"
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return example_for_schema(target, name, root, index)
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for_schema(options[0], name, root, index)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        enum = schema["enum"]
        return "medium" if name == "confidence" and "medium" in enum else enum[0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: example_for_schema(sub, key, root) for key, sub in props.items()}
    if kind == "array":
        count = max(2, schema.get("minItems", 0))
        count = min(count, schema.get("maxItems", count))
        items = schema.get("items", {"type": "string"})
        return [example_for_schema(items, name, root, i + 1) for i in range(count)]
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        words = name.replace("_", " ") or "answer"
        text = f"Example {words}{f' {index}' if index else ''} for this event."
        return text.ljust(schema.get("minLength", 0), ".")[: schema.get("maxLength")]
    if kind in ("integer", "number"):
        value = max(schema.get("minimum", 1), 1)
        value = min(value, schema.get("maximum", value))
        return int(value) if kind == "integer" else float(value)
    return True if kind == "boolean" else None


def _break_schema(answer: Any, schema: dict) -> Any:
    """Valid JSON that violates the schema: confidence "extreme", first required field missing."""
    if not isinstance(answer, dict):
        return {"unexpected": answer}
    broken = dict(answer)
    if "confidence" in broken:
        broken["confidence"] = "extreme"
    required = [key for key in schema.get("required", []) if key != "confidence"]
    if required:
        broken.pop(required[0], None)
    return broken if broken != answer else [answer]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once
    fake: FakeAnthropic

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up are normal here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so stop() leaves no keep-alive connection behind.
    server_version = "FakeAnthropic/1.0"
    server: _Server

    def log_message(self, format, *args) -> None:
        pass

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        request_id = _id("req_")
        record = RequestRecord(method, self.path, headers, body, raw)
        fake._record(record)
        try:
            reply = fake._handle(record)
        except Exception as exc:
            if not isinstance(exc, _ApiError):  # a bug in the fake: say so loudly
                traceback.print_exc()
            err = exc if isinstance(exc, _ApiError) else _ApiError(500, "api_error", repr(exc))
            reply = err.status, err.body(request_id), err.headers
        if reply is None:  # interrupted by stop() or reset(): hang up without answering
            return
        status, payload, extra = reply
        data = json.dumps(payload).encode()
        self.send_response(status)
        headers = {"content-type": "application/json", "content-length": str(len(data))}
        for name, value in {**headers, "request-id": request_id, **extra}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Anthropic Messages API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mode", default="answer", choices=sorted(MODES))
    parser.add_argument("--latency", type=float, help="seconds to wait before each answer")
    args = parser.parse_args(argv)
    fake = FakeAnthropic(port=args.port).start()
    fake.set_mode(args.mode, **({} if args.latency is None else {"latency": args.latency}))
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
