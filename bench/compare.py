"""HiAPI's own SDK against this project's notebook path, side by side, in one run.

  .venv/bin/python bench/compare.py [--sizes 1,50,1000] [--no-kernel] [--kernel-only]

Every client talks to its own sandbox process (the same seed, so the n-th task of
each run takes as long), with task durations of 18 s +-30% (``--jitter 0.3``):

- HiAPI's SDK (``hiapi``, sync, standard library) as its users write it: one
  ``HiAPI`` client, ``client.tasks.run(...)`` in a thread per task, polling every
  3 s (its default) and every 0.5 s.
- This project's notebook path with its journal on: ``hn.submit`` one at a time
  (after five earlier tasks of the model, for the one-task row) and
  ``hn.generate_many`` for the others, with its defaults: no ceiling, the key's
  rate learnt from the answers (``--budget-1000`` sets a ceiling for 1,000).
  With none, 1,000 tasks end together and the sandbox draws 1,000 full-size
  pictures at once: their latency is then the sandbox's drawing, not polling.

The limits (``--limits-only``, ``--no-limits``): 100 tasks of 9 s at a sandbox
with a real limit of 5 requests a second (``--rate-limit``), the SDK at 3 s and
0.5 s, this project learning it, and told ``request_budget=5``; then a second
process on the same journal, server and key (as a restarted kernel) sends 50
tasks, and the 429s among its first 50 requests are counted. 30 tasks with one
request in ten answered 429 at random against the same 30 with none; 24
``AsyncHiAPI().tasks.run`` at once against one alone.

Latency is from the moment the server finished a task (its exact time, from the
sandbox) to the moment the client had it: the SDK's ``run`` returned, or this
project's job ended (outputs downloaded). "polls" counts every GET on
``/v1/tasks`` (list and detail) over the tasks' own durations in minutes;
"req/s (max)" is the busiest five seconds of API requests at the server, per
second; client CPU is this process's, per task (the sandbox runs apart).

The kernel run starts a real kernel (jupyter_client), submits 1,000 tasks with
``generate_many(..., show=False, wait=False)`` and, while they run, times a
trivial cell against the same cell run idle, and samples the kernel's threads,
its connections to the sandbox and its memory. Figures, not pass/fail: the
machine is shared, so compare within one run.
"""

from __future__ import annotations

import argparse
import ast
import functools
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "gpt-image-2/text-to-image"
IMAGE_SECONDS = 6.0  # the sandbox's image at speed 1 (queued 1, handling 4, archiving 1)
SEED = 10
FAILURES: list[str] = []  # what went wrong for the SDK's threads, for the notes


# --- the sandbox, in a process of its own -------------------------------------------------------


def _serve(conn, speed: float, jitter: float, seed: int, nice: int, rate_limit, rate_429: float) -> None:
    from hiapi_notebook.sandbox import Faults, SandboxServer

    if nice:
        os.nice(nice)
    faults = Faults(seed=seed, rate_429=rate_429)
    server = SandboxServer(port=0, speed=speed, jitter=jitter, faults=faults, rate_limit=rate_limit).start()
    conn.send(server.url)
    while True:
        command = conn.recv()
        if command == "stop":
            server.stop()
            conn.send(None)
            return
        if command == "timeline":
            conn.send(server.timeline())
        elif command == "requests":
            conn.send((list(server.request_times), list(server.requests)))
        elif command == "limited":
            conn.send(list(server.limited))


class Sandbox:
    """A sandbox in a child process: its CPU is not the client's."""

    def __init__(
        self,
        duration: float,
        jitter: float,
        seed: int = SEED,
        nice: int = 0,
        rate_limit: float | None = None,
        rate_429: float = 0.0,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve,
            args=(child, IMAGE_SECONDS / duration, jitter, seed, nice, rate_limit, rate_429),
            daemon=True,
        )
        self.process.start()
        self.url = self._conn.recv()
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def ask(self, command: str):
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(10)


# --- one run's figures -------------------------------------------------------------------------


@dataclass
class Row:
    client: str
    tasks: int
    finished: int = 0
    median: float = float("nan")
    p95: float = float("nan")
    polls_per_task_minute: float = float("nan")
    peak_per_second: float = 0.0
    cpu_ms_per_task: float = float("nan")
    wall: float = 0.0
    note: str = ""
    answered_429: int = 0
    api_requests: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def lost(self) -> int:
        return self.tasks - self.finished


def figures(row: Row, sandbox: Sandbox, noticed: dict[str, float], cpu: float, wall: float) -> Row:
    """Latency and polls from the sandbox's own record of each task and request."""
    timeline = {task_id: (start, end) for task_id, start, end in sandbox.ask("timeline")}
    times, requests = sandbox.ask("requests")
    measured = [task_id for task_id in noticed if task_id in timeline]
    row.latencies = sorted(noticed[t] - timeline[t][1] for t in measured)
    row.finished = len(measured)
    if row.latencies:
        row.median = statistics.median(row.latencies)
        row.p95 = row.latencies[min(len(row.latencies) - 1, int(0.95 * len(row.latencies)))]
    polls = sum(1 for method, path in requests if method == "GET" and path.startswith("/v1/tasks"))
    minutes = sum(end - start for start, end in timeline.values()) / 60
    row.polls_per_task_minute = polls / minutes if minutes else float("nan")
    api = sorted(t for t, (_, path) in zip(times, requests) if path.startswith("/v1/"))
    row.api_requests = len(api)
    row.answered_429 = len(sandbox.ask("limited"))
    # Arrival times at a busy server bunch up a little: the busiest 5 s, per second.
    row.peak_per_second = max((_in_window(api, i, 5.0) for i in range(len(api))), default=0) / 5
    row.cpu_ms_per_task = cpu / max(1, row.tasks) * 1000
    row.wall = wall
    return row


def _in_window(times: list[float], start: int, width: float) -> int:
    end = start
    while end < len(times) and times[end] < times[start] + width:
        end += 1
    return end - start


# --- the clients -------------------------------------------------------------------------------


def sdk_run(url: str, prompts: list[str], poll_interval: float) -> dict[str, float]:
    """HiAPI's SDK as its users write it: one client, a thread per task."""
    from hiapi import HiAPI

    client = HiAPI(api_key=f"sdk-{uuid.uuid4().hex[:8]}", base_url=url, timeout=120, max_retries=2)
    noticed: dict[str, float] = {}

    def one(prompt: str) -> None:
        try:
            task = client.tasks.run(
                model=MODEL, input={"prompt": prompt}, poll_interval=poll_interval, timeout=900
            )
        except Exception as exc:  # a user's pool.map would raise; here it is counted (not done)
            FAILURES.append(f"{type(exc).__name__}: {exc}")
            return
        noticed[task.task_id] = time.time()

    with ThreadPoolExecutor(max_workers=max(1, len(prompts))) as pool:
        list(pool.map(one, prompts))
    return noticed


def notebook_session(url: str, home: Path, budget: float | None, key: str | None = None):
    """This project's session as a notebook has it, pointed at ``url`` (journal on); a
    key of its own unless told (what a key learnt stays with it and its server)."""
    from hiapi_notebook.session import get_session

    session = get_session()
    session.configure(
        base_url=url,
        api_key=key or f"notebook-{uuid.uuid4().hex[:8]}",
        request_budget=budget,
        home=str(home),
        outputs_dir=str(home / "out"),
    )
    return session


def ours_many(
    url: str, prompts: list[str], home: Path, budget: float | None, key: str | None = None
) -> dict[str, float]:
    import hiapi_notebook as hn

    notebook_session(url, home, budget, key)
    requests = [{"model": MODEL, "prompt": p} for p in prompts]
    generations = hn.generate_many(requests, concurrency=len(prompts), show=False)
    return {g.job.task_id: g.job.finished for g in generations if g.job.succeeded}


def ours_singles(
    url: str, prompts: list[str], home: Path, warm: list[str], warm_url: str
) -> dict[str, float]:
    """Five earlier tasks of the model (on a server of their own, so only the measured
    tasks count; the journal carries their durations over), then each prompt alone."""
    import hiapi_notebook as hn

    notebook_session(warm_url, home, None)
    hn.generate_many([{"model": MODEL, "prompt": p} for p in warm], concurrency=len(warm), show=False)
    notebook_session(url, home, None)
    noticed = {}
    for prompt in prompts:
        job = hn.submit(prompt, model=MODEL, show=False).job
        job.wait()
        noticed[job.task_id] = job.finished
    return noticed


def sdk_singles(url: str, prompts: list[str], poll_interval: float) -> dict[str, float]:
    noticed: dict[str, float] = {}
    for prompt in prompts:
        noticed.update(sdk_run(url, [prompt], poll_interval))
    return noticed


CLIENTS = (
    ("HiAPI SDK, 3 s polling", 3.0),
    ("HiAPI SDK, 0.5 s polling", 0.5),
    ("this project, notebook", None),
)


def compare(
    sizes: list[int], duration: float, jitter: float, singles: int, budget_1000: float | None
) -> list[Row]:
    rows: list[Row] = []
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        for size in sizes:
            if size == 1:
                rows += one_task_rows(duration, jitter, singles, home, tag)
                continue
            for name, interval in CLIENTS:
                sandbox = Sandbox(duration, jitter)
                prompts = [f"{tag} {size} {name} {i}" for i in range(size)]
                budget = None if size <= 50 else budget_1000
                cpu0, wall0 = time.process_time(), time.perf_counter()
                failed = len(FAILURES)
                if interval is not None:
                    noticed = sdk_run(sandbox.url, prompts, interval)
                else:
                    noticed = ours_many(sandbox.url, prompts, home, budget)
                note = "" if interval else ("learnt rate" if budget is None else f"request_budget={budget:g}")
                if len(FAILURES) > failed:
                    note += f"{len(FAILURES) - failed} failed: {FAILURES[-1][:60]}"
                row = Row(name, size, note=note)
                rows.append(
                    figures(row, sandbox, noticed, time.process_time() - cpu0, time.perf_counter() - wall0)
                )
                sandbox.stop()
                print_row(rows[-1])
    return rows


def one_task_rows(duration: float, jitter: float, singles: int, home: Path, tag: str) -> list[Row]:
    """The three clients side by side (each with its own sandbox): ``singles`` tasks
    one after another; this project first runs five earlier tasks of the model."""
    sandboxes = [Sandbox(duration, jitter) for _ in CLIENTS]
    warm_sandbox = Sandbox(duration, jitter, seed=SEED + 1)
    results: dict[str, dict[str, float]] = {}
    walls: dict[str, float] = {}

    def run(index: int) -> None:
        name, interval = CLIENTS[index]
        prompts = [f"{tag} single {index} {i}" for i in range(singles)]
        t0 = time.perf_counter()
        if interval is None:
            warm = [f"{tag} warm {i}" for i in range(5)]
            results[name] = ours_singles(sandboxes[index].url, prompts, home, warm, warm_sandbox.url)
        else:
            results[name] = sdk_singles(sandboxes[index].url, prompts, interval)
        walls[name] = time.perf_counter() - t0

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(CLIENTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = []
    for (name, interval), sandbox in zip(CLIENTS, sandboxes):
        row = Row(name, 1, note=f"{singles} in turn" + ("" if interval else ", after 5 earlier"))
        figures(row, sandbox, results[name], float("nan"), walls[name])
        rows.append(row)
        sandbox.stop()
        print_row(row)
    warm_sandbox.stop()
    return rows


# --- limits: a real one, random 429s, the async client, a second kernel -------------------------

LIMIT = 5.0  # requests a second per key at the limited sandbox
LIMIT_TASKS, LIMIT_SECONDS = 100, 9.0
NOISY_TASKS, RANDOM_429 = 30, 0.1
ASYNC_TASKS, ASYNC_SECONDS = 24, 4.5
FIRST = 50  # the second kernel's first requests, where its 429s are counted


@dataclass
class Limits:
    rows: list[tuple[str, Row]] = field(default_factory=list)  # (case, row)
    one_task: float = float("nan")  # seconds of one AsyncHiAPI().tasks.run alone
    many_tasks: float = float("nan")  # seconds of ASYNC_TASKS of them at once
    second_kernel_429: int = -1  # 429s among a second kernel's first FIRST requests
    fresh_key_429: int = -1  # the same, a key nothing was learnt of


def _measured(case: str, name: str, sandbox: Sandbox, run, tasks: int, note: str = "") -> Row:
    failed = len(FAILURES)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    noticed = run()
    row = Row(name, tasks, note=note)
    if len(FAILURES) > failed:
        row.note += f"{' ' if note else ''}first failure: {FAILURES[failed][:50]}"
    figures(row, sandbox, noticed, time.process_time() - cpu0, time.perf_counter() - wall0)
    print_limit_row(case, row)
    return row


def limits(home: Path, jitter: float, tag: str) -> Limits:
    got = Limits()
    case = f"limit {LIMIT:g}/s"
    prompts = [f"{tag} limited {i}" for i in range(LIMIT_TASKS)]
    for name, interval in CLIENTS[:2]:
        sandbox = Sandbox(LIMIT_SECONDS, jitter, rate_limit=LIMIT)
        row = _measured(
            case, name, sandbox, functools.partial(sdk_run, sandbox.url, prompts, interval), LIMIT_TASKS
        )
        got.rows.append((case, row))
        sandbox.stop()
    learning = Sandbox(LIMIT_SECONDS, jitter, rate_limit=LIMIT)
    key = f"notebook-{uuid.uuid4().hex[:8]}"
    ours = CLIENTS[2][0]
    row = _measured(
        case, ours, learning, lambda: ours_many(learning.url, prompts, home, None, key), LIMIT_TASKS, "learnt"
    )
    got.rows.append((case, row))
    told = Sandbox(LIMIT_SECONDS, jitter, rate_limit=LIMIT)
    row = _measured(
        case, ours, told, lambda: ours_many(told.url, prompts, home, LIMIT), LIMIT_TASKS, "request_budget=5"
    )
    got.rows.append((case, row))
    told.stop()
    got.second_kernel_429 = second_kernel(learning, home, key, f"{tag} second")
    got.fresh_key_429 = second_kernel(learning, home, f"fresh-{uuid.uuid4().hex[:8]}", f"{tag} fresh")
    learning.stop()

    prompts = [f"{tag} noisy {i}" for i in range(NOISY_TASKS)]
    for note, rate_429, client in (
        ("no faults", 0.0, "ours"),
        (f"{RANDOM_429:.0%} random 429s", RANDOM_429, "ours"),
        (f"{RANDOM_429:.0%} random 429s", RANDOM_429, "sdk"),
    ):
        sandbox = Sandbox(18.0, jitter, rate_429=rate_429)
        if client == "ours":
            row = _measured(
                "random 429s",
                ours,
                sandbox,
                functools.partial(ours_many, sandbox.url, prompts, home, None),
                NOISY_TASKS,
                note,
            )
        else:
            row = _measured(
                "random 429s",
                CLIENTS[0][0],
                sandbox,
                functools.partial(sdk_run, sandbox.url, prompts, 3.0),
                NOISY_TASKS,
                note,
            )
        got.rows.append(("random 429s", row))
        sandbox.stop()

    got.one_task, got.many_tasks = async_client(tag)
    print(
        f"async client: one tasks.run of ~{ASYNC_SECONDS:g} s took {got.one_task:.1f} s; "
        f"{ASYNC_TASKS} at once {got.many_tasks:.1f} s ({got.many_tasks / got.one_task:.2f}x)",
        flush=True,
    )
    print(
        f"a second kernel after the limited run: {got.second_kernel_429} answered 429 in its first {FIRST} "
        f"requests (a key nothing was learnt of, at once after: {got.fresh_key_429})",
        flush=True,
    )
    return got


def second_kernel(sandbox: Sandbox, home: Path, key: str, tag: str) -> int:
    """A new process (as a restarted kernel) on the same journal, server and key sends
    FIRST tasks at once: how many of its first FIRST requests were answered 429."""
    times, _ = sandbox.ask("requests")
    before = len(times)
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_kernel_again, args=(sandbox.url, str(home), key, tag), daemon=True)
    process.start()
    process.join(600)
    times, requests = sandbox.ask("requests")
    mine = sorted(t for t, (_, path) in zip(times[before:], requests[before:]) if path.startswith("/v1/"))
    if len(mine) < FIRST:
        return -1
    start, end = mine[0], mine[FIRST - 1]
    return sum(1 for t in sandbox.ask("limited") if start <= t <= end)


def _kernel_again(url: str, home: str, key: str, tag: str) -> None:
    import hiapi_notebook as hn

    os.environ["HIAPI_NOTEBOOK_DISPLAY"] = "text"
    notebook_session(url, Path(home), None, key)
    hn.generate_many(
        [{"model": MODEL, "prompt": f"{tag} {i}"} for i in range(FIRST)], concurrency=FIRST, show=False
    )


def async_client(tag: str) -> tuple[float, float]:
    """``AsyncHiAPI().tasks.run``: one alone, then ASYNC_TASKS at once (each with a new key)."""
    import asyncio

    from hiapi_notebook.client import AsyncHiAPI

    sandbox = Sandbox(ASYNC_SECONDS, 0.0)

    async def run(count: int) -> float:
        client = AsyncHiAPI(api_key=f"async-{uuid.uuid4().hex[:8]}", base_url=sandbox.url)
        t0 = time.perf_counter()
        await asyncio.gather(
            *(client.tasks.run(MODEL, {"prompt": f"{tag} async {count} {i}"}) for i in range(count))
        )
        took = time.perf_counter() - t0
        await client.aclose()
        return took

    one = asyncio.run(run(1))
    many = asyncio.run(run(ASYNC_TASKS))
    sandbox.stop()
    return one, many


def print_limit_row(case: str, row: Row) -> None:
    share = row.answered_429 / row.api_requests if row.api_requests else 0.0
    print(
        f"| {case:<14} | {row.client:<26} | {row.tasks:5d} | {row.lost:4d} | {row.wall:6.1f} s "
        f"| {row.median:6.2f} s | {row.polls_per_task_minute:7.1f} "
        f"| {row.answered_429:4d} of {row.api_requests:4d} ({share:4.1%}) | {row.note} |",
        flush=True,
    )


def print_limit_header() -> None:
    print(
        "| case           | client                     | tasks | lost | wall     | median   | polls/  "
        "| answered 429         | note |\n"
        "|                |                            |       |      |          | latency  | task-min"
        "|                      |      |\n"
        "|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )


# --- the kernel run ---------------------------------------------------------------------------


@dataclass
class KernelFigures:
    tasks: int
    finished: int = 0
    wall: float = 0.0
    threads_before: int = 0
    threads_peak: int = 0
    new_threads: list[str] = field(default_factory=list)
    connections_peak: int = 0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    cpu_ms_per_task: float = 0.0
    idle_ms: float = 0.0
    busy_ms: float = 0.0
    busy_p95_ms: float = 0.0
    idle_p95_ms: float = 0.0
    busy_share: float = 0.0  # the client's CPU time over the run's wall time


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def _threads(pid: int) -> dict[str, str]:
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[task.name] = (task / "comm").read_text().strip()
        except OSError:
            pass
    return found


def _rss_mb(pid: int) -> float:
    line = next(x for x in _proc(pid, "status").splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _cpu_seconds(pid: int, tid: int | str | None = None) -> float:
    """CPU time of a process, or of one of its threads."""
    stat = _proc(pid, "stat" if tid is None else f"task/{tid}/stat")
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_or_zero(pid: int, tid: str) -> float:
    try:
        return _cpu_seconds(pid, tid)
    except OSError:  # a thread that has ended: its time is lost (none of ours end)
        return 0.0


def _connections(pid: int, port: int) -> int:
    """Established TCP connections of ``pid`` to ``port`` on loopback."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("net/tcp", "net/tcp6"):
        for line in _proc(pid, table).splitlines()[1:]:
            parts = line.split()
            remote, state, inode = parts[2], parts[3], parts[9]
            if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
                count += 1
    return count


def _idle_round_trips(kc, count: int = 40) -> list[float]:
    found = []
    for _ in range(count):
        found.append(_round_trip(kc)[0])
        time.sleep(0.2)  # spaced as during the run
    return found


def _thread_names(kc) -> list[str]:
    """The kernel's Python threads by name (the OS knows them all as "python")."""
    code = "[t.name for t in __import__('threading').enumerate()]"
    _, reply = _round_trip(kc, "pass", {"names": code})
    return ast.literal_eval(reply["user_expressions"]["names"]["data"]["text/plain"])


def _round_trip(kc, code: str = "pass", expressions: dict | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    msg_id = kc.execute(code, silent=False, store_history=False, user_expressions=expressions or {})
    while True:
        reply = kc.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    elapsed = time.perf_counter() - t0
    while True:  # keep iopub from piling up
        try:
            kc.get_iopub_msg(timeout=0)
        except Exception:
            break
    return elapsed, reply["content"]


def kernel_run(
    tasks: int, duration: float, jitter: float, budget: float | None, package: Path
) -> KernelFigures:
    from jupyter_client.manager import start_new_kernel

    # A real server is elsewhere: here its work (drawing a thousand images) must not
    # stand in for the kernel's own load on a small machine, so it yields the CPU.
    sandbox = Sandbox(duration, jitter, nice=10)
    got = KernelFigures(tasks)
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "HIAPI_BASE_URL": sandbox.url,
            "HIAPI_API_KEY": "kernel",
            "HIAPI_HOME": str(Path(folder) / ".hiapi"),
            "HIAPI_REQUEST_BUDGET": "none" if budget is None else f"{budget:g}",
            "PYTHONPATH": str(package),
        }
        km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=folder)
        try:
            _, reply = _round_trip(kc, "import os, hiapi_notebook as hn", {"pid": "os.getpid()"})
            pid = int(reply["user_expressions"]["pid"]["data"]["text/plain"])
            for _ in range(5):
                _round_trip(kc)
            idle = _idle_round_trips(kc)
            before = _threads(pid)
            got.threads_before = len(before)
            names_before = _thread_names(kc)
            got.rss_before_mb = rss_peak = _rss_mb(pid)
            # The client's CPU: the cell that submits (on the kernel's main thread) and
            # every thread that appears after it; not the probes (the trivial cells).
            main0, wall0 = _cpu_seconds(pid, pid), time.perf_counter()
            _round_trip(
                kc,
                f"gens = hn.generate_many([{{'model': {MODEL!r}, 'prompt': f'kernel {{i}}'}} "
                f"for i in range({tasks})], concurrency={tasks}, show=False, wait=False)",
            )
            submit_cpu = _cpu_seconds(pid, pid) - main0
            new_tids: set[str] = set()
            busy: list[float] = []
            last_check = 0.0
            while True:
                busy.append(_round_trip(kc)[0])
                now = _threads(pid)
                new_tids.update(tid for tid in now if tid not in before)
                got.threads_peak = max(got.threads_peak, len(now))
                got.connections_peak = max(got.connections_peak, _connections(pid, sandbox.port))
                rss_peak = max(rss_peak, _rss_mb(pid))
                if time.perf_counter() - last_check > 2:
                    last_check = time.perf_counter()
                    _, reply = _round_trip(kc, "pass", {"done": "sum(g.job.done for g in gens)"})
                    done = int(reply["user_expressions"]["done"]["data"]["text/plain"])
                    if done >= tasks or time.perf_counter() - wall0 > 900:
                        break
                time.sleep(0.2)
            got.wall = time.perf_counter() - wall0
            threads_cpu = sum(_cpu_or_zero(pid, tid) for tid in new_tids)
            got.cpu_ms_per_task = (submit_cpu + threads_cpu) / tasks * 1000
            got.busy_share = threads_cpu / got.wall
            _, reply = _round_trip(kc, "pass", {"ok": "sum(g.job.succeeded for g in gens)"})
            got.finished = int(reply["user_expressions"]["ok"]["data"]["text/plain"])
            got.new_threads = sorted(set(_thread_names(kc)) - set(names_before))
            got.rss_peak_mb = rss_peak
            idle += _idle_round_trips(kc)  # before and after: the machine's load may have changed
            got.idle_ms, got.busy_ms = statistics.median(idle) * 1000, statistics.median(busy) * 1000
            got.idle_p95_ms = sorted(idle)[int(0.95 * len(idle))] * 1000
            got.busy_p95_ms = sorted(busy)[int(0.95 * len(busy))] * 1000
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            sandbox.stop()
    return got


# --- printing ---------------------------------------------------------------------------------


def print_row(row: Row) -> None:
    cpu = "" if row.cpu_ms_per_task != row.cpu_ms_per_task else f"{row.cpu_ms_per_task:6.1f} ms"
    print(
        f"| {row.client:<26} | {row.tasks:5d} | {row.finished:5d} | {row.median:6.2f} s | {row.p95:6.2f} s "
        f"| {row.polls_per_task_minute:7.1f} | {row.peak_per_second:5.1f} | {cpu:>9} | {row.wall:6.1f} s "
        f"| {row.note} |",
        flush=True,
    )


def print_header() -> None:
    print(
        "| client                     | tasks |  done | median   | p95      | polls/  | req/s | client    "
        "| wall     | note |\n"
        "|                            |       |       | latency  | latency  | task-min| (max) | CPU/task  "
        "|          |      |\n"
        "|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )


def print_kernel(k: KernelFigures) -> None:
    print(
        f"kernel, {k.tasks} tasks: {k.finished} finished in {k.wall:.0f} s; threads {k.threads_before} -> "
        f"{k.threads_peak} (new: {', '.join(k.new_threads) or 'none'}); connections to the sandbox at most "
        f"{k.connections_peak}; RSS {k.rss_before_mb:.0f} -> {k.rss_peak_mb:.0f} MB "
        f"(+{k.rss_peak_mb - k.rss_before_mb:.0f} MB); client CPU {k.cpu_ms_per_task:.1f} ms per task; "
        f"trivial cell {k.idle_ms:.1f} ms idle, {k.busy_ms:.1f} ms busy (median, "
        f"{k.busy_ms / k.idle_ms:.2f}x), p95 {k.idle_p95_ms:.1f} / {k.busy_p95_ms:.1f} ms "
        f"({k.busy_p95_ms / k.idle_p95_ms:.2f}x); the client's threads were busy "
        f"{k.busy_share:.0%} of the run",
        flush=True,
    )


def verdicts(
    rows: list[Row], kernel: KernelFigures | None, today_cpu_ms: float, limited: Limits | None = None
) -> None:
    def find(client: str, tasks: int) -> Row | None:
        return next((r for r in rows if r.client == client and r.tasks == tasks), None)

    def say(ok: bool, text: str) -> None:
        print(f"  [{'holds' if ok else 'MISSED'}] {text}", flush=True)

    ours = CLIENTS[2][0]
    print("targets:")
    if (r := find(ours, 50)) is not None:
        say(
            r.median <= 0.5 and r.polls_per_task_minute <= 8.5,
            f"50 tasks: median latency {r.median:.2f} s (<= 0.5) and {r.polls_per_task_minute:.1f} polls "
            "per task-minute (<= 8.5)",
        )
        if (sdk := find(CLIENTS[0][0], 50)) is not None:
            say(
                r.wall <= 1.1 * sdk.wall,
                f"50 tasks, no limit: wall {r.wall:.1f} s, {r.wall / sdk.wall:.2f}x the SDK's at 3 s "
                f"({sdk.wall:.1f} s; <= 1.1x)",
            )
    if limited is not None:
        limit_verdicts(limited, say)
    if (r := find(ours, 1)) is not None:
        say(
            r.median <= 0.75 and r.polls_per_task_minute <= 30,
            f"1 task after five earlier: median latency {r.median:.2f} s (<= 0.75) at "
            f"{r.polls_per_task_minute:.1f} polls per task-minute (<= 30)",
        )
    if kernel is not None:
        ours_threads = kernel.threads_peak - kernel.threads_before
        say(kernel.finished == kernel.tasks, f"kernel: {kernel.finished} of {kernel.tasks} finished")
        say(kernel.connections_peak <= 20, f"kernel: at most {kernel.connections_peak} connections (<= 20)")
        names = ", ".join(kernel.new_threads)
        say(ours_threads <= 2, f"kernel: {ours_threads} threads of ours (<= 2): {names}")
        ratio = kernel.busy_ms / kernel.idle_ms
        say(ratio <= 1.2, f"kernel: a trivial cell's round trip {ratio:.2f}x idle, median (<= 1.2)")
        extra = kernel.rss_peak_mb - kernel.rss_before_mb
        say(extra <= 150, f"kernel: {extra:.0f} MB extra RSS (<= 150)")
        say(
            kernel.cpu_ms_per_task <= today_cpu_ms / 2,
            f"kernel: client CPU {kernel.cpu_ms_per_task:.1f} ms per task (<= half of "
            f"{today_cpu_ms:g} ms, the per-task polling runtime's, --today-cpu-ms)",
        )


def limit_verdicts(got: Limits, say) -> None:
    def find(case: str, note: str) -> Row | None:
        return next(
            (r for c, r in got.rows if c == case and r.client == CLIENTS[2][0] and r.note == note), None
        )

    ratio = got.many_tasks / got.one_task
    say(ratio < 2, f"async client: {ASYNC_TASKS} tasks.run at once {ratio:.2f}x one task's time (< 2)")
    learnt, told = find(f"limit {LIMIT:g}/s", "learnt"), find(f"limit {LIMIT:g}/s", "request_budget=5")
    if learnt is not None and told is not None:
        share = learnt.answered_429 / max(1, learnt.api_requests)
        say(learnt.lost == 0, f"a real limit of {LIMIT:g}/s: {learnt.finished} of {learnt.tasks} finished")
        say(share <= 0.05, f"a real limit: {share:.1%} of requests answered 429 (<= 5%)")
        say(
            learnt.wall <= 1.2 * told.wall,
            f"a real limit: wall {learnt.wall:.1f} s, {learnt.wall / told.wall:.2f}x the run told "
            f"request_budget=5 ({told.wall:.1f} s; <= 1.2x)",
        )
    quiet, noisy = find("random 429s", "no faults"), find("random 429s", f"{RANDOM_429:.0%} random 429s")
    if quiet is not None and noisy is not None:
        say(
            noisy.wall <= 1.4 * quiet.wall and noisy.lost == 0,
            f"{RANDOM_429:.0%} random 429s: wall {noisy.wall:.1f} s, {noisy.wall / quiet.wall:.2f}x the "
            f"{quiet.wall:.1f} s with none (<= 1.4x); {noisy.lost} lost",
        )
    say(
        0 <= got.second_kernel_429 <= 2,
        f"a second kernel after a limited run: {got.second_kernel_429} answered 429 in its first {FIRST} "
        "requests (<= 2)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,50,1000", help="task counts (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=18.0, help="seconds a task takes (default 18)")
    parser.add_argument("--jitter", type=float, default=0.3, help="durations vary by +-this (default 0.3)")
    parser.add_argument("--singles", type=int, default=5, help="one-task runs in turn (default 5)")
    parser.add_argument(
        "--budget-1000",
        type=float,
        default=None,
        help="a request_budget ceiling for 1,000 tasks (default: none, the learnt rate)",
    )
    parser.add_argument("--kernel-tasks", type=int, default=1000)
    parser.add_argument("--no-kernel", action="store_true", help="skip the kernel run")
    parser.add_argument("--kernel-only", action="store_true", help="only the kernel run")
    parser.add_argument("--no-limits", action="store_true", help="skip the limits (real, random 429s)")
    parser.add_argument("--limits-only", action="store_true", help="only the limits and the async client")
    parser.add_argument("--today-cpu-ms", type=float, default=TODAY_CPU_MS)
    parser.add_argument(
        "--kernel-package",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="the folder whose hiapi_notebook the kernel imports (to measure another version)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HIAPI_NOTEBOOK_DISPLAY", "text")
    started = time.perf_counter()
    rows: list[Row] = []
    limited = None
    if not (args.kernel_only or args.no_limits):
        print(
            f"limits: {LIMIT_TASKS} tasks of {LIMIT_SECONDS:g} s at a real limit of {LIMIT:g} requests/s; "
            f"{NOISY_TASKS} of 18 s with {RANDOM_429:.0%} of requests answered 429 at random"
        )
        print_limit_header()
        with tempfile.TemporaryDirectory() as folder:
            limited = limits(Path(folder), args.jitter, uuid.uuid4().hex[:6])
    if not (args.kernel_only or args.limits_only):
        print(f"tasks of {args.duration:g} s +-{args.jitter:.0%}, model {MODEL}, each client its own sandbox")
        print_header()
        sizes = [int(n) for n in args.sizes.split(",") if n]
        rows = compare(sizes, args.duration, args.jitter, args.singles, args.budget_1000)
    kernel = None
    if not (args.no_kernel or args.limits_only):
        kernel = kernel_run(
            args.kernel_tasks, args.duration, args.jitter, args.budget_1000, args.kernel_package
        )
        print_kernel(kernel)
    verdicts(rows, kernel, args.today_cpu_ms, limited)
    print(f"bench/compare.py took {time.perf_counter() - started:.0f} s")


# Client CPU per task in the kernel run of the runtime before the poller (per-task
# polling, a worker thread per journal write), measured by this script's kernel run
# (--kernel-only) on that code on the same machine.
TODAY_CPU_MS = 26.4

if __name__ == "__main__":
    main()
