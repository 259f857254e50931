"""When to ask about a task next, from what is known of how long its model takes.

HiAPI counts every poll against the key's rate limit, so an ask should come when
an answer is likely to be news. Each model's (and route's) recent durations,
from the journal and from this session, make a smoothed distribution; the gap
between two asks is set by the chance that the task ends meanwhile: long while
an end is unlikely, short around its predicted end and while it is
``archiving``. The gap that balances latency against requests for a given
ending rate ``h`` (per second) is proportional to ``1/sqrt(h)``, so asks are
spaced evenly in the "clock" ``G(t) = integral of sqrt(h)``. A model never seen
keeps the plain schedule (``poll_delay``). Everything here is pure: no I/O,
no clock, so tests call it with numbers.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

STEP = 0.1  # seconds between the points of a distribution's tables
MIN_SPREAD = 0.25  # the narrowest smoothing, in seconds: observed ends are that uncertain
KEEP = 64  # recent durations kept per model: old ones say less about today's queue


def poll_delay(age: float, min_interval: float, max_interval: float) -> float:
    """The schedule for a model never seen: quick at first, slower as a task ages
    (about a tenth of its age, bounded)."""
    return max(min_interval, min(max_interval, age * 0.1))


@dataclass(frozen=True)
class Pace:
    """The knobs of the schedule, in seconds."""

    min_interval: float = 1.0  # a model never seen: today's schedule, from here...
    max_interval: float = 10.0  # ...to here
    dense: float = 0.5  # the shortest gap: around a crowd's ends, and while archiving
    sparse: float = 10.0  # the longest gap while an end is still to come (max_interval, as a rule)
    spacing: float = 0.55  # asks are this far apart in the G clock (see the module's note)

    @classmethod
    def between(cls, min_interval: float, max_interval: float) -> Pace:
        """The pace for a client's ``poll_interval`` and ``max_poll_interval``."""
        return cls(min_interval, max_interval, dense=min(cls.dense, min_interval), sparse=max_interval)


def split_model(model: str | None, route: str | None = None) -> tuple[str, str | None]:
    """The key a duration is filed under: ``name@route`` and ``name`` + ``route`` are one."""
    name = model or ""
    if "@" in name:
        name, _, suffix = name.rpartition("@")
        route = route or suffix
    return name, (route or None) if route != "default" else None


class Durations:
    """The recent durations of one model (or route), as a smoothed distribution.

    Each duration is spread by a normal kernel (Silverman's bandwidth, at least
    ``MIN_SPREAD``), so five samples already give a usable window and a hundred a
    sharp one. Tables of the ending rate and its clock are rebuilt lazily, and,
    once there are many samples, only after a quarter of them are new (a thousand
    tasks ending must not mean a thousand rebuilds).
    """

    def __init__(self, keep: int = KEEP) -> None:
        self.samples: deque[float] = deque(maxlen=keep)
        self._tables: tuple[float, float, list[float], list[float]] | None = None
        self._unseen = 0  # samples added since the tables were built

    def __len__(self) -> int:
        return len(self.samples)

    def add(self, seconds: float) -> None:
        if math.isfinite(seconds) and seconds > 0:
            self.samples.append(float(seconds))
            self._unseen += 1

    @property
    def spread(self) -> float:
        xs = self.samples
        n = len(xs)
        mean = sum(xs) / n
        if n == 1:
            return max(MIN_SPREAD, 0.25 * mean)  # one sample: a wide guess around it
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        return max(MIN_SPREAD, 0.03 * mean, 1.06 * sd * n**-0.2)

    @property
    def window(self) -> tuple[float, float]:
        """Ages between which the end is expected (from the shortest less two
        spreads to the longest plus two)."""
        low, high, _, _ = self._table()
        return low, high

    def rate(self, age: float) -> float:
        """The ending rate at ``age``: the chance per second that a task still
        running ends now (0 before the window)."""
        low, high, rates, _ = self._table()
        if age <= low:
            return 0.0
        return rates[min(len(rates) - 1, int((age - low) / STEP))]

    def next_ask(self, age: float, spacing: float) -> float:
        """The age at which the next ask is due: ``spacing`` further on the G clock."""
        low, high, _, clock = self._table()
        if age >= high:
            return math.inf  # overdue: the caller backs off instead
        at = max(age, low)
        here = clock[min(len(clock) - 1, int((at - low) / STEP))]
        index = bisect.bisect_left(clock, here + spacing)
        if index >= len(clock):
            return high
        return max(at, low + index * STEP)

    def _table(self) -> tuple[float, float, list[float], list[float]]:
        if self._tables is None or self._unseen >= max(1, len(self.samples) // 4):
            self._tables = _tables(list(self.samples), self.spread)
            self._unseen = 0
        return self._tables


def _tables(xs: list[float], spread: float) -> tuple[float, float, list[float], list[float]]:
    low = max(0.0, min(xs) - 2 * spread)
    high = max(xs) + 2 * spread
    steps = max(1, int((high - low) / STEP) + 1)
    rates: list[float] = []
    clock: list[float] = []
    g = 0.0
    norm = 1 / (spread * math.sqrt(2 * math.pi))
    for i in range(steps):
        t = low + i * STEP
        survive = sum(0.5 * math.erfc((t - x) / (spread * math.sqrt(2))) for x in xs) / len(xs)
        density = sum(math.exp(-0.5 * ((t - x) / spread) ** 2) for x in xs) * norm / len(xs)
        rate = density / survive if survive > 1e-9 else 1 / STEP
        rates.append(rate)
        clock.append(g)
        g += math.sqrt(rate) * STEP
    return low, high, rates, clock


class TimingModel:
    """Durations per model and per route, learnt as tasks end. Not thread-safe:
    it lives with its poller on one loop."""

    def __init__(self, pace: Pace | None = None, *, min_samples: int = 3) -> None:
        self.pace = pace or Pace()
        self.min_samples = min_samples
        self._by_key: dict[tuple[str, str | None], Durations] = {}

    def learn(self, model: str | None, route: str | None, seconds: float) -> None:
        """One task of ``model`` (``route``) took ``seconds`` from its create to its end."""
        name, route = split_model(model, route)
        if not name:
            return
        keys = [(name, None)] + ([(name, route)] if route else [])
        for key in keys:
            self._by_key.setdefault(key, Durations()).add(seconds)

    def learn_all(self, rows: Iterable[tuple[str | None, str | None, float]]) -> int:
        """``(model, route, seconds)`` rows, oldest first (say from the journal)."""
        count = 0
        for model, route, seconds in rows:
            self.learn(model, route, seconds)
            count += 1
        return count

    def durations(self, model: str | None, route: str | None = None) -> Durations | None:
        """The route's durations when it has enough, else the model's, else None."""
        name, route = split_model(model, route)
        for key in ((name, route), (name, None)):
            found = self._by_key.get(key)
            if found is not None and len(found) >= self.min_samples:
                return found
        return None

    def delay(self, model: str | None, route: str | None, age: float, status: str | None = None) -> float:
        """Seconds from now to the next ask about one task of ``age`` seconds."""
        return next_delay(self.durations(model, route), age, status, self.pace)

    def rate(self, model: str | None, route: str | None, age: float) -> float:
        found = self.durations(model, route)
        return found.rate(age) if found is not None else 0.0


def next_delay(durations: Durations | None, age: float, status: str | None, pace: Pace) -> float:
    """Seconds from now to the next ask about one task; the policy in one place.

    ``archiving`` means the outputs are being stored: the end is near, ask
    densely. Unknown model: today's schedule. Known: before its window, at the
    window's start or after ``sparse``; inside, spaced on the G clock; past the
    window (overdue), back off as a fresh task would.
    """
    if status == "archiving":
        return pace.dense
    if durations is None:
        return poll_delay(age, pace.min_interval, pace.max_interval)
    low, high = durations.window
    if age >= high:
        return poll_delay(age - high, pace.min_interval, pace.max_interval)
    due = durations.next_ask(age, pace.spacing) - age
    return min(pace.sparse, max(pace.dense, due))


def crowd_delay(total_rate: float, pace: Pace) -> float | None:
    """When one request reports many tasks (the list), the gap for all of them:
    ``spacing / sqrt(sum of their ending rates)``, never below ``dense``. None
    when no task is near its end."""
    if total_rate <= 0:
        return None
    return min(pace.sparse, max(pace.dense, pace.spacing / math.sqrt(total_rate)))


def observed_duration(
    submitted: float, last_running: float, seen_ended: float, completed: int | None = None
) -> float | None:
    """A task's duration from what a client saw (Unix seconds): it ended after the
    last ask that found it running and by the first that found it ended; the
    server's ``completed`` (whole seconds) narrows that when it agrees. None when
    the end is known too loosely to learn from (say a task first seen long done)."""
    start, end = max(last_running, submitted), seen_ended
    if completed:
        start, end = max(start, float(completed)), min(end, completed + 1.0)
        if start > end:  # clocks disagree: trust what was seen here
            start, end = max(last_running, submitted), seen_ended
    seconds = (start + end) / 2 - submitted
    if seconds <= 0 or end - start > max(2.0, 0.25 * seconds):
        return None
    return seconds


def recorded_durations(
    rows: Iterable[tuple[str, str | None, float, float]],
) -> list[tuple[str, str | None, float]]:
    """``(model, route, seconds)`` from journal rows ``(model, route, submitted_at,
    completed_at)``. A whole-second ``completed_at`` is the server's, floored: the end
    lay in that second and after the create was answered, so the middle of what is
    left of that second is taken."""
    found = []
    for model, route, submitted, completed in rows:
        end = completed
        if float(completed).is_integer():
            if completed + 1 <= submitted:
                continue  # the clocks disagree: no duration to learn
            end = (max(completed, submitted) + completed + 1) / 2
        if end > submitted:
            found.append((model, route, end - submitted))
    return found
