"""Every way a task ends without a result ends the wait, keeps the server's word, closes
the journal row (a re-run submits anew) and is never confused with "we stopped waiting"."""

import time

import pytest
from test_client import ScriptedServer

from hiapi_notebook import errors
from hiapi_notebook.api import submit
from hiapi_notebook.client import HiAPI
from hiapi_notebook.journal import Journal
from hiapi_notebook.models import Task

IMAGE = "gpt-image-2/text-to-image"
ENDINGS = ["fail", "failed", "FAILED", "error", "Error", "cancelled", "CANCELLED", "canceled", "timeout"]


@pytest.mark.parametrize("word", ENDINGS)
def test_the_wait_ends_at_once_on_every_failure_word(word):
    server = ScriptedServer(["queued", "handling", word])
    seen = []
    try:
        with HiAPI(api_key="k", base_url=server.url, poll_interval=0.01) as client:
            started = time.monotonic()
            with pytest.raises(errors.TaskFailed) as info:
                client.tasks.wait("tk-hiapi-scripted", timeout=30, on_update=lambda t: seen.append(t.status))
            assert time.monotonic() - started < 5  # not polled on until the timeout
    finally:
        server.httpd.shutdown()
    assert seen == ["queued", "handling", word]
    assert info.value.task.status == word and info.value.task_status == word  # the server's word
    assert word in str(info.value) and "\n" not in str(info.value)
    assert not isinstance(info.value, errors.PollTimeout)


def test_statuses_parse_case_insensitively_and_unknown_ones_poll_on():
    for word in ENDINGS:
        task = Task.from_dict({"taskId": "t", "status": word})
        assert task.is_terminal and task.failed and not task.succeeded
    assert Task.from_dict({"taskId": "t", "status": "SUCCESS"}).succeeded
    rendering = Task.from_dict({"taskId": "t", "status": "rendering"})
    assert not rendering.is_terminal and not rendering.failed


def test_the_sandbox_ends_a_task_in_the_word_asked_for(sandbox):
    with HiAPI(api_key="k", base_url=sandbox.url, poll_interval=0.01) as client:
        with pytest.raises(errors.TaskFailed) as info:
            client.tasks.run(IMAGE, {"prompt": "a fox #end:Cancelled"})
        task = client.tasks.retrieve(info.value.task_id)
    assert task.status == "Cancelled" and task.completed_at and not task.output
    assert "Cancelled" in str(info.value)


@pytest.mark.parametrize("word", ["cancelled", "error", "timeout"])
def test_the_journal_closes_the_row_and_a_rerun_submits_anew(session, sandbox, word):
    prompt = f"a fox #end:{word}"
    gen = submit(prompt, model=IMAGE, show=False)
    with pytest.raises(errors.TaskFailed) as info:
        gen.wait(30)
    assert word in str(info.value)
    # the job says "fail" whatever the server's word: its "timeout" is ours alone (we stopped waiting)
    assert gen.status == "fail" and gen.job.task.status == word
    (row,) = session.journal.history(10)
    assert row.status == word and row.is_terminal and row.failed

    again = submit(prompt, model=IMAGE, show=False)
    with pytest.raises(errors.TaskFailed):
        again.wait(30)
    assert not again.cached and again.task_id != gen.task_id
    assert sandbox.task_count == 2


def test_a_wait_that_ran_out_is_told_apart_from_a_task_that_timed_out(session, sandbox_factory):
    slow = sandbox_factory(speed=1)
    session.configure(base_url=slow.url, timeout=0.3)
    ours = submit("a slow fox", model=IMAGE, show=False)
    with pytest.raises(errors.PollTimeout):
        ours.wait(10)
    session.configure(base_url=slow.url, timeout=600)
    theirs = submit("a fox #end:timeout", model=IMAGE, show=False)
    with pytest.raises(errors.TaskFailed):
        theirs.wait(30)
    assert (ours.status, theirs.status) == ("timeout", "fail")
    rows = {r.task_id: r for r in session.journal.history(10)}
    assert not rows[ours.task_id].is_terminal  # re-attachable: the task may still finish
    assert rows[theirs.task_id].is_terminal


def test_a_journal_never_reuses_a_row_that_ended_in_any_failure(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        for n, word in enumerate(ENDINGS):
            rec, created = journal.claim("m", {"prompt": word})
            assert created
            journal.set_task_id(rec.id, f"tk-{n}")
            journal.record_result(
                rec.id, Task.from_dict({"taskId": f"tk-{n}", "status": word, "completed": 5})
            )
            assert journal.record_status(rec.id, "handling").status == word  # stays ended
            again, created = journal.claim("m", {"prompt": word})
            assert created and again.id != rec.id
