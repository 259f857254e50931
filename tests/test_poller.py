"""The one poller of a client, over real HTTP to the sandbox: list paging among
thousands of other tasks of the same key, the detail fallback, status jumps, the
request budget counted on the server's side, a 429 pausing everything, and the
runtime's threads and journal batches."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from hiapi_notebook import _loop
from hiapi_notebook.client import AsyncHiAPI
from hiapi_notebook.journal import open_journal
from hiapi_notebook.models import Request, TaskPage
from hiapi_notebook.poller import MAX_PAGES
from hiapi_notebook.recorder import JournalStore
from hiapi_notebook.runtime import Runtime

IMAGE = "gpt-image-2/text-to-image"
LIFECYCLE = ["queued", "handling", "archiving", "success"]


def other_program(server, key: str, count: int, prefix: str = "other") -> list[str]:
    """Tasks created by another program with the same key (its own connection)."""
    ids = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        for i in range(count):
            answer = c.post("/tasks", json={"model": IMAGE, "input": {"prompt": f"{prefix} {i}"}})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["data"]["taskId"])
    return ids


class Recorder:
    """Wraps a poller's fetches: which pages it read, and every status it was told per task."""

    def __init__(self, client: AsyncHiAPI) -> None:
        self.pages: list[int] = []
        self.on_page: list[set[str]] = []  # the task ids each list request reported
        self.details: list[str] = []
        self.told: dict[str, list[str]] = {}

        async def install():
            poller = client.poller
            fetch_page, fetch_task = poller.fetch_page, poller.fetch_task

            async def page(number, size):
                self.pages.append(number)
                got = await fetch_page(number, size)
                self.on_page.append({t.task_id for t in got.items})
                for task in got.items:
                    self.told.setdefault(task.task_id, []).append(task.status)
                return got

            async def one(task_id):
                self.details.append(task_id)
                task = await fetch_task(task_id)
                self.told.setdefault(task_id, []).append(task.status)
                return task

            poller.fetch_page, poller.fetch_task = page, one

        _loop.run_sync(install())


def changes(statuses: list[str]) -> list[str]:
    return [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]


def fresh_key() -> str:
    """A key of its own per test: budgets are per key and server, and ports come back."""
    return f"key-{uuid.uuid4().hex[:12]}"


def runtime_for(server, key: str | None = None, **kw) -> Runtime:
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("request_budget", 200)
    return Runtime(AsyncHiAPI(api_key=key or fresh_key(), base_url=server.url, **kw))


def submit(rt: Runtime, count: int, prefix="ours") -> list:
    return [rt.submit(Request(IMAGE, {"prompt": f"{prefix} {i}"}, timeout=60)) for i in range(count)]


def wait_for_ids(jobs, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(j.task_id for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(j.task_id for j in jobs)


def finished(jobs) -> None:
    for job in jobs:
        assert job.wait(60).status == "success", job.error
        assert job.files and job.files[0].data.startswith(b"\x89PNG")


def test_thousands_of_older_tasks_of_the_key_cost_one_page(sandbox_factory):
    server = sandbox_factory(speed=10)
    key = fresh_key()
    other_program(server, key, 2500)
    rt = runtime_for(server, key)
    seen = Recorder(rt.client)
    jobs = submit(rt, 30)
    finished(jobs)
    assert seen.pages and set(seen.pages) == {1}  # ours are the newest: page 1 shows them all
    assert seen.details == []
    polls = [r for r in server.requests if r[0] == "GET" and r[1].startswith("/v1/tasks")]
    assert len(polls) == len(seen.pages)  # nothing else was asked
    ours = {j.task_id for j in jobs}
    assert max(len(ids & ours) for ids in seen.on_page) == len(jobs)  # one request spoke for all


def test_more_tasks_in_flight_than_a_page_reads_the_pages_they_are_on(sandbox_factory):
    server = sandbox_factory(speed=1)  # an image takes about six seconds
    key = fresh_key()
    other_program(server, key, 300)
    rt = runtime_for(server, key)
    seen = Recorder(rt.client)
    first = submit(rt, 50, prefix="first")
    wait_for_ids(first)
    jobs = first + submit(rt, 100)  # the first fifty are on page 2 now, still running
    finished(jobs)
    assert set(seen.pages) == {1, 2} and seen.details == []
    assert Counter(seen.pages)[2] <= Counter(seen.pages)[1]  # page 2 only when someone there was due


def test_tasks_pushed_out_of_reach_by_another_program_are_asked_for_by_detail(sandbox_factory):
    server = sandbox_factory(speed=1)  # six seconds an image: time for the other program
    key = fresh_key()
    rt = runtime_for(server, key)
    seen = Recorder(rt.client)
    jobs = submit(rt, 10)
    wait_for_ids(jobs)
    ours = {j.task_id for j in jobs}
    # Meanwhile another program on the same key creates 1,500 tasks: ours sink to page 16.
    other = threading.Thread(target=other_program, args=(server, key, 1500))
    other.start()
    finished(jobs)
    other.join()
    created = {task_id: start for task_id, start, _ in server.timeline()}
    last_end = max(end for task_id, _, end in server.timeline() if task_id in ours)
    assert sum(1 for t, start in created.items() if t not in ours and start < last_end) > 200  # in time
    assert max(seen.pages) <= min(MAX_PAGES, 1 + 1)  # bounded: never paged after them
    assert ours <= set(seen.details)  # each pushed-out task was asked for by its own request
    assert len(server.timeline()) == 1510 and server.task_count == 1510


def test_detail_mode_never_reads_the_list(sandbox_factory):
    server = sandbox_factory(speed=10)
    rt = runtime_for(server, poll_mode="detail")
    seen = Recorder(rt.client)
    jobs = submit(rt, 12)
    finished(jobs)
    assert seen.pages == [] and set(seen.details) == {j.task_id for j in jobs}
    assert not [r for r in server.requests if r == ("GET", "/v1/tasks")]


def test_a_list_that_misbehaves_falls_back_to_detail(sandbox_factory):
    server = sandbox_factory(speed=10)
    rt = runtime_for(server)
    seen = Recorder(rt.client)

    async def broken(number, size):  # a list that answers with nobody in it
        seen.pages.append(number)
        return TaskPage(items=(), page=number, size=size, total=0)

    async def install():
        rt.client.poller.fetch_page = broken

    _loop.run_sync(install())
    jobs = submit(rt, 5)
    finished(jobs)
    assert seen.pages and {j.task_id for j in jobs} <= set(seen.details)


def test_a_task_that_jumps_to_its_end_between_asks_shows_its_end(sandbox_factory):
    server = sandbox_factory(speed=50)  # done in about 0.12 s, first asked after 1 s
    client = AsyncHiAPI(api_key=fresh_key(), base_url=server.url, poll_interval=1.0)
    heard = []
    task = _loop.run_sync(client.tasks.run(IMAGE, {"prompt": "quick"}, on_update=lambda t: heard.append(t)))
    assert [t.status for t in heard] == ["success"] and task.output[0].url


def test_waiters_hear_every_status_the_poller_saw_in_order(sandbox_factory):
    server = sandbox_factory(speed=3)  # two seconds an image: queued, handling, archiving, success
    rt = runtime_for(server)
    seen = Recorder(rt.client)
    heard: dict[int, list[str]] = {}
    jobs = submit(rt, 6)
    for job in jobs:
        heard[job.local_id] = []
        job.subscribe(lambda j: heard[j.local_id].append(j.status))
    finished(jobs)
    for job in jobs:
        told = changes(seen.told[job.task_id])
        assert changes([s for s in heard[job.local_id] if s in LIFECYCLE]) == told  # none lost or made up
        assert told == [s for s in LIFECYCLE if s in told] and told[-1] == "success"


def test_the_budget_holds_however_many_tasks_counted_by_the_server(sandbox_factory):
    server = sandbox_factory(speed=20)
    rate = 10
    rt = runtime_for(server, request_budget=rate)
    jobs = submit(rt, 60)  # all at once: left alone, they would ask 60 times at once
    finished(jobs)
    arrivals = zip(server.request_times, server.requests)
    times = sorted(t for t, (_, path) in arrivals if path.startswith("/v1/"))
    assert len(times) >= 60
    window = 3.0
    busiest = max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))
    # creates and polls together; 3 for requests that reach a busy server late, then together
    assert busiest <= rate * window + 3, busiest
    assert busiest >= rate * window * 0.6  # the budget was what held them back


def test_clients_of_one_key_share_one_budget(sandbox):
    async def budgets():
        a = AsyncHiAPI(api_key="k", base_url=sandbox.url, request_budget=3)
        b = AsyncHiAPI(api_key="k", base_url=sandbox.url, request_budget=3)
        c = AsyncHiAPI(api_key="other", base_url=sandbox.url, request_budget=3)
        return a.budget, b.budget, c.budget

    a, b, c = _loop.run_sync(budgets())
    assert a is b and a is not c


def test_a_429_while_requests_wait_pauses_every_request_and_lowers_the_rate(sandbox_factory):
    server = sandbox_factory(speed=5)
    rt = runtime_for(server, request_budget=20)
    heard = []
    rt.client.on_learn = heard.append  # what the budget would have the journal keep
    server.inject("429", method="POST", path="/v1/tasks", retry_after=1)
    jobs = submit(rt, 12)  # creates wait for turns: a 429 now is the key's limit
    finished(jobs)
    limited_at = server.request_times[server.requests.index(("POST", "/v1/tasks"))]
    during = [
        t for t, (_, p) in zip(server.request_times, server.requests) if limited_at < t < limited_at + 0.9
    ]
    assert len(during) <= 2, during  # nothing but what had its turn before the answer came
    assert heard and heard[0].rate == pytest.approx(0.7 * 20) and heard[0].w_max == 20  # lowered
    assert "a 429 at" in heard[0].source


def test_a_lone_429_with_nothing_waiting_is_random_its_request_alone_waits(sandbox_factory):
    server = sandbox_factory(speed=5)
    client = AsyncHiAPI(api_key=fresh_key(), base_url=server.url, poll_interval=0.05, request_budget=20)
    server.inject("429", method="GET", path="/v1/tasks", retry_after=1)
    task = _loop.run_sync(client.tasks.run(IMAGE, {"prompt": "limited"}))
    assert task.succeeded
    first_get = next(i for i, (m, _) in enumerate(server.requests) if m == "GET")
    assert server.request_times[first_get + 1] - server.request_times[first_get] >= 0.9  # its Retry-After
    assert _loop.run_sync(_rate(client)) == pytest.approx(20.0)  # random: nothing lowered


async def _rate(client):
    return client.budget.rate


def test_many_jobs_with_a_journal_use_one_writer_thread_and_batch_their_writes(sandbox_factory, tmp_path):
    server = sandbox_factory(speed=10)
    journal = open_journal(tmp_path / ".hiapi")
    store = JournalStore(journal, tmp_path / "outputs")
    client = AsyncHiAPI(api_key=fresh_key(), base_url=server.url, poll_interval=0.05, request_budget=200)
    rt = Runtime(client, store)
    before = {t.ident for t in threading.enumerate()}
    jobs = []
    for i in range(40):
        rec, _ = journal.claim(IMAGE, {"prompt": f"kept {i}"})
        jobs.append(rt.submit(Request(IMAGE, {"prompt": f"kept {i}"}, timeout=60), record_id=rec.id))
    for job in jobs:
        assert job.wait(60).status == "success"
    names = [t.name for t in threading.enumerate()]
    new = [t.name for t in threading.enumerate() if t.ident not in before]
    assert not [n for n in new if n.startswith("asyncio_")], new  # no worker thread per write
    ours = sorted(n for n in names if n.startswith("hiapi-notebook"))
    assert ours == ["hiapi-notebook-loop", "hiapi-notebook-worker_0"], names
    assert rt.writer.batches < rt.writer.calls / 2  # one transaction for many changes
    rows = journal.records()
    assert all(r.status == "success" and r.files and r.submitted_at for r in rows)
    assert [e[1] for e in rows[0].events][0] == "submitted"
    journal.close()
