"""The recorder: how the runtime's hooks keep a journal row in step with a job, and how a
row turns back into a request, a task and local files. Real jobs against the sandbox, a
real journal file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiapi_notebook import errors
from hiapi_notebook.client import AsyncHiAPI
from hiapi_notebook.journal import Journal
from hiapi_notebook.models import Request
from hiapi_notebook.recorder import JournalStore, files_from_record, request_from_record, task_from_record
from hiapi_notebook.runtime import Runtime

IMAGE = "gpt-image-2/text-to-image"


@pytest.fixture
def recorded(sandbox, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    store = JournalStore(journal, tmp_path / "outputs")
    client = AsyncHiAPI(api_key="k", base_url=sandbox.url, poll_interval=0.02)
    yield Runtime(client, store), journal, tmp_path
    journal.close()


def run(runtime, journal, prompt, model=IMAGE):
    rec, new = journal.claim(model, {"prompt": prompt})
    assert new
    req = request_from_record(rec, Request(model=model, input={"prompt": prompt}, timeout=30))
    job = runtime.submit(req, record_id=rec.id)
    try:
        job.wait(30)
    except errors.HiAPIError:
        pass
    return job, journal.get(rec.id)


def test_a_success_is_written_with_its_task_id_events_and_local_copies(recorded):
    runtime, journal, tmp_path = recorded
    job, row = run(runtime, journal, "a kept fox")
    assert row.status == "success" and row.task_id == job.task_id
    statuses = [status for _at, status in row.events]
    assert statuses[0] == "submitted" and statuses[-1] == "success"
    (entry,) = row.files
    path = Path(entry["path"])
    assert path.is_file() and path.is_relative_to(tmp_path / "outputs")
    assert entry["sha256"] and entry["bytes"] == path.stat().st_size
    # ...and turns back into what a re-run shows, with nothing sent
    task = task_from_record(row)
    assert task.task_id == job.task_id and task.succeeded and task.output[0].url == job.task.output[0].url
    (file,) = files_from_record(row, tmp_path / "outputs")
    assert file.path == path and file.problem is None and file.read() == path.read_bytes()
    again = request_from_record(row, None)
    assert again.model == IMAGE and again.input == {"prompt": "a kept fox"}
    assert again.idempotency_key == row.idempotency_key


def test_a_failed_task_closes_its_row_with_the_servers_reason(recorded):
    runtime, journal, _ = recorded
    job, row = run(runtime, journal, "broken #fail")
    assert job.status == "fail" and row.status == "fail"
    assert row.error["code"] and "rejected" in row.error["message"]


def test_a_refused_create_closes_its_row_but_a_busy_server_leaves_it_open(recorded, sandbox):
    runtime, journal, _ = recorded
    _job, refused = run(runtime, journal, "anything", model="no-such-model")
    assert refused.status == "fail" and refused.error["code"] == "INVALID_REQUEST"
    sandbox.inject("503", method="POST", times=5, retry_after=0)
    _job, busy = run(runtime, journal, "later")
    assert busy.status == "pending" and busy.task_id is None  # a re-run re-sends with its key


def test_a_missing_local_copy_is_said_not_hidden(recorded):
    runtime, journal, tmp_path = recorded
    _job, row = run(runtime, journal, "soon gone")
    Path(row.files[0]["path"]).unlink()
    (file,) = files_from_record(row, tmp_path / "outputs")
    assert file.problem == "local copy missing" and file.read() is None
