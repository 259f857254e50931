"""The adaptive request budget: slow start, the cut on a 429 of ours, the CUBIC way
back, random 429s told apart, the user's ceiling, and what the journal keeps.
Pure: a fake clock, no network, no sleep; the last tests run the control against
a token bucket and against random 429s, simulated second by second."""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3

import pytest

from hiapi_notebook.budget import (
    BETA,
    CUBIC_K,
    DENSE,
    DOUBLING,
    NOISY_FOR,
    START,
    Learnt,
    RateControl,
    RequestBudget,
    cubic,
    elapsed_for,
)
from hiapi_notebook.journal import open_journal
from hiapi_notebook.learnt_rates import key_id, recall, remember


def busy(control: RateControl, start: float, seconds: float, rate_of_answers: float = 20.0) -> float:
    """Answers that found requests waiting, ``rate_of_answers`` a second; returns the time."""
    t = start
    while t < start + seconds:
        t += 1 / rate_of_answers
        control.sent(t)
        control.answered(t, waited=True)
    return t


def test_slow_start_doubles_while_requests_wait_and_holds_while_they_do_not():
    control = RateControl(now=0.0)
    assert control.rate == START and control.w_max is None
    t = busy(control, 0.0, 2 * DOUBLING)
    assert control.rate == pytest.approx(START * 4, rel=0.1)  # two doublings
    for _ in range(50):  # an idle notebook: a poll now and then, nobody waiting
        t += 1.0
        control.answered(t, waited=False)
    assert control.rate == pytest.approx(START * 4, rel=0.1)  # kept, neither grown nor lost


def test_a_429_of_ours_cuts_to_beta_of_what_the_server_took_then_cubic_brings_it_back():
    control = RateControl(now=0.0)
    t = busy(control, 0.0, 3.0, rate_of_answers=10)  # the server took 10 a second
    assert control.rate > 10  # slow start went past it
    assert control.throttled(t, waiting=True) is True
    assert 7 < control.w_max <= 10  # about what the server was taking (averaged over seconds)
    assert control.rate == pytest.approx(BETA * control.w_max)
    cut, w_max = control.rate, control.w_max
    t = busy(control, t, CUBIC_K, rate_of_answers=cut)
    assert control.rate == pytest.approx(w_max, rel=0.02)  # back at w_max after K seconds of use
    plateau = control.rate
    t = busy(control, t, 1.0, rate_of_answers=plateau)
    assert control.rate < plateau * 1.02  # flat around w_max: no hurry to pass it
    busy(control, t, 6.0, rate_of_answers=plateau)
    assert control.rate > w_max * 1.5  # then it probes beyond, faster and faster


def test_the_curve_and_its_inverse_agree():
    for rate in (3.5, 5.0, 7.0, 50.0):
        assert cubic(5.0, elapsed_for(5.0, rate)) == pytest.approx(rate)
    assert cubic(5.0, 0.0) == pytest.approx(BETA * 5.0)


def test_after_a_random_429_a_single_one_lowers_nothing_for_a_while():
    control = RateControl(now=0.0)
    t = busy(control, 0.0, 3.0, rate_of_answers=10)
    control.throttled(t, waiting=True)
    t = busy(control, t, 0.5, rate_of_answers=5)
    assert control.throttled(t, waiting=True) is False  # random (see below)
    t = busy(control, t, 5.0)
    rate = control.rate
    assert control.throttled(t, waiting=True) is False  # rising, but 429s are noisy here
    assert control.rate == rate
    t = busy(control, t + NOISY_FOR, 1.0)  # a quiet while later, a 429 while rising is ours again
    assert control.throttled(t, waiting=True) is True and control.rate < rate


def test_a_random_429_soon_after_a_cut_undoes_the_cut():
    control = RateControl(now=0.0)
    t = busy(control, 0.0, 3.0, rate_of_answers=10)
    before = control.rate
    assert control.throttled(t, waiting=True) is True  # in slow start: taken as ours
    t = busy(control, t, 0.5, rate_of_answers=5)
    assert control.throttled(t, waiting=True) is False  # slower than the server took, and still 429
    assert control.rate == before and control.w_max is None  # the first one was random too
    t = busy(control, t, 0.2, rate_of_answers=5)
    assert control.throttled(t, waiting=True) is False  # 429s are noisy here: one alone cuts nothing


def test_dense_429s_are_a_limit_whatever_the_rate_did():
    control = RateControl(now=0.0)
    t = busy(control, 0.0, 3.0, rate_of_answers=10)
    control.throttled(t, waiting=True)
    t = busy(control, t, 1.0, rate_of_answers=5)
    control.throttled(t, waiting=True)  # random: undoes the cut
    answers = [control.throttled(t + i * 0.01, waiting=True) for i in range(DENSE[0])]
    first = answers.index(True)  # the random one above counts among the latest answers
    assert first == DENSE[0] - 2 and answers[:first] == [False] * first


def test_a_429_while_the_rate_is_not_in_use_is_random():
    control = RateControl(now=0.0)
    t = 0.0
    for _ in range(10):  # one poll a second at a rate of two: nobody waits
        t += 1.0
        control.sent(t)
        control.answered(t, waited=False)
    assert control.throttled(t + 0.1, waiting=False) is False
    assert control.rate == START


def test_a_429_answering_a_request_sent_before_the_cut_is_the_same_event():
    control = RateControl(now=0.0)
    t = busy(control, 0.0, 3.0, rate_of_answers=10)
    assert control.throttled(t, waiting=True)
    rate = control.rate
    assert control.throttled(t + 0.01, waiting=True, sent_at=t - 0.05) is True  # in flight then
    assert control.rate == rate  # not cut twice


def test_the_ceiling_caps_and_before_any_429_is_where_to_start():
    control = RateControl(ceiling=5, now=0.0)
    assert control.rate == 5.0
    busy(control, 0.0, 5.0)
    assert control.rate == 5.0
    control.set_ceiling(None)
    busy(control, 5.0, 1.0)
    assert control.rate > 5.0
    control.set_ceiling(3)
    assert control.rate == 3.0
    for bad in (0, -1, float("nan"), float("inf"), 1e9, True, "5"):
        with pytest.raises(ValueError, match="from 0.1 to 1000"):
            RateControl(ceiling=bad)


def test_what_was_learnt_seeds_a_new_control_on_its_curve():
    control = RateControl(learnt=Learnt(4.0, 5.0, "a 429", 1.0, remembered=True), now=0.0)
    assert control.rate == 4.0 and control.w_max == 5.0
    assert control.elapsed == pytest.approx(elapsed_for(5.0, 4.0))
    above = RateControl(learnt=Learnt(9.0, 5.0, "a 429", 1.0), now=0.0)
    assert above.rate == 5.0  # never past the last limit at once: the plateau first
    never_limited = RateControl(learnt=Learnt(40.0, None, "answers", 1.0), now=0.0)
    assert never_limited.rate == 40.0 and never_limited.w_max is None
    capped = RateControl(ceiling=2, learnt=Learnt(40.0, None, "answers", 1.0), now=0.0)
    assert capped.rate == 2.0


def test_config_says_the_rate_and_where_it_came_from():
    assert RateControl().learnt().describe().startswith("2 requests a second, from the start")
    text = Learnt(4.2, 6.0, "a 429 at 10:21:03", 1.7e9, remembered=True).describe(5)
    assert text.startswith("4.2 requests a second, from the journal (learnt ")
    assert "a 429 at 10:21:03" in text and text.endswith("at most 5 (request_budget)")


def test_a_limiting_429_pauses_every_request_and_a_random_one_none():
    clock = Clock()
    budget = RequestBudget(clock=clock)
    for _ in range(40):
        clock.now += 0.05
        budget.control.sent(clock.now)
        budget._waited = True
        budget.answered()
    heard = []
    budget.on_learn = heard.append
    budget._waited = True  # requests wait for turns: the rate is in use
    assert budget.penalize(3.0) is True
    assert budget.next_turn() == pytest.approx(clock.now + 3.0)
    assert heard and heard[-1].w_max == budget.control.w_max
    clock.now += 3.5
    budget._waited = True
    budget.answered()
    assert budget.penalize(2.0) is False  # slower than the server took: random (and undoes the cut)
    assert budget.next_turn() < clock.now + 1  # nobody else waits for it
    assert budget.penalize(5.0, limited=False) is False  # a 503's Retry-After pauses, lowers nothing
    assert budget.next_turn() == pytest.approx(clock.now + 5.0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- what the journal keeps ---


def test_the_journal_keeps_the_rate_by_a_digest_never_the_key(tmp_path):
    journal = open_journal(tmp_path)
    fingerprint = "f" * 64
    key = key_id(fingerprint)
    assert fingerprint not in key and len(key) == 24
    assert recall(journal, "http://a/v1", key) is None  # nothing yet (no table either)
    remember(journal, "http://a/v1", key, Learnt(4.5, 6.0, "a 429 at 10:00:00", 1.7e9))
    got = recall(journal, "http://a/v1", key)
    assert got == Learnt(4.5, 6.0, "a 429 at 10:00:00", 1.7e9, remembered=True)
    assert recall(journal, "http://b/v1", key) is None and recall(journal, "http://a/v1", "other") is None
    remember(journal, "http://a/v1", key, Learnt(7.0, None, "answers", 1.8e9))  # one row per key
    assert recall(journal, "http://a/v1", key).rate == 7.0
    journal.close()


@pytest.mark.parametrize(
    "rate, w_max, source, at",
    [
        (b"\x00", None, "x", 1.7e9),  # (SQLite keeps no NaN: it becomes NULL, refused by the table)
        (-3.0, None, "x", 1.7e9),
        (1e12, None, "x", 1.7e9),
        ("fast", None, "x", 1.7e9),
        (4.0, float("inf"), "x", 1.7e9),
        (4.0, 0.0, "x", 1.7e9),
        (4.0, None, "x", -5.0),
        (4.0, None, "x", "yesterday"),
    ],
)
def test_a_row_that_is_not_a_usable_rate_is_ignored(tmp_path, rate, w_max, source, at):
    journal = open_journal(tmp_path)
    remember(journal, "http://a/v1", "k", Learnt(1.0, None, "x", 1.0))  # makes the table
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")
    conn.execute(
        "UPDATE learnt_rates SET rate = ?, w_max = ?, source = ?, learnt_at = ?", (rate, w_max, source, at)
    )
    conn.commit()
    conn.close()
    assert recall(journal, "http://a/v1", "k") is None
    journal.close()


def test_odd_text_in_a_row_is_cut_to_printable_words(tmp_path):
    journal = open_journal(tmp_path)
    remember(journal, "http://a/v1", "k", Learnt(3.0, None, "x", 1.7e9))
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")
    conn.execute("UPDATE learnt_rates SET source = ?", ("\x1b[31mred\u202e" + "y" * 500,))
    conn.commit()
    conn.close()
    got = recall(journal, "http://a/v1", "k")
    assert got is not None and got.source.isprintable() and len(got.source) <= 160
    journal.close()


# --- the control against servers, simulated ---


def simulate(seconds: float, limit: float | None = None, random_429: float = 0.0, learnt=None, seed=1):
    """Requests as fast as the control allows (there is always one waiting) against a
    token bucket of ``limit`` a second (one second's burst; 429s with whole seconds of
    Retry-After) and/or random 429s; returns (answered 429, sent, accepted a second,
    429s among the first 50, the control)."""
    rng = random.Random(seed)
    control = RateControl(None, learnt, 0.0)
    t = last = paused = 0.0
    tokens = limit or 0.0
    sent = limited = first_50 = 0
    while t < seconds:
        control.sent(t)
        sent += 1
        retry_after = 1.0
        refused = False
        if limit is not None:
            tokens = min(limit, tokens + (t - last) * limit)
            last = t
            refused = tokens < 1
            if refused:
                retry_after = max(1, math.ceil((1 - tokens) / limit))
            else:
                tokens -= 1
        refused = refused or rng.random() < random_429
        answer = t + 0.01
        if refused:
            limited += 1
            first_50 += sent <= 50
            if control.throttled(answer, waiting=True, sent_at=t):
                paused = max(paused, answer + retry_after)
        else:
            control.answered(answer, waited=True)
        t = max(t + 1 / control.rate, paused)
    return limited, sent, (sent - limited) / seconds, first_50, control


def test_against_a_real_limit_few_429s_and_nearly_all_of_the_limit_used():
    limited, sent, accepted, _, control = simulate(120, limit=5)
    assert limited <= 0.05 * sent  # at most one request in twenty answered 429
    assert accepted >= 0.9 * 5
    assert 4 <= control.w_max <= 6.5


def test_a_second_kernel_starts_at_what_the_first_learnt():
    *_, first = simulate(45, limit=5)
    _, _, _, first_50, _ = simulate(20, limit=5, learnt=first.learnt(), seed=2)
    assert first_50 <= 2
    *_, fresh_first_50, _ = simulate(20, limit=5, seed=2)
    assert fresh_first_50 >= first_50


def test_random_429s_do_not_hold_the_rate_down():
    limited, sent, accepted, _, control = simulate(30, random_429=0.1)
    assert 0.05 < limited / sent < 0.15  # they did come
    assert accepted > 40  # and the rate grew through them (no limit there)


def test_turns_are_taken_at_the_learnt_rate_on_a_real_loop():
    async def scenario():
        budget = RequestBudget(learnt=Learnt(50.0, None, "answers", 1.0))
        loop = asyncio.get_running_loop()
        start = loop.time()
        turns = await asyncio.gather(*(budget.acquire() for _ in range(26)))
        return loop.time() - start, turns

    took, turns = asyncio.run(scenario())
    assert turns == sorted(turns)
    assert 0.45 <= took < 3  # 25 gaps of 20 ms (the upper bound only catches a runaway)
