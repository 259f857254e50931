"""The request budget and poll mode as settings: validated where they enter (the
environment, ``%hiapi config``), handed to the client, and the journal's past
durations handed to the timing model."""

import pytest
from IPython import get_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from hiapi_notebook import _loop
from hiapi_notebook.config import Settings
from hiapi_notebook.errors import RequestValidationError
from hiapi_notebook.session import reset_session

IMAGE = "gpt-image-2/text-to-image"


def test_defaults_and_accepted_values():
    settings = Settings()
    assert settings.request_budget is None and settings.poll_mode == "list"  # no ceiling: learnt
    changed = settings.with_changes(request_budget="5", poll_mode="detail")
    assert changed.request_budget == 5.0 and changed.poll_mode == "detail"
    assert settings.with_changes(request_budget=0.1).request_budget == 0.1
    assert changed.with_changes(request_budget="none").request_budget is None  # the ceiling goes


@pytest.mark.parametrize(
    "value", ["nan", "inf", "-inf", "-1", "0", "0.05", "5000", "abc", True, "1e400", "٣"]
)
def test_a_budget_outside_its_range_is_one_line_naming_the_range(value):
    with pytest.raises(RequestValidationError) as info:
        Settings().with_changes(request_budget=value)
    message = str(info.value)
    assert "\n" not in message and "from 0.1 to 1000" in message and "request_budget" in message


@pytest.mark.parametrize("value", ["fast", "", "LIST", None])
def test_a_poll_mode_other_than_list_or_detail_is_refused(value):
    with pytest.raises(RequestValidationError, match="takes list .* or detail"):
        Settings().with_changes(poll_mode=value)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("HIAPI_REQUEST_BUDGET", "nan", "HIAPI_REQUEST_BUDGET takes requests per second from 0.1 to 1000"),
        ("HIAPI_REQUEST_BUDGET", "lots", "not 'lots'"),
        ("HIAPI_POLL_MODE", "sometimes", "HIAPI_POLL_MODE takes list"),
    ],
)
def test_the_environment_is_checked_too(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(RequestValidationError, match=words):
        Settings.from_env()


@pytest.mark.parametrize("text", ["none", "NONE", "", "  "])
def test_the_environment_may_set_no_ceiling(monkeypatch, text):
    monkeypatch.setenv("HIAPI_REQUEST_BUDGET", text)
    assert Settings.from_env().request_budget is None


def test_the_environment_sets_both(monkeypatch):
    monkeypatch.setenv("HIAPI_REQUEST_BUDGET", "7.5")
    monkeypatch.setenv("HIAPI_POLL_MODE", "Detail")
    settings = Settings.from_env()
    assert settings.request_budget == 7.5 and settings.poll_mode == "detail"


@pytest.fixture
def ip(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_BASE_URL", sandbox.url)
    monkeypatch.setenv("HIAPI_API_KEY", "settings-key")
    reset_session()
    shell = start_ipython() or get_ipython()
    shell.run_line_magic("load_ext", "hiapi_notebook")
    yield shell
    reset_session()


def test_config_magic_shows_checks_and_applies_them(ip, capsys):
    ip.run_line_magic("hiapi", "config")
    shown = capsys.readouterr().out
    assert "request_budget" in shown and "poll_mode" in shown
    with pytest.raises(UsageError, match="from 0.1 to 1000") as info:
        ip.run_line_magic("hiapi", "config request_budget=nan")
    assert "\n" not in str(info.value)
    ip.run_line_magic("hiapi", "config request_budget=4 poll_mode=detail")
    from hiapi_notebook.session import get_session

    client = get_session().client
    assert client.request_budget == 4.0 and client.poll_mode == "detail"

    async def poller_mode():
        return client.poller.mode, client.budget.rate

    assert _loop.run_sync(poller_mode()) == ("detail", 4.0)


def test_a_new_session_plans_from_the_journals_durations(session):
    import hiapi_notebook as hn

    for i in range(3):
        hn.generate(f"remembered {i}", model=IMAGE, show=False)
    assert session.client.timing.durations(IMAGE) is not None  # learnt while they ran
    fresh = reset_session()
    fresh.configure(base_url=session.settings.base_url, api_key="sandbox")
    learnt = fresh.client.timing.durations(IMAGE)
    assert learnt is not None and len(learnt) == 3  # from the journal, before any task of its own
    assert all(0 < s < 5 for s in learnt.samples)


def test_config_shows_the_learnt_rate_and_where_it_came_from(ip, capsys):
    ip.run_line_magic("hiapi", "config")
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("learnt_rate"))
    assert line.split(None, 1)[1].startswith("2 requests a second, from the start (nothing learnt yet")
    ip.run_line_magic("hiapi", "config request_budget=4")
    capsys.readouterr()
    ip.run_line_magic("hiapi", "config learnt_rate")
    shown = capsys.readouterr().out
    assert shown.startswith("learnt_rate") and shown.rstrip().endswith("at most 4 (request_budget)")
    assert "settings-key" not in shown
