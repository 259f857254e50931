"""The sandbox's list endpoint at any size, and its jitter: over real HTTP on loopback."""

import subprocess
import sys
from statistics import pstdev

import httpx
import pytest

from hiapi_notebook.sandbox import SandboxServer

IMAGE = "gpt-image-2/text-to-image"


def api(server, key):
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def create_many(server, key, count):
    with api(server, key) as client:
        bodies = [{"model": IMAGE, "input": {"prompt": f"{key} {i}"}} for i in range(count)]
        answers = [client.post("/tasks", json=body) for body in bodies]
    return [answer.json()["data"]["taskId"] for answer in answers]


def test_the_list_pages_thousands_of_tasks_newest_first_and_per_key(sandbox):
    mine = create_many(sandbox, "a", 2345)
    theirs = create_many(sandbox, "b", 7)
    with api(sandbox, "a") as client:
        pages = [client.get("/tasks", params={"page": n, "size": 100}).json()["data"] for n in range(1, 26)]
        beyond = client.get("/tasks", params={"page": 999, "size": 100}).json()["data"]
        odd = client.get("/tasks", params={"page": 3, "size": 7}).json()["data"]
    listed = [t["taskId"] for page in pages for t in page["tasks"]]
    assert listed == mine[::-1]  # every task once, newest first
    assert {p["total"] for p in pages} == {2345} and [len(p["tasks"]) for p in pages][-3:] == [100, 45, 0]
    assert all(p["page"] == n and p["size"] == 100 for n, p in enumerate(pages, 1))
    assert beyond["tasks"] == [] and beyond["total"] == 2345 and beyond["page"] == 999
    assert [t["taskId"] for t in odd["tasks"]] == mine[::-1][14:21]
    assert all({"status", "created", "completed", "model"} <= t.keys() for t in pages[0]["tasks"])
    with api(sandbox, "b") as client:
        only = client.get("/tasks", params={"size": 100}).json()["data"]
    assert [t["taskId"] for t in only["tasks"]] == theirs[::-1] and only["total"] == 7


@pytest.mark.parametrize(
    "query, page, size",
    [
        ({"page": 0, "size": 101}, 1, 10),  # out of range: the defaults, as HiAPI documents
        ({"page": -2, "size": 0}, 1, 10),
        ({"page": "x", "size": "y"}, 1, 10),
        ({"page": 2, "size": 100}, 2, 100),
        ({"size": 1}, 1, 1),
    ],
)
def test_out_of_range_page_and_size_fall_back_to_the_defaults(sandbox, query, page, size):
    create_many(sandbox, "k", 3)
    with api(sandbox, "k") as client:
        data = client.get("/tasks", params=query).json()["data"]
    assert (data["page"], data["size"], data["total"]) == (page, size, 3)


def _durations(server):
    return [end - start for _, start, end in server.timeline()]


def test_jitter_spreads_durations_within_its_bounds(sandbox_factory):
    steady = sandbox_factory(speed=0.5)  # an image: 12 s
    varied = sandbox_factory(speed=0.5, jitter=0.3)
    for server in (steady, varied):
        create_many(server, "k", 200)
    assert {round(d, 6) for d in _durations(steady)} == {12.0}
    spread = _durations(varied)
    assert 12 * 0.7 <= min(spread) and max(spread) <= 12 * 1.3
    assert min(spread) < 12 * 0.8 and max(spread) > 12 * 1.2 and pstdev(spread) > 1.5
    with api(varied, "k") as client:
        task = client.get("/tasks", params={"size": 1}).json()["data"]["tasks"][0]
    assert task["status"] == "queued" and task["completed"] == 0  # still the same lifecycle


def test_jitter_with_a_seed_repeats_itself():
    from hiapi_notebook.sandbox import Faults

    runs = []
    for _ in range(2):
        with SandboxServer(port=0, speed=0.5, jitter=0.3, faults=Faults(seed=4)) as server:
            create_many(server, "k", 5)
            runs.append([round(d, 6) for d in _durations(server)])
    assert runs[0] == runs[1] and len(set(runs[0])) == 5


@pytest.mark.parametrize("jitter", [-0.1, 1.0, float("nan")])
def test_a_jitter_outside_zero_to_one_is_refused(jitter):
    with pytest.raises(ValueError, match="jitter takes a fraction from 0 to below 1"):
        SandboxServer(port=0, jitter=jitter)


def test_the_command_line_refuses_a_bad_jitter_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "hiapi_notebook.sandbox", "--port", "0", "--jitter", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--jitter: takes a fraction from 0 to below 1, e.g. 0.3, not '1.5'" in done.stderr
