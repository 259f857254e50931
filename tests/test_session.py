"""The session's rules for paid tasks: what a failed create leaves in the journal,
which server a cached result belongs to, and that waiting survives outages."""

import asyncio
import threading

import pytest

from hiapi_notebook import errors
from hiapi_notebook.api import submit
from hiapi_notebook.session import reset_session

IMAGE = "gpt-image-2/text-to-image"


def rows(session):
    return session.journal.history(100)


def test_a_create_that_may_have_landed_keeps_its_row_and_key(session, sandbox):
    sandbox.inject("500", method="POST", times=5, retry_after=0)  # the first try and 4 retries
    with pytest.raises(errors.ServerError):
        submit("a fox", model=IMAGE, show=False).wait()
    (row,) = rows(session)
    assert row.status == "pending" and row.task_id is None
    again = submit("a fox", model=IMAGE, show=False).wait()
    assert again.status == "success"
    (row_after,) = rows(session)  # the same row, re-sent with its own idempotency key
    assert row_after.id == row.id and row_after.idempotency_key == row.idempotency_key
    assert sandbox.task_count == 1


def test_a_refused_create_closes_its_row(session, sandbox):
    with pytest.raises(errors.InvalidRequestError):
        submit("a fox", model="no-such-model", show=False).wait()
    (row,) = rows(session)
    assert row.status == "fail" and row.error["code"] == "INVALID_REQUEST"


def test_results_belong_to_the_server_that_made_them(session, sandbox_factory):
    first = submit("a fox", model=IMAGE, show=False).wait()
    other = sandbox_factory()
    session.configure(base_url=other.url)
    second = submit("a fox", model=IMAGE, show=False).wait()
    assert not second.cached and second.task_id != first.task_id
    assert other.task_count == 1


def test_waiting_survives_an_outage_longer_than_the_retries(session, sandbox):
    gen = submit("a patient fox", model=IMAGE, show=False)
    sandbox.inject("503", method="GET", times=12, retry_after=0)  # beyond 4 retries twice over
    assert gen.wait(30).status == "success"


def test_cancelling_one_awaiter_leaves_the_handle_intact(session, sandbox):
    gen = submit("a fox to await", model=IMAGE, show=False)
    outcome = {}

    def impatient():
        async def go():
            try:
                await asyncio.wait_for(gen, 0.001)
            except TimeoutError:
                outcome["timed out"] = True

        asyncio.run(go())

    thread = threading.Thread(target=impatient)
    thread.start()
    thread.join(10)
    assert outcome == {"timed out": True}
    assert gen.wait(30).status == "success" and not gen.job.future.cancelled()


def test_status_of_a_task_already_followed_shows_that_job(session, sandbox_factory):
    slow = sandbox_factory(speed=2)  # an image takes about 3 s
    session.configure(base_url=slow.url)
    gen = submit("a fox followed twice", model=IMAGE, show=False)
    for _ in range(200):
        if gen.task_id:
            break
        threading.Event().wait(0.01)
    watched = session.attach(gen.task_id)
    assert watched is gen.job and not watched.done
    assert gen.wait(30).status == "success"


def test_a_running_job_is_joined_and_only_the_latest_results_are_kept(sandbox_factory, tmp_path, monkeypatch):
    """The session finds a job in flight by its journal row (a re-run joins it), and keeps
    the latest results for the form's picker even when no name holds them (a plain
    %%hiapi cell), but no more: thousands of results per kernel must not pile up."""
    import gc
    import weakref

    from hiapi_notebook import session as session_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    monkeypatch.setattr(session_module, "MAX_REMEMBERED", 2)
    s = reset_session()
    slow = sandbox_factory(speed=5)  # an image takes about a second
    s.configure(base_url=slow.url, api_key="sandbox", poll_interval=0.02)
    try:
        gen = submit("a fox run twice", model=IMAGE, show=False)
        again = submit("a fox run twice", model=IMAGE, show=False)
        assert again.job is gen.job and not gen.job.done
        assert gen.wait(30).status == "success"
        first = weakref.ref(gen.job)
        del gen, again
        for prompt in ("a second fox", "a third fox"):
            assert submit(prompt, model=IMAGE, show=False).wait(30).status == "success"
        gc.collect()
        assert first() is None  # pushed out of the latest two, and nothing names it
        assert [job.request.input["prompt"] for job in s.jobs] == ["a second fox", "a third fox"]
        assert sorted(map(id, s._by_record.values())) == sorted(map(id, s.jobs))  # no more
        assert submit("a fox run twice", model=IMAGE, show=False).cached  # the journal has it
    finally:
        reset_session()


def test_a_changed_callback_is_another_request(session, sandbox, callback_receiver):
    first, second = callback_receiver(), callback_receiver()
    a = submit("a fox", model=IMAGE, show=False, callback=first.url).wait()
    b = submit("a fox", model=IMAGE, show=False, callback=second.url).wait()
    assert not b.cached and b.task_id != a.task_id
    c = submit("a fox", model=IMAGE, show=False, callback=second.url).wait()
    assert c.cached and c.task_id == b.task_id


def test_a_wait_that_runs_out_is_a_warning_not_a_failure(session, sandbox_factory):
    from hiapi_notebook.views.render import status_bundle

    slow = sandbox_factory(speed=1)
    session.configure(base_url=slow.url, timeout=0.3)
    gen = submit("a slow fox", model=IMAGE, show=False)
    with pytest.raises(errors.PollTimeout):
        gen.wait(10)
    html = status_bundle(gen.job)["text/html"]
    assert gen.status == "timeout" and "hiapi-bar-warning" in html and "may still complete" in html
    (row,) = rows(session)
    assert row.status not in ("fail", "success") and row.task_id == gen.task_id  # re-attachable


# -- leaving the built-in sandbox gives back what was there ------------------------------------


@pytest.fixture
def fresh_session(tmp_path, monkeypatch):
    """A session as a notebook starts it, in tmp_path; its built-in sandbox stops afterwards."""
    from hiapi_notebook.session import reset_session

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    monkeypatch.delenv("HIAPI_BASE_URL", raising=False)
    s = reset_session()
    yield s
    if s.sandbox is not None:
        s.sandbox.stop()
    reset_session()


def test_leaving_the_sandbox_restores_the_real_key_and_environment(
    fresh_session, sandbox_factory, monkeypatch
):
    import os

    monkeypatch.setenv("HIAPI_API_KEY", "sk-the-real-key")
    real = sandbox_factory(key="sk-the-real-key")  # stands in for HiAPI: only the real key gets in
    fresh_session.start_sandbox(speed=50)
    fresh_session.configure(poll_interval=0.02)
    assert os.environ["HIAPI_API_KEY"] == "sandbox" and fresh_session.using_builtin_sandbox
    assert submit("a fox in the sandbox", model=IMAGE, show=False).wait(30).status == "success"

    fresh_session.configure(base_url=real.url)  # as `%hiapi config base_url=...`
    assert os.environ["HIAPI_API_KEY"] == "sk-the-real-key"
    assert "HIAPI_BASE_URL" not in os.environ
    assert fresh_session.settings.api_key is None  # the key comes from the environment again
    assert fresh_session.settings.public()["api_key"] == "set"
    gen = submit("a fox for real", model=IMAGE, show=False).wait(30)  # 401 if "sandbox" were sent
    assert gen.status == "success" and real.task_count == 1


def test_leaving_the_sandbox_with_no_key_before_leaves_no_key(fresh_session, monkeypatch):
    import os

    monkeypatch.delenv("HIAPI_API_KEY", raising=False)
    fresh_session.start_sandbox(speed=50)
    fresh_session.start_sandbox(speed=50)  # entering twice must not forget what came before
    fresh_session.configure(base_url="https://api.hiapi.ai/v1")
    assert "HIAPI_API_KEY" not in os.environ and "HIAPI_BASE_URL" not in os.environ
    assert fresh_session.settings.api_key is None
    assert fresh_session.settings.public()["api_key"].startswith("missing")
    with pytest.raises(errors.MissingAPIKeyError):
        fresh_session.require_key()


def test_a_login_in_the_sandbox_goes_back_to_the_server_used_before(fresh_session, monkeypatch):
    import os

    monkeypatch.setenv("HIAPI_API_KEY", "sk-env-key")
    monkeypatch.setenv("HIAPI_BASE_URL", "https://staging.example.test/v1")
    fresh_session.start_sandbox(speed=50)
    fresh_session.configure(api_key="sk-typed-in", base_url=None)  # as `%hiapi login`
    assert os.environ["HIAPI_BASE_URL"] == "https://staging.example.test/v1"
    assert os.environ["HIAPI_API_KEY"] == "sk-env-key"
    assert fresh_session.settings.api_key == "sk-typed-in"
    assert fresh_session.client.base_url == "https://staging.example.test/v1"
    assert not fresh_session.using_builtin_sandbox


def test_a_refused_change_leaves_the_sandbox_in_place(fresh_session, monkeypatch):
    import os

    monkeypatch.setenv("HIAPI_API_KEY", "sk-env-key")
    url = fresh_session.start_sandbox(speed=50)
    with pytest.raises(errors.RequestValidationError, match="port 99999"):
        fresh_session.configure(base_url="http://127.0.0.1:99999")
    assert fresh_session.using_builtin_sandbox and os.environ["HIAPI_BASE_URL"] == url
    assert os.environ["HIAPI_API_KEY"] == "sandbox"
