"""The contract's wire shapes: task ids, the response envelope, API errors, one call."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_task_id() -> str:
    """``tk-hiapi-`` and a ULID: 10 characters of milliseconds, then 16 random ones."""
    millis = int(time.time() * 1000)
    stamp = "".join(CROCKFORD[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    return "tk-hiapi-" + stamp + "".join(secrets.choice(CROCKFORD) for _ in range(16))


def canonical_json(value: Any) -> str:
    """One spelling per value, so bodies compare equal however their keys were ordered."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class ApiError(Exception):
    """An error answer: the envelope's ``code``, ``message`` and ``error_code``."""

    def __init__(
        self, status: int, message: str, error_code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"code": self.status, "message": self.message, "data": None, "error_code": self.error_code}
        return Response(self.status, _encode(body), headers=self.headers)


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_REQUEST")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def ok(data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(200, _encode({"code": 200, "message": "success", "data": data}), headers=headers or {})


@dataclass
class Call:
    """One HTTP call as the sandbox reads it off the socket (a name of its own: the
    package's ``models.Request`` is what to generate, not an HTTP request)."""

    method: str
    path: str  # the URL path, without the query
    query: dict[str, str]
    headers: Any  # an email.message.Message: case-insensitive .get()
    body: bytes
    delay: float = 0.0  # a "slow" fault's sleep, spent by the first pause()

    def pause(self) -> None:
        delay, self.delay = self.delay, 0.0
        if delay > 0:
            time.sleep(delay)


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
