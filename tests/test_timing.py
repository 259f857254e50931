"""The timing model and the request budget's arithmetic: pure, no network, no sleep."""

import asyncio
import math
import random

import pytest

from hiapi_notebook.budget import RequestBudget, check_rate
from hiapi_notebook.timing import (
    Durations,
    Pace,
    TimingModel,
    crowd_delay,
    observed_duration,
    poll_delay,
    recorded_durations,
    split_model,
)

MODEL = "gpt-image-2/text-to-image"


def learnt(*seconds, model=MODEL, route=None) -> TimingModel:
    timing = TimingModel()
    for s in seconds:
        timing.learn(model, route, s)
    return timing


def asks(timing: TimingModel, length: float, model=MODEL, status_at=None) -> list[float]:
    """The ages at which one task of ``length`` seconds is asked about, up to the first
    ask that finds it ended."""
    age, found = 0.0, []
    while True:
        status = status_at(age) if status_at else None
        age += timing.delay(model, None, age, status)
        found.append(age)
        if age >= length:
            return found


def test_a_model_never_seen_keeps_todays_schedule():
    timing = TimingModel()
    for age in (0, 5, 30, 300):
        assert timing.delay("never-seen", None, age) == poll_delay(age, 1.0, 10.0)
    # two samples are not enough to plan from
    timing = learnt(18, 18)
    assert timing.durations(MODEL) is None and timing.delay(MODEL, None, 12) == poll_delay(12, 1.0, 10.0)


def test_known_durations_ask_sparsely_before_the_end_and_densely_around_it():
    rng = random.Random(7)
    timing = learnt(*(18 * rng.uniform(0.7, 1.3) for _ in range(20)))
    low, high = timing.durations(MODEL).window
    assert 9 < low < 13 and 23 < high < 28
    ages = asks(timing, 40)
    gaps = [b - a for a, b in zip([0.0, *ages], ages)]
    inside = [g for a, g in zip(ages[1:], gaps[1:]) if low < a <= high - 2]
    assert min(low, Pace.sparse) <= gaps[0] <= Pace.sparse  # nothing to learn early: the first ask waits
    assert len([a for a in ages if a <= low]) <= 1
    assert len(inside) >= 5 and max(inside) < gaps[0]
    assert all(g >= Pace.dense for g in gaps)
    assert inside[-1] < inside[0]  # denser as the chance of an end now grows


def test_learning_asks_less_and_hears_the_end_sooner_than_todays_schedule():
    rng = random.Random(3)
    timing = learnt(*(18 * rng.uniform(0.7, 1.3) for _ in range(5)))  # five earlier tasks
    plain = TimingModel()
    lengths = [12.6 + 10.8 * i / 199 for i in range(200)]  # 18 s +-30%, evenly
    total = {}
    for name, model in (("learnt", timing), ("plain", plain)):
        runs = [asks(model, length) for length in lengths]
        total[name] = (
            sum(len(ages) for ages in runs),  # requests
            sum(ages[-1] - length for ages, length in zip(runs, lengths)),  # how late each end was heard
        )
    assert total["learnt"][0] < total["plain"][0] * 0.5
    assert total["learnt"][1] < total["plain"][1]


def test_archiving_is_asked_about_densely_and_an_overdue_task_backs_off():
    timing = learnt(18, 18.5, 19, 17.5, 18.2)
    assert timing.delay(MODEL, None, 3.0, "archiving") == Pace.dense
    high = timing.durations(MODEL).window[1]
    overdue = [timing.delay(MODEL, None, high + late) for late in (0, 20, 60, 600)]
    assert overdue == sorted(overdue) and overdue[-1] == Pace.max_interval


def test_routes_have_their_own_durations_and_share_the_models():
    timing = TimingModel()
    for _ in range(4):
        timing.learn(MODEL, None, 10.0)
        timing.learn(f"{MODEL}@ext", None, 40.0)  # the route as a suffix...
    assert split_model(f"{MODEL}@ext") == (MODEL, "ext") == split_model(MODEL, "ext")
    assert split_model(MODEL, "default") == (MODEL, None)
    ext = timing.durations(MODEL, "ext")  # ...is the same as the route field
    assert ext is timing.durations(f"{MODEL}@ext") and 35 < ext.window[1] - 2 * ext.spread < 45
    assert len(timing.durations(MODEL)) == 8  # the model's own has both
    assert len(timing.durations(MODEL, "pro")) == 8  # an unseen route: the model's


def test_a_crowd_near_its_ends_is_asked_about_more_often_never_below_dense():
    pace = Pace()
    assert crowd_delay(0.0, pace) is None
    gaps = [crowd_delay(rate, pace) for rate in (0.001, 0.1, 1.0, 100.0)]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] == pace.sparse and gaps[-1] == pace.dense


def test_ending_rate_is_zero_before_the_window_and_grows_through_it():
    durations = Durations()
    for s in (10, 11, 12, 13, 14):
        durations.add(s)
    durations.add(float("nan"))  # ignored, as are zero and negative ones
    durations.add(-1)
    assert len(durations) == 5
    low, high = durations.window
    assert durations.rate(low - 1) == 0.0
    rates = [durations.rate(t) for t in (low + 0.5, 12, 14, high - 0.1)]
    assert rates == sorted(rates) and rates[0] > 0
    assert durations.next_ask(high + 1, 0.5) == math.inf


def test_observed_duration_uses_what_was_seen_and_the_servers_second():
    # seen running at 110.0, ended at 112.0: the middle
    assert observed_duration(100.0, 110.0, 112.0) == pytest.approx(11.0)
    # the server says it completed during second 111: narrowed to 111.0-112.0
    assert observed_duration(100.0, 110.0, 112.0, completed=111) == pytest.approx(11.5)
    # a server clock far off: what was seen here wins
    assert observed_duration(100.0, 110.0, 112.0, completed=500) == pytest.approx(11.0)
    # first seen long after it ended, and no server second to narrow it: nothing to learn
    assert observed_duration(100.0, 100.0, 160.0) is None
    assert observed_duration(100.0, 100.0, 160.0, completed=117) == pytest.approx(17.5)


def test_recorded_durations_take_the_middle_of_the_servers_second():
    rows = [
        (MODEL, None, 100.25, 118.0),  # ended during second 118
        (MODEL, "ext", 100.0, 130.5),  # not whole: as it is
        (MODEL, None, 100.7, 100.0),  # a short task: ended between 100.7 and 101
        (MODEL, None, 100.0, 90.0),  # clocks that disagree teach nothing
    ]
    assert recorded_durations(rows) == [
        (MODEL, None, 18.25),
        (MODEL, "ext", 30.5),
        (MODEL, None, pytest.approx(0.15)),
    ]


# --- the request budget ---


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("rate", [0, -1, 0.01, 5000, float("nan"), float("inf"), True, "2"])
def test_a_budget_refuses_rates_outside_its_range(rate):
    with pytest.raises(ValueError, match="from 0.1 to 1000"):
        check_rate(rate)


def test_polls_go_first_but_never_more_than_two_in_a_row_while_creates_wait():
    async def scenario():
        budget = RequestBudget(1000.0)  # a millisecond apart: order is what is checked
        budget._next = budget.clock() + 0.05  # busy for a moment, so everyone queues
        order = []

        async def ask(name, urgent):
            await budget.acquire(urgent)
            order.append(name)

        await asyncio.gather(
            *(ask(f"create{i}", False) for i in range(3)), *(ask(f"poll{i}", True) for i in range(5))
        )
        return order

    order = asyncio.run(scenario())
    assert order == ["poll0", "poll1", "create0", "poll2", "poll3", "create1", "poll4", "create2"]


def test_a_create_due_with_a_poll_lets_the_poll_go_first():
    async def scenario():
        clock = Clock()
        budget = RequestBudget(2.0, clock=clock)
        budget.expect(clock.now)  # the poller will ask this very moment
        order = []

        async def ask(name, urgent):
            await budget.acquire(urgent)
            order.append(name)

        create = asyncio.create_task(ask("create", False))
        await asyncio.sleep(0)  # the create asked first...
        assert order == []  # ...and waits for the poll
        await ask("poll", True)
        clock.now += 1  # a turn later, the create goes
        await create
        return order

    assert asyncio.run(scenario()) == ["poll", "create"]


def test_a_create_waits_for_a_poll_only_when_it_would_push_it_a_turn_later():
    async def first_turn(rate, poll_in):
        clock = Clock()
        budget = RequestBudget(rate, clock=clock)
        budget.expect(clock.now + poll_in)
        asked = asyncio.create_task(budget.acquire(False))
        await asyncio.sleep(0)
        went = asked.done()
        asked.cancel()
        return went

    assert asyncio.run(first_turn(2.0, 0.03)) is False  # due within this turn: the poll goes first
    assert asyncio.run(first_turn(2.0, 0.3)) is True  # far enough off: no reason to wait
    assert asyncio.run(first_turn(200.0, 0.03)) is True  # turns of 5 ms: the create is done by then
