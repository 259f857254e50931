"""Checking a HiAPI callback: the signature over the raw body, then the task it carries.

Apart from the client because a callback arrives at the user's own web server, where no
client runs: verifying one needs only the signing secret, never the API key or the network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import WebhookVerificationError
from .models import Task

WEBHOOK_TOLERANCE = 300


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = WEBHOOK_TOLERANCE,
    now: float | None = None,
) -> Task:
    """Check a callback's ``X-HiAPI-Signature`` over the raw body and return its task.

    Verify the exact bytes received (re-serialising JSON changes them), compare
    in constant time, and refuse timestamps outside ``tolerance`` (replays). Any
    callback that does not verify, however malformed, raises ``WebhookVerificationError``.
    """
    try:
        return _verify_webhook(body, headers, secret, tolerance, now)
    except WebhookVerificationError:
        raise
    except Exception as exc:  # whatever shape a forged callback takes: it is not verified
        raise WebhookVerificationError(f"callback could not be verified ({type(exc).__name__})") from None


def _verify_webhook(body: Any, headers: Any, secret: Any, tolerance: int, now: float | None) -> Task:
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes) or not secret:
        raise WebhookVerificationError("no webhook secret given: pass the signing secret set for callbacks")
    if isinstance(body, str):
        try:
            raw = body.encode()
        except UnicodeEncodeError:
            raise WebhookVerificationError("callback body is not valid text") from None
    elif isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
    else:
        raise WebhookVerificationError(f"callback body must be the raw bytes, not {type(body).__name__}")
    pairs: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    lower = {_header_text(k).lower(): _header_text(v) for k, v in pairs}
    ts, sig = lower.get("x-hiapi-timestamp"), lower.get("x-hiapi-signature")
    if not ts or not sig:
        raise WebhookVerificationError("callback lacks X-HiAPI-Timestamp or X-HiAPI-Signature")
    ts = ts.strip()
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise WebhookVerificationError("callback timestamp is not Unix seconds")
    if tolerance and abs((time.time() if now is None else now) - int(ts)) > tolerance:
        raise WebhookVerificationError("callback timestamp is outside the tolerance (a replay?)")
    sig = sig.strip().lower()
    if not (sig.isascii() and len(sig) == 64 and all(c in "0123456789abcdef" for c in sig)):
        raise WebhookVerificationError("callback signature is not a hex SHA-256 digest")
    expected = hmac.new(secret, ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise WebhookVerificationError("callback signature does not match; check the secret")
    try:
        data = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("callback body is not JSON") from None
    if not isinstance(data, Mapping):
        raise WebhookVerificationError("callback body is not a task object")
    return Task.from_dict(data)


def _header_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if not isinstance(value, str):
        raise WebhookVerificationError("callback headers must be text")
    return value
