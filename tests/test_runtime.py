"""The runtime on its own, over real HTTP to the sandbox: jobs, and the slots (``Gate``)
that give a batch its concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from hiapi_notebook import errors
from hiapi_notebook.client import AsyncHiAPI
from hiapi_notebook.models import Request
from hiapi_notebook.runtime import Gate, Runtime

IMAGE = "gpt-image-2/text-to-image"


@pytest.fixture
def runtime(sandbox_factory):
    server = sandbox_factory(speed=10)  # an image takes about half a second
    return Runtime(AsyncHiAPI(api_key="k", base_url=server.url, poll_interval=0.02)), server


def request(prompt: str) -> Request:
    return Request(model=IMAGE, input={"prompt": prompt}, timeout=30)


def posted_prompts(server) -> list[str]:
    return [body["input"]["prompt"] for body in server.last_inputs]


def test_jobs_behind_a_gate_wait_then_take_slots_in_order(runtime):
    rt, server = runtime
    gate = Gate(2)
    entered: list[str] = []
    lock = threading.Lock()

    def watch(job):
        with lock:
            if job.status != "waiting" and job.request.prompt not in entered:
                entered.append(job.request.prompt)

    jobs = []
    for i in range(5):
        job = rt.submit(request(f"p{i}"), gate=gate)
        job.subscribe(watch)
        jobs.append(job)
    assert [j.status for j in jobs].count("waiting") >= 3  # at most two past the gate at once
    for j in jobs:
        assert j.wait(30).status == "success"
    assert gate.max_in_flight == 2 and gate.in_flight == 0
    assert entered == [f"p{i}" for i in range(5)]  # slots pass on in order of submission
    assert sorted(posted_prompts(server)) == [f"p{i}" for i in range(5)]


def test_stopping_a_gate_ends_the_waiting_jobs_and_sends_nothing_of_theirs(runtime):
    rt, server = runtime
    gate = Gate(1)
    jobs = [rt.submit(request(f"q{i}"), gate=gate) for i in range(4)]
    deadline = time.monotonic() + 10
    while jobs[0].task_id is None and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.stop("not submitted: the cell was interrupted")
    assert jobs[0].wait(30).status == "success"  # past the gate: it runs on
    for job in jobs[1:]:
        with pytest.raises(errors.NotSubmitted, match="interrupted"):
            job.wait(10)
        assert job.status == "stopped" and job.done and job.task_id is None
    assert posted_prompts(server) == ["q0"]
    with pytest.raises(errors.NotSubmitted):  # a stopped gate admits nobody new
        rt.submit(request("late"), gate=gate).wait(10)


def test_listeners_hear_the_end_before_a_waiting_cell_resumes(runtime):
    rt, _server = runtime
    heard = []
    job = rt.submit(request("order"), gate=Gate(1))
    done = threading.Event()
    job.subscribe(lambda j: heard.append(j.done) or (done.set() if j.done else None))
    job.wait(30)
    assert done.is_set() and heard[-1] is True


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "2"])
def test_a_gate_needs_a_whole_number_of_slots(limit):
    with pytest.raises(ValueError, match="whole number"):
        Gate(limit)


def test_a_refused_job_ends_at_once_with_its_error(runtime):
    rt, server = runtime
    job = rt.refused(request("never"), errors.RequestValidationError("bad"))
    assert job.done and job.status == "error"
    with pytest.raises(errors.RequestValidationError):
        job.wait(1)
    assert server.requests == []
