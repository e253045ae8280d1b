"""A fake Anthropic Messages API over real HTTP on 127.0.0.1, for tests and benchmarks.

Point the real SDK at it (``ANTHROPIC_BASE_URL=fake.url``, or
``anthropic.Anthropic(api_key="test", base_url=fake.url, max_retries=0)``); never patch the
client. Standard library only. Wire format: Anthropic's Messages API reference (requests,
errors, streaming events).

A request with ``"stream": true`` is answered with Server-Sent Events in the order the real API
sends them (``message_start``, blocks, ``message_delta``, ``message_stop``), chunked, the body
properly ended; ``ttft`` and ``pace`` make the model write at a human-visible speed, and the
stream fault modes break the stream the ways real ones break.

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
# Faults of a streamed answer, each after `after` characters of its text (0: before any):
# it stops sending and hangs; an overloaded error event arrives; the body ends early but
# properly; the connection drops mid-chunk.
STREAM_FAULTS = {"stall", "overloaded_mid_stream", "truncated", "dropped"}
MODES = {"answer", "thinking", "slow", "hang", "refusal", "max_tokens", "bad_schema"}
MODES |= {"reject_forced_tools", *ERROR_MODES, *STREAM_FAULTS}  # forced tools: always rejected
CHARS_PER_TOKEN = 4  # how the fake counts output tokens, and paces them
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
    # Streamed answers: when (time.time()) each top-level field of the JSON was fully sent.
    written: dict[str, float] = field(default_factory=dict)


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
        """Default behaviour for subsequent requests. Options: ``latency`` (seconds before the
        answer's headers, any mode), ``ttft`` (seconds from there to the first text token) and
        ``pace`` (output tokens a second; a request that is not streamed waits as long as
        the streamed answer would take), ``payload`` (exact JSON object for schema requests,
        written in the schema's property order), ``text`` (answer for plain requests),
        ``blocks`` (thinking blocks, 1 or 2), ``retry_after`` (429, default "1"), ``after``
        (stream faults: characters of text sent first, default 0)."""
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

    def _handle(self, rec: RequestRecord) -> tuple[int, dict, dict] | _Streamed | None:
        """(status, JSON body, extra headers), an answer to stream, or None to drop the
        connection unanswered."""
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
        message = _message(body, mode, opts, len(rec.raw))
        if body.get("stream"):
            return _Streamed(rec, message, mode, opts, generation)
        if mode in STREAM_FAULTS:
            raise _ApiError(400, INVALID, f"mode {mode!r} needs a streamed request (fake)")
        if not self._wait(_writing_seconds(message, opts), generation):
            return None
        return 200, message, {}


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
        answer = _in_schema_order(opts["payload"], schema) if "payload" in opts else None
        answer = example_for_schema(schema) if answer is None else answer
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


def _in_schema_order(payload: Any, schema: dict) -> Any:
    """The model writes properties in the schema's order, whatever order a test wrote them."""
    if not isinstance(payload, dict):
        return payload
    order = list(schema.get("properties", {}))
    return dict(
        sorted(payload.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    )


def _writing_seconds(message: dict, opts: dict) -> float:
    """How long the model takes to write `message`: time to first token, then its pace."""
    pace = float(opts.get("pace") or 0)
    tokens = message["usage"]["output_tokens"]
    return float(opts.get("ttft", 0)) + (tokens / pace if pace > 0 else 0.0)


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


@dataclass
class _Streamed:
    """An answer to send as Server-Sent Events (see _Handler._stream)."""

    record: RequestRecord
    message: dict
    mode: str
    opts: dict
    generation: int


def _field_ends(text: str) -> dict[str, int]:
    """Where each top-level field of a JSON object answer ends in `text` (json.dumps form)."""
    try:
        answer = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(answer, dict):
        return {}
    items = list(answer.items())
    return {key: len(json.dumps(dict(items[: i + 1]))) - 1 for i, (key, _) in enumerate(items)}


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
        if isinstance(reply, _Streamed):
            self._stream(reply, request_id)
            return
        status, payload, extra = reply
        data = json.dumps(payload).encode()
        self.send_response(status)
        headers = {"content-type": "application/json", "content-length": str(len(data))}
        for name, value in {**headers, "request-id": request_id, **extra}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # --- streamed answers ----------------------------------------------------------------------

    def _stream(self, plan: _Streamed, request_id: str) -> None:
        """The real API's event order; a return before _end() leaves the chunked body cut."""
        self.protocol_version = "HTTP/1.1"  # chunked, so that a dropped connection shows
        self.close_connection = True
        self.send_response(200)
        headers = {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
            "connection": "close",
            "request-id": request_id,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        message = plan.message
        usage = {**message["usage"], "output_tokens": 1}
        start = {**message, "content": [], "stop_reason": None, "stop_details": None}
        self._event("message_start", {"message": {**start, "usage": usage}})
        for index, block in enumerate(message["content"]):
            if block["type"] == "thinking":
                self._event("content_block_start", {"index": index, "content_block": {
                    "type": "thinking", "thinking": "", "signature": ""}})  # fmt: skip
                delta = {"type": "signature_delta", "signature": block["signature"]}
                self._event("content_block_delta", {"index": index, "delta": delta})
            else:
                self._event("content_block_start", {"index": index, "content_block": {
                    "type": "text", "text": ""}})  # fmt: skip
                self._event("ping", {})
                if not self._write_text(plan, index, block["text"]):
                    return
            self._event("content_block_stop", {"index": index})
        self._event("message_delta", {
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None,
                      "stop_details": message["stop_details"]},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        })  # fmt: skip
        self._event("message_stop", {})
        self._end()

    def _write_text(self, plan: _Streamed, index: int, text: str) -> bool:
        """Token by token at the pace asked for; False when a fault ended the stream."""
        fake, opts = self.server.fake, plan.opts
        pace = float(opts.get("pace") or 0)
        after = int(opts.get("after", 0))
        ends = sorted((end, key) for key, end in _field_ends(text).items())
        if not fake._wait(float(opts.get("ttft", 0)), plan.generation):
            return False
        for sent in range(0, len(text) + CHARS_PER_TOKEN, CHARS_PER_TOKEN):
            if plan.mode in STREAM_FAULTS and sent >= min(after, len(text)):
                return self._fault(plan)
            if sent >= len(text):
                return True
            if sent and pace > 0 and not fake._wait(1 / pace, plan.generation):
                return False
            delta = {"type": "text_delta", "text": text[sent : sent + CHARS_PER_TOKEN]}
            self._event("content_block_delta", {"index": index, "delta": delta})
            while ends and ends[0][0] <= sent + CHARS_PER_TOKEN:
                plan.record.written[ends.pop(0)[1]] = time.time()
        return True

    def _fault(self, plan: _Streamed) -> bool:
        if plan.mode == "stall":
            self.server.fake._wait(float("inf"), plan.generation)  # until reset() or stop()
        elif plan.mode == "overloaded_mid_stream":
            error = {"type": "overloaded_error", "message": "Overloaded", "details": None}
            self._event("error", {"error": error})
            self._end()
        elif plan.mode == "truncated":
            self._end()
        return False  # "dropped": the connection closes in the middle of the chunked body

    def _event(self, kind: str, data: dict) -> None:
        line = f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


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
