"""A real rate limit (the CLI's ``--rate-limit R``): a token bucket per API key.

Every API request of a key takes a token, creates and polls alike, as HiAPI counts
them; tokens come back at ``rate`` a second and up to ``rate`` of them (one second's
worth) are kept for a burst. A request that finds none is answered 429 with the
whole seconds until one is back in ``Retry-After``, and takes none: unlike
``--rate-429``, this limit answers 429 only to a client that sends too fast.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MAX_RATE = 10_000.0


class RateLimit:
    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate_limit takes requests a second above 0 up to {MAX_RATE:g}, not {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, self.rate)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> int | None:
        """None when ``key`` may send now (a token is spent); else the seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
