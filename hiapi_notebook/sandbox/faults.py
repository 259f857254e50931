"""Faults: random ones at set rates (the CLI's ``--rate-*``) and one-shot ones a test injects.

A client's retry rules are only proven against a server that misbehaves on cue, so every fault
the contract names can be produced: 429, 500 and 503 (with ``Retry-After`` in seconds or as an
HTTP-date), a 409 IDEMPOTENCY_KEY_PROCESSING, a slow answer, a connection dropped before the
request is read, one dropped after the request was fully processed (a task was created but
its id never reached the client), and an answer cut short halfway through its body.

Output downloads (``/files/``) fail on their own rate, ``rate_download``: a CDN has bad
minutes too, and a client must not lose a paid result to one of them.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

STATUS_FAULTS = ("429", "500", "503", "409")
DOWNLOAD_FAULTS = ("500", "drop", "503", "truncate")  # taken in turn by rate_download
RATES = ("rate_429", "rate_500", "rate_503", "rate_slow", "rate_drop", "rate_fail", "rate_download")


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    retry_after: float | str | None = 1  # sent with the random 429 and 503 answers
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
    rate_drop: float = 0.0
    rate_fail: float = 0.0  # the share of tasks that end in ``fail``
    rate_download: float = 0.0  # the share of output downloads that fail (500, 503, drop, truncate)
    seed: int | None = None


@dataclass
class Fault:
    """What happens to one request: a status, "drop", "drop_after", "truncate" or "slow"."""

    kind: str
    retry_after: float | str | None = None
    seconds: float = 0.0


@dataclass
class _Rule:
    fault: Fault
    method: str | None
    path: str | None
    times: int


class FaultPlan:
    """Decides each request's fault: injected rules first (in order), then the random rates."""

    def __init__(self, faults: Faults) -> None:
        for name in RATES:
            rate = getattr(faults, name)
            if not (isinstance(rate, (int, float)) and 0 <= rate <= 1):  # NaN fails both
                raise ValueError(f"{name} must be a fraction from 0 to 1, not {rate!r}")
        wait = faults.retry_after
        if wait is not None and not isinstance(wait, str) and not (math.isfinite(wait) and wait >= 0):
            raise ValueError(f"retry_after must be 0 or more seconds (or an HTTP-date), not {wait!r}")
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._download_faults = 0  # how many downloads failed: their kinds take turns

    def inject(
        self,
        fault: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        retry_after: float | str | None = None,
    ) -> None:
        rule = _Rule(_parse(fault, retry_after), method and method.upper(), path, times)
        with self._lock:
            self._rules.append(rule)

    def pick(self, method: str, path: str, *, api: bool) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.method in (None, method) and (rule.path is None or path.startswith(rule.path)):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule.fault
            if api:
                return self._random()
            return self._random_download() if path.startswith("/files/") else None

    def task_fails(self) -> bool:
        with self._lock:
            return self._rng.random() < self.faults.rate_fail

    def _random(self) -> Fault | None:
        f = self.faults
        draw = self._rng.random()
        for rate, fault in (
            (f.rate_drop, Fault("drop")),
            (f.rate_429, Fault("429", f.retry_after)),
            (f.rate_500, Fault("500")),
            (f.rate_503, Fault("503", f.retry_after)),
            (f.rate_slow, Fault("slow", seconds=f.slow_seconds)),
        ):
            if draw < rate:
                return fault
            draw -= rate
        return None

    def _random_download(self) -> Fault | None:
        if self._rng.random() >= self.faults.rate_download:
            return None
        kind = DOWNLOAD_FAULTS[self._download_faults % len(DOWNLOAD_FAULTS)]
        self._download_faults += 1
        return Fault(kind, self.faults.retry_after if kind == "503" else None)


def _parse(fault: str, retry_after: float | str | None) -> Fault:
    if fault in STATUS_FAULTS:
        if fault == "409" and retry_after is None:
            retry_after = 1  # the contract: a 409 always says when to come back
        return Fault(fault, retry_after)
    if fault in ("drop", "drop_after", "truncate"):
        return Fault(fault)
    if fault.startswith("slow:"):
        return Fault("slow", seconds=float(fault.removeprefix("slow:")))
    raise ValueError(
        f"unknown fault {fault!r}: use 429, 500, 503, 409, drop, drop_after, truncate or slow:SECONDS"
    )
