"""Reading a request and answering it the way Halo does: error bodies, arrays of records,
"true" flags and {"record_count", "<name>": [...]} pages."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request


class HaloError(Exception):
    """A refusal in one of Halo's bodies ({"Message"} by default, OAuth's for the token)."""

    def __init__(self, status: int, message: str, **body: Any):
        super().__init__(message)
        self.status = status
        self.body = body or {"ClassName": "HaloException", "Message": message}


def flag(name: str) -> bool:
    return request.args.get(name, "").strip().lower() == "true"


def int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def records() -> list[dict[str, Any]]:
    """A POST body: Halo takes an array of records, even for one."""
    body = request.get_json(silent=True)
    if not isinstance(body, list) or not body or not all(isinstance(r, dict) for r in body):
        raise HaloError(400, "The request body must be a JSON array of records.")
    return body


def one_or_many(rows: list[dict[str, Any]]) -> Any:
    return rows[0] if len(rows) == 1 else rows


def page(rows: list[dict[str, Any]], key: str, unpaged: int | None = None) -> Response:
    """{"record_count", key: [...]}: paged when asked (pageinate, page_size, page_no)."""
    if flag("pageinate"):
        size = max(1, min(int_arg("page_size") or 50, 1000))
        number = max(1, int_arg("page_no") or 1)
        shown = rows[(number - 1) * size : number * size]
    else:
        shown = rows[: int_arg("count") or unpaged or len(rows)]
    return jsonify({"record_count": len(rows), key: shown})
