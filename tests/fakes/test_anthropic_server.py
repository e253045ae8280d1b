"""The fake Anthropic server, exercised with the real SDK over real HTTP."""

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

import anthropic
import httpx2
import pydantic
import pytest

from .anthropic_server import FakeAnthropic, example_for_schema

MODEL = "claude-sonnet-5-5"
EVENT = "Event: disk /var at 98% on db-3. Junior tried clearing /tmp; no change."


class Handoff(pydantic.BaseModel):
    summary_prose: str
    what_we_know: list[str]
    likely_cause: str
    suggested_steps: list[str]
    confidence: Literal["low", "medium", "high"]


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def client(fake):
    return anthropic.Anthropic(api_key="test", base_url=fake.url, max_retries=0)


def parse(client, **kwargs):
    return client.messages.parse(
        model=MODEL,
        max_tokens=1024,
        messages=[{"role": "user", "content": EVENT}],
        output_format=Handoff,
        **kwargs,
    )


def test_answer_parses_into_the_model(fake, client):
    message = parse(client)
    handoff = message.parsed_output
    assert isinstance(handoff, Handoff)
    assert handoff.confidence == "medium"
    assert 2 <= len(handoff.what_we_know) <= 3 and 2 <= len(handoff.suggested_steps) <= 3
    assert "likely cause" in handoff.likely_cause
    assert message.model == MODEL and message.stop_reason == "end_turn"
    assert message.id.startswith("msg_") and message._request_id.startswith("req_")
    assert message.usage.input_tokens == len(fake.requests[0].raw) // 4
    assert message.usage.output_tokens == len(message.content[0].text) // 4
    assert message.usage.cache_read_input_tokens == 0


@pytest.mark.parametrize("blocks", [1, 2])
def test_thinking_blocks_come_first_and_parse_still_works(fake, client, blocks):
    fake.set_mode("thinking", blocks=blocks)
    message = parse(client)
    assert [b.type for b in message.content] == ["thinking"] * blocks + ["text"]
    assert message.content[0].thinking == "" and message.content[0].signature.startswith("sig")
    assert isinstance(message.parsed_output, Handoff)
    assert message.usage.output_tokens > len(message.content[-1].text) // 4


def test_payload_overrides_the_answer(fake, client):
    payload = {
        "summary_prose": "Disk full on db-3.",
        "what_we_know": ["/var at 98%"],
        "likely_cause": "Runaway WAL archive.",
        "suggested_steps": ["Check pg_wal"],
        "confidence": "high",
    }
    fake.set_mode("answer", payload=payload)
    assert parse(client).parsed_output.model_dump() == payload


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("429", anthropic.RateLimitError),
        ("529", anthropic.OverloadedError),
        ("500", anthropic.InternalServerError),
    ],
)
def test_error_modes_raise_the_sdk_error(fake, client, mode, error):
    fake.set_mode(mode)
    with pytest.raises(error) as caught:
        parse(client)
    assert caught.value.request_id.startswith("req_")
    assert caught.value.body["error"]["details"] is None
    assert caught.value.body["request_id"] == caught.value.request_id
    if mode == "429":
        assert caught.value.response.headers["retry-after"] == "1"
    if mode == "500":
        assert not isinstance(caught.value, anthropic.OverloadedError)


def test_hang_times_out_quickly_and_stop_does_not_block(fake, client):
    fake.set_mode("hang")
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        parse(client, timeout=0.5)
    assert time.monotonic() - started < 2
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2


def test_reset_releases_a_hanging_request(fake, client):
    fake.set_mode("hang")
    errors = []

    def call():
        try:
            parse(client, timeout=10)
        except anthropic.APIError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    fake.reset()
    worker.join(timeout=3)
    assert not worker.is_alive()
    assert isinstance(errors[0], anthropic.APIConnectionError)


def test_slow_mode_waits_for_latency(fake, client):
    fake.set_mode("slow", latency=0.3)
    started = time.monotonic()
    parse(client)
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("mode", ["refusal", "max_tokens", "bad_schema"])
def test_broken_answers_make_parse_raise_validation_error(fake, client, mode):
    fake.set_mode(mode)
    with pytest.raises(pydantic.ValidationError):
        parse(client)


def test_refusal_and_max_tokens_wire_format(fake, client):
    fake.set_mode("refusal")
    message = client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.stop_reason == "refusal"
    assert message.stop_details.type == "refusal" and message.stop_details.category is None
    fake.set_mode("max_tokens")
    schema = anthropic.transform_schema(Handoff)
    message = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.stop_reason == "max_tokens"
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.content[0].text)


@pytest.mark.parametrize("mode", ["answer", "reject_forced_tools", "thinking"])
@pytest.mark.parametrize("choice", [{"type": "tool", "name": "report_event"}, {"type": "any"}])
def test_forced_tool_choice_is_rejected_in_every_mode(fake, client, mode, choice):
    fake.set_mode(mode)
    tool = {"name": "report_event", "input_schema": {"type": "object", "properties": {}}}
    with pytest.raises(anthropic.BadRequestError, match='type "tool" and "any" are not supported'):
        client.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            tools=[tool],
            tool_choice=choice,
        )


def test_sampling_parameters_are_rejected(client):
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        client.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"temperature": 0.2},
        )


# --- streamed answers ------------------------------------------------------------------------


def stream(client, **kwargs):
    return client.messages.stream(
        model=MODEL,
        max_tokens=1024,
        messages=[{"role": "user", "content": EVENT}],
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
        **kwargs,
    )


SCHEMA = anthropic.transform_schema(Handoff)


def raw_events(fake) -> tuple[dict[str, str], list[tuple[str, dict]]]:
    """POST a streamed request with the standard library; (headers, [(event, data)])."""
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    request = urllib.request.Request(
        fake.url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer test"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        headers = {k.lower(): v for k, v in answer.headers.items()}
        text = answer.read().decode()  # raises if the chunked body does not end properly
    events = []
    for block in text.strip().split("\n\n"):
        kind, data = block.split("\n")
        assert kind.startswith("event: ") and data.startswith("data: ")
        events.append((kind[7:], json.loads(data[6:])))
    return headers, events


def test_a_streamed_answer_is_the_real_event_sequence(fake):
    fake.set_mode("thinking", blocks=1)
    headers, events = raw_events(fake)
    assert headers["content-type"] == "text/event-stream"
    assert headers["transfer-encoding"] == "chunked" and headers["request-id"].startswith("req_")
    kinds = [kind for kind, _ in events]
    deltas = kinds.count("content_block_delta") - 1  # the thinking block's signature
    assert kinds == [
        "message_start",
        "content_block_start",  # thinking
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # text
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == kind for kind, data in events)
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    text = "".join(
        data["delta"]["text"] for kind, data in events if data.get("delta", {}).get("text")
    )
    assert text.startswith("Rewritten: ")
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == len(text) // 4 + 32


def test_the_sdk_stream_joins_into_the_same_answer_as_create(fake, client):
    fake.set_mode("thinking", blocks=2)
    with stream(client) as events:
        texts = [event.text for event in events if event.type == "text"]
        message = events.get_final_message()
    assert len(texts) > 10  # token by token, not in one piece
    assert [b.type for b in message.content] == ["thinking", "thinking", "text"]
    assert Handoff.model_validate_json(message.content[-1].text) == Handoff.model_validate(
        example_for_schema(SCHEMA)
    )
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > len(texts)
    assert fake.requests[-1].headers["x-stainless-helper-method"] == "stream"
    assert fake.requests[-1].body["stream"] is True


def test_time_to_first_token_and_pace(fake, client):
    payload = {
        "summary_prose": "Disk full on db-3.",
        "what_we_know": ["/var at 98%"],
        "likely_cause": "Runaway WAL archive.",
        "suggested_steps": ["Check pg_wal"],
        "confidence": "high",
    }
    fake.set_mode("answer", payload=payload, ttft=0.3, pace=100)
    started = time.monotonic()
    with stream(client) as events:
        first = None
        for event in events:
            if event.type == "text" and first is None:
                first = time.monotonic() - started
        message = events.get_final_message()
    total = time.monotonic() - started
    tokens = message.usage.output_tokens
    assert 0.3 <= first < 0.3 + 0.3
    assert total >= 0.3 + (tokens - 1) / 100
    # Written in the schema's order, whatever order the payload was given in.
    assert list(json.loads(message.content[0].text)) == list(SCHEMA["properties"])
    written = fake.requests[-1].written  # when each field was fully sent
    assert sorted(written, key=written.__getitem__) == list(SCHEMA["properties"])
    assert written["confidence"] - written["summary_prose"] >= (tokens - 10) / 100
    # Not streamed, the same answer takes as long as its writing would.
    started = time.monotonic()
    parse(client)
    assert time.monotonic() - started >= 0.3 + (tokens - 1) / 100


def test_stall_mid_stream_hangs_until_the_read_timeout(fake, client):
    fake.set_mode("stall", after=40)
    texts = []
    with pytest.raises(httpx2.ReadTimeout), stream(client, timeout=0.5) as events:
        for event in events:
            if event.type == "text":
                texts.append(event.snapshot)
    assert 40 <= len(texts[-1]) < 44


def test_overloaded_mid_stream_is_a_200_status_error(fake, client):
    fake.set_mode("overloaded_mid_stream", after=20)
    with pytest.raises(anthropic.APIStatusError) as caught, stream(client) as events:
        list(events)
    assert caught.value.status_code == 200 and caught.value.type == "overloaded_error"
    assert not isinstance(caught.value, anthropic.OverloadedError)


def test_a_truncated_stream_ends_without_a_stop_reason(fake, client):
    fake.set_mode("truncated", after=30)
    with stream(client) as events:
        message = events.get_final_message()
    assert message.stop_reason is None and 30 <= len(message.content[0].text) < 34


def test_a_dropped_connection_is_a_protocol_error(fake, client):
    fake.set_mode("dropped", after=30)
    with pytest.raises(httpx2.RemoteProtocolError), stream(client) as events:
        list(events)


def test_stream_faults_need_a_streamed_request(fake, client):
    fake.set_mode("truncated")
    with pytest.raises(anthropic.BadRequestError, match="needs a streamed request"):
        parse(client)


def test_plain_text_request_gets_a_rewrite(client):
    prose = "Disk on db-3 is nearly full. " * 20
    message = client.messages.create(
        model="claude-haiku-5-5",
        max_tokens=512,
        system="Rewrite for the client.",
        messages=[{"role": "user", "content": [{"type": "text", "text": prose}]}],
    )
    assert message.content[0].text == "Rewritten: " + prose[:200]
    assert message.model == "claude-haiku-5-5"


def test_requests_are_logged_with_the_bearer_header(fake, client):
    parse(client, metadata={"user_id": "purpose-summary"})
    client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert [r.path for r in fake.requests] == ["/v1/messages", "/v1/messages/count_tokens"]
    record = fake.requests[0]
    assert record.headers["authorization"] == "Bearer test"
    assert record.headers["x-stainless-helper"] == "messages.parse"
    assert record.body["output_config"]["format"]["type"] == "json_schema"
    assert json.loads(record.raw) == record.body
    assert fake.message_requests() == [record]
    assert fake.message_requests("purpose-summary") == [record]
    assert fake.message_requests("tone") == []
    fake.reset()
    assert fake.requests == []


def test_count_tokens(fake, client):
    messages = [{"role": "user", "content": "hello there"}]
    counted = client.messages.count_tokens(model=MODEL, messages=messages, system="be brief")
    assert counted.input_tokens == (len(json.dumps(messages)) + len(json.dumps("be brief"))) // 4


def test_missing_credentials_get_401(fake):
    request = urllib.request.Request(
        fake.url + "/v1/messages",
        data=json.dumps({"model": MODEL, "max_tokens": 8, "messages": []}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    assert caught.value.headers["request-id"].startswith("req_")
    assert json.loads(caught.value.read())["error"]["type"] == "authentication_error"


def test_queued_modes_run_once_before_the_default(fake, client):
    fake.queue_modes("429", "529")
    with pytest.raises(anthropic.RateLimitError):
        parse(client)
    with pytest.raises(anthropic.OverloadedError):
        parse(client)
    assert isinstance(parse(client).parsed_output, Handoff)


def test_sdk_retries_a_queued_429(fake):
    fake.queue_modes(("429", {"retry_after": "0.01"}))
    client = anthropic.Anthropic(api_key="test", base_url=fake.url, max_retries=1)
    assert isinstance(parse(client).parsed_output, Handoff)
    assert [r.headers["x-stainless-retry-count"] for r in fake.message_requests()] == ["0", "1"]


def test_base_url_from_environment(fake, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    assert isinstance(
        parse(anthropic.Anthropic(api_key="test", max_retries=0)).parsed_output, Handoff
    )


def test_schema_examples_honour_refs_min_items_and_formats():
    schema = {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "minItems": 4, "items": {"$ref": "#/$defs/Step"}},
            "owner": {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
            "count": {"type": "integer", "minimum": 3},
            "confidence": {"enum": ["low", "medium", "high"]},
            "severity": {"enum": ["p1", "p2"]},
        },
        "$defs": {"Step": {"type": "object", "properties": {"done": {"type": "boolean"}}}},
    }
    assert example_for_schema(schema) == {
        "steps": [{"done": True}] * 4,
        "owner": "oncall@example.com",
        "count": 3,
        "confidence": "medium",
        "severity": "p1",
    }


def test_standalone_main_prints_its_url():
    root = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "tests.fakes.anthropic_server",
        "--mode",
        "answer",
        "--latency",
        "0.05",
    ]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            client = anthropic.Anthropic(api_key="test", base_url=url, max_retries=0)
            assert isinstance(parse(client).parsed_output, Handoff)
        finally:
            process.terminate()
            process.wait(timeout=5)
