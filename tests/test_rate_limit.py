"""A real rate limit over real HTTP: the sandbox's ``--rate-limit`` (a token bucket per
key, 429 with Retry-After), the adaptive budget finding it with few 429s, and the
learnt rate kept in the journal for the next kernel (by a digest, never the key)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import pytest

from hiapi_notebook import _loop
from hiapi_notebook.client import AsyncHiAPI
from hiapi_notebook.models import Request
from hiapi_notebook.runtime import Runtime
from hiapi_notebook.sandbox.limit import RateLimit

IMAGE = "gpt-image-2/text-to-image"


def fresh_key() -> str:
    return f"key-{uuid.uuid4().hex[:12]}"


def test_the_bucket_refills_at_its_rate_and_keeps_one_seconds_burst():
    now = [0.0]
    limit = RateLimit(4, clock=lambda: now[0])
    assert [limit.take("a") for _ in range(4)] == [None] * 4  # the burst
    assert limit.take("a") == 1  # empty: whole seconds until a token is back
    assert limit.take("b") is None  # another key has a bucket of its own
    now[0] += 0.25
    assert limit.take("a") is None and limit.take("a") == 1
    now[0] += 100
    assert [limit.take("a") for _ in range(5)] == [None] * 4 + [1]  # never more than the burst
    for bad in (0, -1, float("nan"), float("inf"), 1e9, True):
        with pytest.raises(ValueError, match="rate_limit takes"):
            RateLimit(bad)


def test_the_sandbox_answers_429_with_retry_after_per_key_creates_and_polls_together(sandbox_factory):
    server = sandbox_factory(rate_limit=3)
    answers = {}
    for key in ("one", "two"):
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
            got = [c.post("/tasks", json={"model": IMAGE, "input": {"prompt": "p"}}) for _ in range(2)]
            got += [c.get("/tasks") for _ in range(3)]
            answers[key] = got
    for key, got in answers.items():
        assert [a.status_code for a in got][:3] == [200, 200, 200]  # three a second, whatever kind
        refused = [a for a in got if a.status_code == 429]
        assert refused, key
        assert all(a.headers["Retry-After"] == "1" and "rate limit" in a.json()["message"] for a in refused)
    assert len(server.limited) == sum(a.status_code == 429 for got in answers.values() for a in got)


def test_the_cli_refuses_a_limit_that_is_not_a_rate():
    for value in ("nan", "-2", "0"):
        run = subprocess.run(
            [sys.executable, "-m", "hiapi_notebook.sandbox", "--port", "0", "--rate-limit", value],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2 and "rate_limit takes requests a second" in run.stderr
        assert "Traceback" not in run.stderr


def test_a_sweep_finds_a_real_limit_with_few_429s_and_all_tasks_finish(sandbox_factory):
    server = sandbox_factory(speed=20, rate_limit=8)
    client = AsyncHiAPI(api_key=fresh_key(), base_url=server.url, poll_interval=0.05)
    rt = Runtime(client)
    jobs = [rt.submit(Request(IMAGE, {"prompt": f"limited {i}"}, timeout=120)) for i in range(60)]
    for job in jobs:
        assert job.wait(120).status == "success", job.error
    api = sum(1 for _, path in server.requests if path.startswith("/v1/"))
    assert len(server.limited) <= max(3, 0.08 * api), (len(server.limited), api)
    learnt = _loop.run_sync(_learnt(client))
    assert learnt.w_max is not None and 4 <= learnt.w_max <= 12  # about the limit of 8
    assert "a 429 at" in learnt.source or learnt.source.startswith("answers without a 429 above")


async def _learnt(client):
    return client.budget.control.learnt()


def test_no_limit_lets_a_sweep_go_fast(sandbox_factory):
    server = sandbox_factory(speed=20)
    client = AsyncHiAPI(api_key=fresh_key(), base_url=server.url, poll_interval=0.05)
    rt = Runtime(client)
    jobs = [rt.submit(Request(IMAGE, {"prompt": f"free {i}"}, timeout=120)) for i in range(60)]
    for job in jobs:
        assert job.wait(120).status == "success", job.error
    creates = sorted(t for t, (m, _) in zip(server.request_times, server.requests) if m == "POST")
    # At the old fixed 2 a second, 60 creates took 30 s; slow start doubles from 2 a second.
    assert creates[-1] - creates[0] < 10, creates[-1] - creates[0]
    assert _loop.run_sync(_learnt(client)).rate > 10
    assert not server.limited


def test_random_429s_lower_nothing_for_long(sandbox_factory):
    from hiapi_notebook.sandbox import Faults

    server = sandbox_factory(speed=20, faults=Faults(rate_429=0.1, seed=3))
    client = AsyncHiAPI(api_key=fresh_key(), base_url=server.url, poll_interval=0.05)
    rt = Runtime(client)
    jobs = [rt.submit(Request(IMAGE, {"prompt": f"noisy {i}"}, timeout=120)) for i in range(40)]
    for job in jobs:
        assert job.wait(120).status == "success", job.error
    assert server.limited  # they came
    assert _loop.run_sync(_learnt(client)).rate >= 4  # and the rate grew through them anyway


def test_the_next_kernel_starts_at_the_learnt_rate_kept_by_a_digest(sandbox_factory, tmp_path, monkeypatch):
    """Two sessions in two processes on one journal: the second starts where the first
    left the key's rate; the journal holds no key."""
    server = sandbox_factory(speed=20, rate_limit=6)
    key = "secret-" + uuid.uuid4().hex
    script = (
        "import sys, hiapi_notebook as hn\n"
        "from hiapi_notebook.session import get_session\n"
        "n = int(sys.argv[1])\n"
        "print(get_session().learnt_rate())\n"
        f"hn.generate_many([{{'model': {IMAGE!r}, 'prompt': f'{{sys.argv[2]}} {{i}}'}} for i in range(n)], "
        "concurrency=n, show=False)\n"
        "print(get_session().learnt_rate())\n"
    )
    env = {
        "HIAPI_BASE_URL": server.url,
        "HIAPI_API_KEY": key,
        "HIAPI_HOME": str(tmp_path / ".hiapi"),
        "HIAPI_NOTEBOOK_DISPLAY": "text",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def kernel(count: int, tag: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", script, str(count), tag], capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip().splitlines()

    first = kernel(60, "first")
    assert first[0].endswith("from the start (nothing learnt yet for this server and key)")
    assert "requests a second, from a 429 at" in first[-1] or "from answers without a 429" in first[-1]
    time.sleep(0.5)  # the worker thread wrote it before the process ended; let the bucket refill
    before = len(server.requests)
    limited_before = len(server.limited)
    second = kernel(30, "second")
    assert "requests a second, from the journal (learnt " in second[0]
    first_50 = sorted(server.request_times[before:])[:50]
    refused = [t for t in server.limited[limited_before:] if t <= first_50[-1]]
    assert len(refused) <= 2, refused
    data = (tmp_path / ".hiapi" / "journal.sqlite3").read_bytes()
    wal = tmp_path / ".hiapi" / "journal.sqlite3-wal"
    data += wal.read_bytes() if wal.exists() else b""
    assert key.encode() not in data and key.split("-")[1].encode() not in data
