"""Estimates, the spend limit's checks and words, the 402's balance, the spend report and the
history's "?" (in process, against the sandbox). The whole path in a kernel is
``test_costs_kernel.py``."""

from __future__ import annotations

import html
import math
import re

import pytest

from hiapi_notebook import api
from hiapi_notebook.config import Settings
from hiapi_notebook.costs import Estimate, prices_as_of, refusal, spend_rows, totals, unknown_reason
from hiapi_notebook.errors import RequestValidationError, SpendLimitError, error_for
from hiapi_notebook.form.estimate import estimate_text
from hiapi_notebook.grammar import LineError
from hiapi_notebook.records import Record
from hiapi_notebook.subcommands import SandboxArgs, parse_subcommand
from hiapi_notebook.views.history import HistoryView
from hiapi_notebook.views.spend import SpendView

FLARE = "gpt-image-2.5-flare/text-to-image"  # $0.05 at 1K (its default), $0.12 at 4K
UNPRICED = "gpt-image-2/text-to-image"  # the catalogue has no number for it
VIDEO = "seedance-2.0-fast"  # per second: no price without a duration


# --- estimates ------------------------------------------------------------------------------


def test_an_estimate_counts_priced_unknown_and_reused_apart():
    est = Estimate.of(
        [
            (FLARE, {"prompt": "a"}, False),
            (FLARE, {"prompt": "b", "resolution": "4K"}, False),
            (UNPRICED, {"prompt": "c"}, False),
            (FLARE, {"prompt": "d"}, True),  # from the journal: free, not a task to send
        ]
    )
    assert (est.tasks, est.priced, est.unknown, est.reused) == (3, 2, 1, 1)
    assert est.total == pytest.approx(0.17)
    text = est.text()
    assert "3 tasks, ≈ $0.170 + 1 of unknown price" in text
    assert "1 reused from the journal (free)" in text
    assert "HiAPI's published list prices as of 2026-09-29" in text


def test_a_model_without_a_price_is_never_counted_as_free():
    est = Estimate.of([(UNPRICED, {"prompt": "x"}, False)] * 4)
    assert est.priced == 0 and est.unknown == 4
    assert "$" not in est.text() and "price unknown" in est.text()
    assert "no published price" in est.text()  # and why


def test_reasons_for_an_unknown_price():
    assert unknown_reason(FLARE, {"prompt": "x"}) is None
    assert "no published price" in unknown_reason(UNPRICED, {"prompt": "x"})
    assert "per second" in unknown_reason(VIDEO, {"prompt": "no duration"})
    assert "resolution" in unknown_reason(VIDEO, {"duration": 5, "resolution": "1080p"})  # no 1080p row
    assert "does not know" in unknown_reason("someone/new-model-9", {})


def test_prices_are_dated_by_the_catalogue():
    assert prices_as_of([FLARE]) == "2026-09-29"
    assert prices_as_of(["flux-1.1-pro"]) == "an undated catalogue snapshot"  # no date recorded


def test_the_form_says_the_price_or_why_there_is_none():
    assert estimate_text(FLARE, {"prompt": "x"}) == (
        "≈ $0.050 per task (HiAPI's published list prices as of 2026-09-29)"
    )
    assert estimate_text(FLARE, {"prompt": "x"}, tasks=4).startswith("≈ $0.200 for 4 tasks")
    assert estimate_text(UNPRICED, {"prompt": "x"}).startswith("price unknown: ")
    assert estimate_text(FLARE, None) == ""  # settings with errors: nothing to estimate yet


# --- the limit --------------------------------------------------------------------------------


def test_the_refusal_names_estimate_spend_limit_and_both_ways_on():
    est = Estimate.of([(FLARE, {"prompt": "x"}, False)] * 12 + [(UNPRICED, {"prompt": "x"}, False)])
    line = refusal(est, 0.25, 0.5, in_notebook=True)
    assert line is not None and "\n" not in line
    for part in (
        "13 tasks estimated at $0.600 + 1 of unknown price",
        "this session has sent ≈ $0.250",
        "spend_limit is $0.500",
        "--yes (yes=True)",
        "%hiapi config spend_limit=1",
    ):
        assert part in line, line
    assert "configure(spend_limit=" in refusal(est, 0.25, 0.5, in_notebook=False)
    assert refusal(est, 0.0, 0.6, in_notebook=True) is None  # exactly at the limit fits
    assert refusal(Estimate.of([(UNPRICED, {}, False)] * 50), 0.0, 0.0, in_notebook=True) is None


@pytest.mark.parametrize(
    "value", ["nan", "inf", "-inf", "-1", "1e7", "abc", "", "   ", "５", "1,5", "0x10", "\u202e5"]
)
def test_a_bad_spend_limit_is_one_line(value):
    with pytest.raises(RequestValidationError) as err:
        Settings().with_changes(spend_limit=value)
    message = str(err.value)
    assert "\n" not in message and "spend_limit" in message and "none" in message


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.01, True, "x" * 10_000, [1], 1e12])
def test_a_bad_spend_limit_from_python_is_refused(value):
    with pytest.raises(RequestValidationError):
        Settings().with_changes(spend_limit=value)


def test_spend_limit_words_and_default(monkeypatch):
    assert Settings().spend_limit == 5.0  # a new user's typo of -n 100 on video is caught
    assert Settings().with_changes(spend_limit="none").spend_limit is None
    assert Settings().with_changes(spend_limit="off").spend_limit is None
    assert Settings().with_changes(spend_limit="$2.50").spend_limit == 2.5
    assert Settings().with_changes(spend_limit=0).spend_limit == 0
    monkeypatch.setenv("HIAPI_SPEND_LIMIT", "12")
    assert Settings.from_env().spend_limit == 12.0
    monkeypatch.setenv("HIAPI_SPEND_LIMIT", "none")
    assert Settings.from_env().spend_limit is None
    monkeypatch.setenv("HIAPI_SPEND_LIMIT", "")
    assert Settings.from_env().spend_limit == 5.0
    monkeypatch.setenv("HIAPI_SPEND_LIMIT", "lots")
    with pytest.raises(RequestValidationError, match="HIAPI_SPEND_LIMIT takes USD"):
        Settings.from_env()


def test_the_python_api_is_refused_before_anything_is_sent_and_yes_sends(session, sandbox):
    session.configure(spend_limit=0.1)
    batch = [{"model": FLARE, "prompt": f"boat {i}"} for i in range(3)]
    with pytest.raises(SpendLimitError, match=r"3 tasks estimated at \$0.150"):
        api.generate_many(batch)
    with pytest.raises(SpendLimitError):
        api.generate(model=FLARE, prompt="alone", resolution="4K")  # $0.12 alone passes $0.10
    assert [m for m, _ in sandbox.requests if m == "POST"] == []
    made = api.generate_many(batch, yes=True)
    assert [g.status for g in made] == ["success"] * 3
    assert made.estimate is not None and made.estimate.total == pytest.approx(0.15)
    assert session.spend.total == pytest.approx(0.15)
    again = api.generate_many(batch)  # all from the journal: costs nothing, is not refused
    assert all(g.cached for g in again) and again.estimate.tasks == 0
    assert sandbox.task_count == 3
    rows = api.spend()
    session_rows = [r for r in rows if r["scope"] == "this session"]
    assert totals(session_rows)["usd"] == pytest.approx(0.15)
    assert totals([r for r in rows if r["scope"] == "this folder"])["tasks"] == 3


def test_a_refused_create_is_not_counted_as_spent(sandbox_factory, session):
    broke = sandbox_factory(balance=0.0)
    session.configure(base_url=broke.url)
    made = api.generate_many([{"model": FLARE, "prompt": f"p{i}"} for i in range(4)], concurrency=1)
    statuses = [g.status for g in made]
    assert statuses == ["error", "stopped", "stopped", "stopped"]
    assert "not sent: HiAPI answered 402" in str(made[1].error)
    assert session.spend.total == 0  # nothing was created, nothing counted
    assert [m for m, _ in broke.requests if m == "POST"] == ["POST"]  # one create, then none


# --- the 402's balance --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, balance",
    [
        ("insufficient balance: this task is estimated at $0.0500 and the balance is $0.0300", 0.03),
        ("Balance: $12.5 left", 12.5),
        ("no money", None),
        ("balance " + "9" * 5000, None),  # an absurd number is not read as one
        ("<b>balance</b> is $1", 1.0),  # only the number is taken from the server's words
    ],
)
def test_a_402_names_the_balance_the_server_reported(message, balance):
    error = error_for(402, None, message)
    assert error.balance == balance
    assert "top up your HiAPI account at https://www.hiapi.ai" in str(error)
    if balance is not None:
        assert f"${balance:.4f}, as the server reported" in str(error)
    else:
        assert "did not say" in str(error)


# --- the report and the history -----------------------------------------------------------------


def test_spend_rows_by_day_and_model_with_the_unknown_share():
    day = 1_800_000_000.0
    rows = spend_rows(
        "this folder",
        [(day, FLARE, 0.05), (day + 1, FLARE, 0.12), (day, UNPRICED, None), (day + 86400, FLARE, 0.05)],
    )
    assert [(r["model"], r["tasks"], r["unknown"]) for r in rows] == [
        (FLARE, 2, 0),
        (UNPRICED, 1, 1),
        (FLARE, 1, 0),
    ]
    sums = totals(rows)
    assert sums["tasks"] == 4 and sums["usd"] == pytest.approx(0.22) and sums["unknown_share"] == 0.25
    view = SpendView(rows)
    text = repr(view)
    assert "this session: nothing sent" in text
    assert "this folder: 4 tasks, ≈ $0.220 + 1 of unknown price (25% of tasks)" in text
    assert "never as $0" in text and "?" in text  # the unknown row's usd
    assert "25% of tasks" in view._repr_html_()


def _record(model: str, cost: float | None) -> Record:
    return Record(
        id=1,
        request_hash="h",
        variant=0,
        model=model,
        route=None,
        storage=None,
        input={"prompt": "<b>x</b>"},
        idempotency_key="k",
        task_id="tk-1",
        status="success",
        created_at=1_800_000_000.0,
        cost_estimate=cost,
    )


def test_the_history_says_why_a_cost_is_unknown():
    view = HistoryView([_record(UNPRICED, None), _record(FLARE, 0.05)])
    html = view._repr_html_()
    assert 'title="price unknown: the catalogue has no published price for this model">?</span>' in html
    assert ">$0.050</span>" in html and "list prices as of 2026-09-29" in html
    assert "—" not in html.split("hiapi-journal-head")[1]
    header, _rule, unpriced = repr(view).splitlines()[:3]  # the text table: the unpriced row
    columns = re.split(r"\s{2,}", header.strip())
    assert re.split(r"\s{2,}", unpriced.strip())[columns.index("cost")] == "?"


# --- the in-kernel sandbox's balance -------------------------------------------------------------


def test_the_sandbox_subcommand_takes_a_balance():
    assert parse_subcommand("sandbox", "--balance 0.25") == SandboxArgs(None, 0.25)
    assert parse_subcommand("sandbox", "--speed 4 --balance $1") == SandboxArgs(4.0, 1.0)
    assert parse_subcommand("sandbox", "--balance 0") == SandboxArgs(None, 0.0)


@pytest.mark.parametrize(
    "rest",
    [
        "--balance",
        "--balance -1",
        "--balance nan",
        "--balance inf",
        "--balance ５",
        "--balance 1e9",
        "--balance 1 --balance 2",
        "--wealth 5",
    ],
)
def test_a_bad_sandbox_balance_is_one_line(rest):
    with pytest.raises(LineError) as err:
        parse_subcommand("sandbox", rest)
    assert "\n" not in str(err.value) and ("--balance" in str(err.value) or "usage" in str(err.value))


# --- the form ---------------------------------------------------------------------------------


def test_the_form_shows_the_estimate_before_generate_and_refuses_past_the_limit(session, sandbox):
    from hiapi_notebook.form import PromptForm

    form = PromptForm(model=FLARE, prompt="a kite over dunes")
    shown = html.unescape(form.status_label.value)
    assert "≈ $0.050 per task (HiAPI's published list prices as of 2026-09-29)" in shown
    form.controls["resolution"].value = "4K"
    assert "≈ $0.120 per task" in form.status_label.value
    session.configure(spend_limit=0.1)
    form.generate_button.click()
    assert "spend_limit is $0.100" in form.errors["form"] and "raise the limit" in form.errors["form"]
    assert form.generations == [] and [m for m, _ in sandbox.requests if m == "POST"] == []
    form.controls["resolution"].value = "1K"
    form.generate_button.click()
    form.wait(30)
    assert sandbox.task_count == 1
    assert "≈ $0.050 submitted" in form.status_label.value
    form.model_dropdown.value = UNPRICED
    assert "price unknown: the catalogue has no published price" in form.status_label.value
    form.prompt_area.value = "another"
    form.generate_button.click()
    form.wait(30)
    assert "≈ $0.050 + 1 of unknown price submitted" in form.status_label.value


def test_a_single_task_shows_its_own_price_and_where_it_comes_from(session):
    from hiapi_notebook.views.render import status_bundle
    from hiapi_notebook.views.text import state_text

    made = api.generate(model=FLARE, prompt="a single kite", resolution="2K")
    assert "≈ $0.080" in state_text(made.job)
    bundle = status_bundle(made.job)
    assert "≈ $0.080" in bundle["text/plain"]
    assert (
        'title="≈ price: an estimate from HiAPI&#x27;s published list prices as of 2026-09-29"'
        in bundle["text/html"]
    )
    assert "tex2jax_ignore mathjax_ignore" in bundle["text/html"]
    again = api.generate(model=FLARE, prompt="a single kite", resolution="2K")  # from the journal
    assert again.cached and "$" not in state_text(again.job)
    unpriced = api.generate(model=UNPRICED, prompt="no price")
    assert "$" not in state_text(unpriced.job)  # unknown is never shown as $0
