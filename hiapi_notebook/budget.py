"""The request budget of one API key: at most ``rate`` requests a second, creates
and polls together, however many tasks are in flight.

HiAPI applies one rate limit per key to creates and polls alike, and names
sub-second polling as the usual cause of 429s. So every request of every client
of this process using a key takes a turn here first. Turns are handed out
evenly spaced (``1/rate`` apart, no bursts), the poller's requests first (one
list request speaks for every task in flight) but never more than two in a row
while creates wait. The poller says when it will ask next (``expect``), so a
create due at that same moment lets the poll go first instead of pushing it a
whole turn later. A 429 pauses everything for its ``Retry-After`` and halves
the rate; each ``RECOVER`` seconds without another 429 doubles it back.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
import weakref

from .config import BUDGET_RANGE

RECOVER = 30.0  # seconds without a 429 before the lowered rate doubles back
LOWEST = 1 / 8  # a 429 storm lowers the rate to at most an eighth
PAUSE_429 = 1.0  # a 429 without Retry-After still pauses this long
URGENT_IN_A_ROW = 2  # polls that may go before a waiting create
HOLD = 0.05  # seconds a create waits for a poll expected at its turn


def lowered(rate: float, strikes: int, since_last: float) -> float:
    """The rate after ``strikes`` 429s, the last ``since_last`` seconds ago:
    halved per strike, and one halving forgiven per ``RECOVER`` seconds."""
    if strikes <= 0 or not math.isfinite(since_last):
        return rate
    left = max(0, strikes - int(max(0.0, since_last) // RECOVER))
    return rate * max(LOWEST, 0.5**left)


class RequestBudget:
    """Turns for requests on one event loop; ``clock`` is ``time.monotonic`` unless a
    test gives another."""

    def __init__(self, rate: float, clock=time.monotonic) -> None:
        self.rate = check_rate(rate)
        self.clock = clock
        self._next = 0.0  # the earliest moment of the next turn
        self._paused_until = 0.0
        self._strikes = 0
        self._last_strike = -math.inf
        self._urgent: collections.deque[asyncio.Future] = collections.deque()
        self._normal: collections.deque[asyncio.Future] = collections.deque()
        self._urgent_run = 0
        self._expected: float | None = None  # when the poller asks next (clock time)
        self._timer: asyncio.TimerHandle | None = None

    @property
    def current_rate(self) -> float:
        return lowered(self.rate, self._strikes, self.clock() - self._last_strike)

    def next_turn(self) -> float:
        """The clock time from which the next turn may be taken."""
        return max(self._next, self._paused_until)

    def expect(self, at: float | None) -> None:
        """The poller's next request is due at clock time ``at`` (None: not planned)."""
        self._expected = at

    def _holding(self, now: float) -> bool:
        """A create now would push a poll that is due this very moment (or a little
        late) a turn later."""
        at = self._expected
        if at is None or self._urgent_run >= URGENT_IN_A_ROW:
            return False
        return -HOLD <= at - now <= min(HOLD, 1 / self.current_rate)

    async def acquire(self, urgent: bool = False) -> None:
        """Wait for a turn; ``urgent`` (the poller's requests) go ahead of creates."""
        now = self.clock()
        if now >= self.next_turn() and not self._urgent:
            if urgent or (not self._normal and not self._holding(now)):
                self._take(now, urgent)
                return
        turn = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(turn)
        self._arm()
        try:
            await turn
        except asyncio.CancelledError:
            for queue in (self._urgent, self._normal):
                if turn in queue:  # still waiting: give up the place (a granted turn is spent)
                    queue.remove(turn)
            raise

    def penalize(self, retry_after: float | None, *, limited: bool = True) -> None:
        """A 429 (``limited``) or another answer with ``Retry-After``: pause every
        request for that long; a 429 also lowers the rate for a while."""
        now = self.clock()
        pause = retry_after if retry_after is not None else (PAUSE_429 if limited else 0.0)
        self._paused_until = max(self._paused_until, now + pause)
        if limited:
            forgiven = int((now - self._last_strike) // RECOVER) if math.isfinite(self._last_strike) else 0
            self._strikes = max(0, self._strikes - forgiven) + 1
            self._last_strike = now
        if self._timer is not None:  # the next turn moved: re-arm for it
            self._timer.cancel()
            self._timer = None
            self._arm()

    def _take(self, now: float, urgent: bool) -> None:
        if urgent:
            self._expected = None  # the poll came; the poller says when the next is due
        self._next = max(now, self._next) + 1 / self.current_rate
        self._urgent_run = self._urgent_run + 1 if urgent else 0

    def _arm(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, self.next_turn() - self.clock())
        self._timer = loop.call_later(wait, self._release)

    def _release(self) -> None:
        self._timer = None
        now = self.clock()
        if now < self.next_turn():
            self._arm_later(now)
            return
        if not self._urgent and self._holding(now):
            assert self._expected is not None
            self._timer = asyncio.get_running_loop().call_later(
                max(0.001, self._expected + HOLD - now), self._release
            )
            return  # the poll is due: creates wait a moment for it
        order = [(self._urgent, True), (self._normal, False)]
        if self._normal and self._urgent_run >= URGENT_IN_A_ROW:
            order.reverse()  # creates get a turn too
        for queue, urgent in order:
            turn = _first_waiting(queue)
            if turn is not None:
                self._take(now, urgent)
                turn.set_result(None)
                break
        if self._urgent or self._normal:
            self._arm_later(now)

    def _arm_later(self, now: float) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, self.next_turn() - now), self._release)


def _first_waiting(queue: collections.deque[asyncio.Future]) -> asyncio.Future | None:
    while queue:
        turn = queue.popleft()
        if not turn.done():
            return turn
    return None


def check_rate(rate: float) -> float:
    low, high = BUDGET_RANGE
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not low <= rate <= high:
        raise ValueError(f"request_budget takes requests per second from {low:g} to {high:g}, not {rate!r}")
    return float(rate)


_budgets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def budget_for(base_url: str, key_fingerprint: str, rate: float) -> RequestBudget:
    """The one budget of this key (named by a digest, never the key) and server on the
    running loop; ``rate`` becomes its rate (the latest client to ask sets it)."""
    loop = asyncio.get_running_loop()
    per_loop = _budgets.setdefault(loop, {})
    key = (base_url, key_fingerprint)
    budget = per_loop.get(key)
    if budget is None:
        budget = per_loop[key] = RequestBudget(rate)
    else:
        budget.rate = check_rate(rate)
    return budget
