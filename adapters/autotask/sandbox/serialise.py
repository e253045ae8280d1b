"""Autotask's webhook serialisation and signature: the bytes it sends are the bytes it signs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

_ESCAPED = set("\"&<>'+`")


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\b\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[ch])
        elif ch in _ESCAPED or ord(ch) < 0x20 or ord(ch) > 0x7E:
            units = ch.encode("utf-16-be")
            out += [f"\\u{units[i] << 8 | units[i + 1]:04X}" for i in range(0, len(units), 2)]
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def autotask_json(value: Any) -> str:
    """Compact JSON as Autotask's serialiser writes it (ASCII only, HTML characters escaped)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, dict):
        members = (f"{_escape(str(k))}:{autotask_json(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(autotask_json(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def hook_signature(body: bytes, secret_key: str) -> str:
    """X-Hook-Signature: sha1= + base64(HMAC-SHA1(secret key, the body as sent))."""
    digest = hmac.new(secret_key.encode("utf-8"), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode("ascii")
