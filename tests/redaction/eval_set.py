"""The redaction evaluation set: labelled note lines in the seven handoff languages.

`eval_lines.jsonl` holds lines written for this set (not taken from the corpus), each either a
`secret` whose `value` must not reach the model or a `fact` (a look-alike: error codes, GUIDs,
hashes, hosts...) that must come through unchanged. `split` is `tune` (the rules were tuned on
it) or `held_out` (never looked at while tuning). Provider tokens are written as `<<shape>>`
and made here, from a seed per line: no real-looking credential is committed, and every run
sees the same values.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PATH = Path(__file__).with_name("eval_lines.jsonl")
SHAPE = re.compile(r"<<(\w+)>>")
MARKER = re.compile(r"\[redacted: \w+\]")

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Line:
    id: str
    lang: str
    split: str  # tune | held_out
    label: str  # secret | fact
    kind: str
    value: str
    text: str


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": _pick(rng, HEX, 12), "iat": rng.randrange(1_700_000_000, 1_800_000_000)}
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(rng.randbytes(32))}"


def _bitlocker(rng: random.Random) -> str:
    # Each group is a multiple of 11 below 720896: the shape BitLocker itself checks.
    return "-".join(f"{11 * rng.randrange(65536):06d}" for _ in range(8))


def _pem_body(rng: random.Random) -> str:
    body = base64.b64encode(b"openssh-key-v1\0" + rng.randbytes(150)).decode()
    return "\n".join(body[i : i + 70] for i in range(0, len(body), 70))


_SHAPES: dict[str, Callable[[random.Random], str]] = {
    "aws_key_id": lambda r: "AKIA" + _pick(r, string.ascii_uppercase + "234567", 16),
    "aws_secret": lambda r: _pick(r, ALNUM + "/+", 40),
    "google": lambda r: "AIza" + _pick(r, B64URL, 35),
    "stripe": lambda r: "sk_live_" + _pick(r, ALNUM, 24),
    "github_classic": lambda r: "ghp_" + _pick(r, ALNUM, 36),
    "gitlab": lambda r: "glpat-" + _pick(r, B64URL, 20),
    "slack_bot": lambda r: (
        f"xoxb-{_pick(r, string.digits, 12)}-{_pick(r, string.digits, 13)}-" + _pick(r, ALNUM, 24)
    ),
    "sendgrid": lambda r: f"SG.{_pick(r, B64URL, 22)}.{_pick(r, B64URL, 43)}",
    "anthropic": lambda r: "sk-ant-api03-" + _pick(r, B64URL, 93) + "AA",
    "azure_secret": lambda r: (
        _pick(r, ALNUM, 3) + r.choice(string.digits) + "Q~" + _pick(r, ALNUM + "_~.-", 34)
    ),
    "jwt": _jwt,
    "bitlocker": _bitlocker,
    "pem_body": _pem_body,
    "hex32": lambda r: _pick(r, HEX, 32),
    "hex40": lambda r: _pick(r, HEX, 40),
    "hex64": lambda r: _pick(r, HEX, 64),
    "sas_sig": lambda r: (
        base64.b64encode(r.randbytes(32))
        .decode()
        .replace("+", "%2B")
        .replace("/", "%2F")
        .replace("=", "%3D")
    ),
    "teams_webhook": lambda r: (
        f"https://contoso.webhook.office.com/webhookb2/{_guid(r)}@"
        f"{_guid(r)}/IncomingWebhook/{_pick(r, HEX, 32)}/{_guid(r)}"
    ),
    "slack_webhook": lambda r: (
        f"https://hooks.slack.com/services/T{_pick(r, UPPER_ALNUM, 10)}/"
        f"B{_pick(r, UPPER_ALNUM, 10)}/{_pick(r, ALNUM, 24)}"
    ),
    "discord_webhook": lambda r: (
        f"https://discord.com/api/webhooks/{_pick(r, string.digits, 18)}/{_pick(r, B64URL, 68)}"
    ),
    "powerautomate": lambda r: (
        f"https://prod-{r.randrange(10, 99)}.westeurope.logic.azure.com:443"
        f"/workflows/{_pick(r, HEX, 32)}/triggers/manual/paths/invoke?api-version=2016-06-01"
        f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={_pick(r, B64URL, 43)}"
    ),
}


def _fill(line_id: str, text: str) -> str:
    rng = random.Random(line_id)
    made: dict[str, str] = {}
    return SHAPE.sub(lambda m: made.setdefault(m.group(1), _SHAPES[m.group(1)](rng)), text)


@cache
def load_eval_lines() -> tuple[Line, ...]:
    lines = []
    for raw in PATH.read_text(encoding="utf-8").splitlines():
        row = json.loads(raw)
        value = _fill(row["id"], row["value"])
        text = _fill(row["id"], row["text"])
        lines.append(Line(**{**row, "value": value, "text": text}))
    return tuple(lines)


def leaked(line: Line, redacted: str) -> bool:
    """Whether the line's secret survived: whole, or as any run of more than half of it that
    the redacted text holds more often than the line does outside the secret."""
    value = line.value
    around = line.text.replace(value, "\n")
    redacted = MARKER.sub("\n", redacted)  # "[redacted: password]" is no piece of a password
    width = min(len(value), max(5, len(value) // 2 + 1))
    pieces = {value[i : i + width] for i in range(len(value) - width + 1)}
    return any(redacted.count(piece) > around.count(piece) for piece in pieces)
