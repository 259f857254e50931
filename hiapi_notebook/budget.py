"""The request budget of one API key: how many requests a second it may send,
creates and polls together, however many tasks are in flight, learnt from the
server's answers instead of assumed.

HiAPI applies one rate limit per key to creates and polls alike and publishes
no number for it. So every request of every client of this process using a key
takes a turn here first, and ``RateControl`` finds the rate as AWS SDKs'
adaptive retry mode does: slow start (the rate doubles every ``DOUBLING``
seconds that requests wait for turns and answers come back) until the first
429; then ``w_max`` is the rate the server was accepting when it came, the rate
drops to ``BETA * w_max`` and grows back along a CUBIC curve: quickly up to
``w_max``, flat around it, faster again beyond it. It grows only while requests
wait for turns, so an idle notebook keeps what it learnt. A user's
``request_budget`` is a ceiling over all of it.

A 429 is taken as the key's limit only when it could be ours: the rate had just
risen (slow start, or above the ``w_max`` last seen) while it was in use, or
429s are dense (``DENSE`` of the last answers). Any other 429 is random (a busy
platform, another program on the key): its own request waits and is sent
again, nothing else slows down.

Turns are evenly spaced (``1/rate`` apart, no bursts), the poller's requests
first (one list request speaks for every task in flight) but never more than
two in a row while creates wait. The poller says when it will ask next
(``expect``), so a create due at that same moment lets the poll go first.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from .config import BUDGET_RANGE

START = 2.0  # requests a second of a key nothing is known of
FLOOR, TOP = BUDGET_RANGE  # the rate never leaves this range
DOUBLING = 0.5  # seconds of waiting requests in which slow start doubles the rate
BETA = 0.7  # a 429 of ours lowers the rate to this share of w_max
CUBIC = 0.01  # growth after a cut, as a share of w_max: back at w_max after CUBIC_K seconds
CUBIC_K = ((1 - BETA) / CUBIC) ** (1 / 3)
SMOOTHING = 2.0  # seconds: the measured send and answer rates average over about this long
DENSE = (4, 12)  # this many 429s among the latest answers: a limit, whatever the rate did
IN_USE = 0.8  # sent lately at this share of the rate: it is in use (no one waiting or not)
NOISY_FOR = 30.0  # seconds after a random 429 in which a single 429 lowers nothing
PAUSE_429 = 1.0  # a limiting 429 without Retry-After still pauses this long
URGENT_IN_A_ROW = 2  # polls that may go before a waiting create
HOLD = 0.05  # seconds a create waits for a poll expected at its turn
TELL_GROWTH = 1.25  # a rate this much above the one last remembered is remembered again...
TELL_EVERY = 2.0  # ...at most this often (seconds)


@dataclass(frozen=True)
class Learnt:
    """What a key's budget knows, for the journal and ``%hiapi config``."""

    rate: float  # requests a second now
    w_max: float | None  # the rate accepted when the last 429 of ours came (None: never)
    source: str  # where ``rate`` comes from, in words
    at: float  # Unix time
    remembered: bool = False  # read back from the journal (an earlier kernel learnt it)

    def describe(self, ceiling: float | None = None) -> str:
        """For ``%hiapi config``: the rate and where it came from."""
        text = f"{self.rate:.3g} requests a second, from {self.source}"
        if self.remembered:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(min(self.at, 4e10)))
            text = f"{self.rate:.3g} requests a second, from the journal (learnt {when}: {self.source})"
        if ceiling is not None:
            text += f"; at most {ceiling:g} (request_budget)"
        return text


def cubic(w_max: float, elapsed: float) -> float:
    """The rate ``elapsed`` seconds (of use) after a 429 of ours at ``w_max``."""
    return w_max * (1 + CUBIC * (elapsed - CUBIC_K) ** 3)


def elapsed_for(w_max: float, rate: float) -> float:
    """The inverse of ``cubic``: where on the curve ``rate`` lies."""
    share = rate / w_max - 1
    return CUBIC_K + math.copysign(abs(share / CUBIC) ** (1 / 3), share)


class RateControl:
    """The rate of one key, from the turns taken and the answers heard (pure: the
    caller passes the time, so tests need no sleep)."""

    def __init__(self, ceiling: float | None = None, learnt: Learnt | None = None, now: float = 0.0) -> None:
        self.ceiling = None if ceiling is None else check_rate(ceiling)
        self.w_max: float | None = None
        self.elapsed = 0.0  # seconds of use since the last 429 of ours (on the CUBIC curve)
        self.source = "the start (nothing learnt yet for this server and key)"
        self.remembered = False
        self.learnt_at = time.time()
        rate = self.ceiling if self.ceiling is not None else START
        if learnt is not None:
            rate, self.w_max = check_rate(learnt.rate), learnt.w_max
            self.source, self.remembered, self.learnt_at = learnt.source, learnt.remembered, learnt.at
            if self.w_max is not None:  # on the curve, at most at its plateau: no probing at once
                self.w_max = check_rate(self.w_max)
                rate = min(rate, self.w_max)
                self.elapsed = elapsed_for(self.w_max, rate)
        self.rate = self._bounded(rate)
        self._sent = _Meter(now)
        self._accepted = _Meter(now)
        self._grown_at = now
        self._recent: collections.deque[bool] = collections.deque(maxlen=DENSE[1])  # True: a 429
        self._cut_at = -math.inf  # the last cut
        self.cuts = 0
        self._random_at = -math.inf  # the last 429 taken as random
        self._before: tuple | None = None  # what the last cut changed, to undo it

    def _bounded(self, rate: float) -> float:
        top = TOP if self.ceiling is None else self.ceiling
        return min(top, max(FLOOR, rate))

    def set_ceiling(self, ceiling: float | None) -> None:
        """A user's ceiling; before any 429 of the key it is also where to start (their word)."""
        self.ceiling = None if ceiling is None else check_rate(ceiling)
        self.rate = self._bounded(
            self.rate if self.ceiling is None or self.w_max is not None else self.ceiling
        )

    def sent(self, now: float) -> None:
        self._sent.tick(now)

    def measured(self, now: float) -> float:
        """Requests a second sent lately."""
        return self._sent.rate(now)

    def answered(self, now: float, waited: bool) -> None:
        """An answer that was not a 429; ``waited``: requests waited for turns since the
        last one (the rate was what held them back, so it may grow)."""
        self._recent.append(False)
        self._accepted.tick(now)
        elapsed, self._grown_at = min(1.0, max(0.0, now - self._grown_at)), now
        if not waited:
            return
        if self.w_max is None:
            self.rate = self._bounded(self.rate * 2 ** (elapsed / DOUBLING))
            self.source, self.remembered = "answers without a 429 (still growing)", False
        else:
            self.elapsed += elapsed
            self.rate = self._bounded(cubic(self.w_max, self.elapsed))
            if self.rate > self.w_max and not self.source.startswith("answers"):
                self.source = f"answers without a 429 above the {self.w_max:.3g} a second of the last one"
                self.remembered = False

    def throttled(self, now: float, waiting: bool = False, sent_at: float | None = None) -> bool:
        """A 429: True when it is the key's limit (the rate drops), False when random.
        ``waiting``: requests wait for turns (the rate is in use, whatever was measured);
        ``sent_at``: when its request took its turn (one sent before the last cut is
        part of what that cut answered)."""
        if sent_at is not None and sent_at < self._cut_at:
            return True
        self._recent.append(True)
        dense = sum(self._recent) >= DENSE[0]
        in_use = waiting or self.measured(now) >= IN_USE * self.rate
        rising = self.w_max is None or self.rate > self.w_max
        noisy = now - self._random_at < NOISY_FOR
        if dense or (in_use and rising and not noisy):
            self._cut(now)
            return True
        self._random_at = now
        if self._before is not None and self.w_max is not None and self.rate <= self.w_max:
            # Slower than the server took when the cut came, and still a 429: that one was random too.
            self.rate, self.w_max, self.elapsed, self.source, self.remembered = self._before
            self.rate = self._bounded(self.rate)  # a ceiling set since still holds
        self._before = None
        return False

    def _cut(self, now: float) -> None:
        self._before = (self.rate, self.w_max, self.elapsed, self.source, self.remembered)
        self.cuts += 1
        accepted = self._accepted.rate(now)
        # what the server took lately (nothing taken yet: all we know is the rate)
        taken = min(self.rate, accepted) if accepted > 0 else self.rate
        self.w_max = check_rate(min(TOP, max(FLOOR, taken)))
        self.rate = self._bounded(BETA * self.w_max)
        self.elapsed = 0.0
        self._grown_at = self._cut_at = now
        self._recent.clear()
        clock = time.strftime("%H:%M:%S", time.localtime())
        self.source = f"a 429 at {clock} (the server was taking {self.w_max:.3g} requests a second)"
        self.remembered = False

    def learnt(self) -> Learnt:
        at = self.learnt_at if self.remembered else time.time()
        return Learnt(self.rate, self.w_max, self.source, at, self.remembered)


class _Meter:
    """Events a second, averaged over about ``SMOOTHING`` seconds (exponentially)."""

    def __init__(self, now: float) -> None:
        self._value = 0.0
        self._at = now

    def tick(self, now: float) -> None:
        self._value = self.rate(now) + 1 / SMOOTHING
        self._at = max(self._at, now)

    def rate(self, now: float) -> float:
        return self._value * math.exp(-max(0.0, now - self._at) / SMOOTHING)


class RequestBudget:
    """Turns for requests on one event loop; ``clock`` is ``time.monotonic`` unless a
    test gives another. ``ceiling``: the user's ``request_budget`` (None: none);
    ``learnt``: what the journal remembers of this key, to start from."""

    def __init__(
        self,
        ceiling: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        learnt: Learnt | None = None,
    ) -> None:
        self.clock = clock
        self.control = RateControl(ceiling, learnt, clock())
        self.on_learn: Callable[[Learnt], None] | None = None  # hears what is worth remembering
        self._told_rate = self.control.rate
        self._told_at = -math.inf
        self._waited = False  # a request waited for a turn since the last answer
        self._next = 0.0  # the earliest moment of the next turn
        self._paused_until = 0.0
        self._urgent: collections.deque[asyncio.Future] = collections.deque()
        self._normal: collections.deque[asyncio.Future] = collections.deque()
        self._urgent_run = 0
        self._expected: float | None = None  # when the poller asks next (clock time)
        self._timer: asyncio.TimerHandle | None = None

    @property
    def rate(self) -> float:
        """Requests a second now."""
        return self.control.rate

    @property
    def ceiling(self) -> float | None:
        return self.control.ceiling

    @ceiling.setter
    def ceiling(self, value: float | None) -> None:
        self.control.set_ceiling(value)

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
        return -HOLD <= at - now <= min(HOLD, 1 / self.rate)

    async def acquire(self, urgent: bool = False) -> float:
        """Wait for a turn and return its clock time; ``urgent`` (the poller's requests)
        go ahead of creates."""
        now = self.clock()
        if now >= self.next_turn() and not self._urgent:
            if urgent or (not self._normal and not self._holding(now)):
                self._take(now, urgent)
                return now
        self._waited = True
        turn = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(turn)
        self._arm()
        try:
            return await turn
        except asyncio.CancelledError:
            for queue in (self._urgent, self._normal):
                if turn in queue:  # still waiting: give up the place (a granted turn is spent)
                    queue.remove(turn)
            raise

    def answered(self) -> None:
        """An answer that was not a 429: the rate may grow."""
        waited = self._waited or bool(self._urgent or self._normal)
        self._waited = False
        self.control.answered(self.clock(), waited)
        rate = self.control.rate
        if rate >= self._told_rate * TELL_GROWTH and self.clock() - self._told_at >= TELL_EVERY:
            self._tell()

    def penalize(
        self, retry_after: float | None, *, limited: bool = True, sent_at: float | None = None
    ) -> bool:
        """A 429 (``limited``) or another answer with ``Retry-After``. A 429 that is the
        key's limit lowers the rate and pauses every request for its ``Retry-After``
        (True); a random one leaves both (False: its own request waits). Another
        answer's ``Retry-After`` (a 503) pauses every request. ``sent_at``: the turn
        (``acquire``'s answer) of the request answered."""
        now = self.clock()
        if limited:
            waiting = self._waited or bool(self._urgent or self._normal)
            cuts = self.control.cuts
            if not self.control.throttled(now, waiting, sent_at):
                return False
            if self.control.cuts > cuts:  # not one more answer to a request sent before the cut
                self._tell()
        pause = retry_after if retry_after is not None else (PAUSE_429 if limited else 0.0)
        self._paused_until = max(self._paused_until, now + pause)
        if self._timer is not None:  # the next turn moved: re-arm for it
            self._timer.cancel()
            self._timer = None
            self._arm()
        return limited

    def _tell(self) -> None:
        self._told_rate, self._told_at = self.control.rate, self.clock()
        if self.on_learn is not None:
            self.on_learn(self.control.learnt())

    def _take(self, now: float, urgent: bool) -> None:
        if urgent:
            self._expected = None  # the poll came; the poller says when the next is due
        self.control.sent(now)
        self._next = max(now, self._next) + 1 / self.rate
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
                turn.set_result(now)
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
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not math.isfinite(rate)
        or not low <= rate <= high
    ):
        raise ValueError(f"request_budget takes requests per second from {low:g} to {high:g}, not {rate!r}")
    return float(rate)


_budgets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def budget_for(
    base_url: str, key_fingerprint: str, ceiling: float | None, learnt: Learnt | None = None
) -> RequestBudget:
    """The one budget of this key (named by a digest, never the key) and server on the
    running loop. ``ceiling`` becomes its ceiling (the latest client to ask sets it);
    ``learnt`` seeds a budget made here (what the journal remembers)."""
    loop = asyncio.get_running_loop()
    per_loop = _budgets.setdefault(loop, {})
    key = (base_url, key_fingerprint)
    budget = per_loop.get(key)
    if budget is None:
        budget = per_loop[key] = RequestBudget(ceiling, learnt=learnt)
    else:
        budget.ceiling = ceiling
    return budget
