"""When to send a failed request again, and how long to wait first.

Small pure functions, kept apart from the client so the policy reads in one place and
tests can call it with no network and no sleep; API calls and output downloads share it.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 60.0  # as HiAPI's own SDK: never sleep longer on a server's word
TWIN_WAIT = 120.0  # seconds a create waits for the replay of its twin still being answered


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` given in seconds or as an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def should_retry(method: str, status: int | None, error_code: str | None, idempotent_post: bool) -> bool:
    """Whether a failed attempt may be sent again.

    429, 503 and 409 IDEMPOTENCY_KEY_PROCESSING mean the server did nothing yet.
    Other 5xx and network errors (``status is None``) leave a POST in an unknown
    state: it is only safe to resend with an idempotency key, which replays the
    first task instead of billing twice.
    """
    if error_code == "MODEL_UNAVAILABLE":
        return False  # retrying won't help soon; the user should hear it
    if status in (429, 503) or (status == 409 and error_code == "IDEMPOTENCY_KEY_PROCESSING"):
        return True
    if status is None or status >= 500:
        return method == "GET" or idempotent_post
    return False


def twin_in_flight(status: int | None, error_code: str | None, waited: float) -> bool:
    """Whether to keep asking past the usual retries: a 409 IDEMPOTENCY_KEY_PROCESSING
    means the same create (a re-run of the cell) is being answered right now, and its
    answer will be replayed, so it is worth waiting for (up to ``TWIN_WAIT`` seconds)
    rather than giving up after a few seconds with "retry shortly"."""
    return status == 409 and error_code == "IDEMPOTENCY_KEY_PROCESSING" and waited < TWIN_WAIT


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float = 0.5,
    cap: float = 8.0,
    rng: random.Random | None = None,
) -> float:
    """The server's ``Retry-After`` (capped) when given, else exponential backoff
    with jitter, so many waiting tasks do not retry in lockstep."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    exp = min(cap, base * (2**attempt))
    return exp * (0.5 + 0.5 * (rng or random).random())
