"""Benchmarks of the runtime, printed as figures (no pass/fail: machines are noisy,
so compare the ratios within one run).

  .venv/bin/python bench/bench_runtime.py [--tasks 100,400]

1. Many concurrent tasks on one client and one background loop: wall time,
   HTTP requests per task, threads used (must not grow with tasks), CPU time.
2. Adaptive polling against a fixed 1 s poll, for tasks of different lengths:
   requests per task.
3. Streaming a large output to disk: peak Python memory as a share of its size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiapi_notebook import _loop  # noqa: E402
from hiapi_notebook.client import AsyncHiAPI, poll_delay  # noqa: E402
from hiapi_notebook.models import Request
from hiapi_notebook.runtime import Runtime  # noqa: E402
from hiapi_notebook.timing import TimingModel  # noqa: E402

MODEL = "gpt-image-2/text-to-image"


class SandboxProcess:
    """The sandbox in its own process, so the CPU figures are the client's alone."""

    def __init__(self, speed: float) -> None:
        self.proc = subprocess.Popen(
            # small media: drawing 4K pictures ahead would take the CPU this bench measures
            [sys.executable, "-m", "hiapi_notebook.sandbox", "--port", "0", "--speed", str(speed)]
            + ["--fast-media"],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        self.url = re.search(r"http://\S+/v1", line).group(0)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def concurrent_tasks(count: int) -> None:
    with SandboxProcess(speed=4) as srv:  # an image takes about 1.5 s
        # A budget far above HiAPI's default of 2 a second: this measures the client's own costs.
        client = AsyncHiAPI(api_key="bench", base_url=srv.url, poll_interval=0.2, request_budget=500)
        runtime = Runtime(client)
        counted = _count_requests(client)
        threads_before = threading.active_count()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        jobs = [runtime.submit(Request(MODEL, {"prompt": f"bench {i}"})) for i in range(count)]
        peak_threads = threading.active_count()
        for job in jobs:
            job.wait()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        ok = sum(job.succeeded for job in jobs)
        print(
            f"  {count:5d} tasks: {ok} succeeded in {wall:6.2f} s wall, {cpu:5.2f} s client CPU "
            f"({cpu / count * 1000:.1f} ms per task); {counted[0] / count:.2f} API requests per "
            f"task; threads before/while running: {threads_before}/{peak_threads}"
        )


def _count_requests(client: AsyncHiAPI) -> list[int]:
    """Count API calls (creates and polls) by wrapping the client's one request loop."""
    counted = [0]
    inner = client._request

    async def counting(*args, **kwargs):
        counted[0] += 1
        return await inner(*args, **kwargs)

    client._request = counting
    return counted


def adaptive_polling() -> None:
    """Asks for one task: the schedule of a model never seen, the one learnt from five
    earlier tasks (+-30%), and a fixed 1 s poll."""
    print("  task length   never seen   learnt from 5   fixed 1 s   (asks; how late the end was heard)")
    rng = random.Random(5)
    for length in (10, 60, 300, 1200):
        learnt = TimingModel()
        for _ in range(5):
            learnt.learn(MODEL, None, length * rng.uniform(0.7, 1.3))
        plain = _asks(lambda t: poll_delay(t, 1.0, 10.0), length)
        smart = _asks(lambda t, m=learnt: m.delay(MODEL, None, t), length)
        print(
            f"  {length:8d} s   {plain[0]:4d} ({plain[1]:4.1f} s)   {smart[0]:4d} ({smart[1]:4.1f} s)"
            f"   {length:6d} (0.5 s)"
        )


def _asks(delay, length: float) -> tuple[int, float]:
    count, t = 0, 0.0
    while t < length:
        t += delay(t)
        count += 1
    return count, t - length


class _BigFile(BaseHTTPRequestHandler):
    size = 64 * 2**20

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        chunk = b"\0" * 2**16
        for _ in range(self.size // len(chunk)):
            self.wfile.write(chunk)

    def log_message(self, *args):
        pass


def streaming_download() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BigFile)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/big.mp4"
    client = AsyncHiAPI(api_key="bench", base_url="http://127.0.0.1:1")
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        t0 = time.perf_counter()
        got = _loop.run_sync(client.download(url, Path(folder) / "big.mp4"))
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    httpd.shutdown()
    print(
        f"  {got.bytes / 2**20:.0f} MiB streamed to disk in {elapsed:.2f} s; peak Python "
        f"memory {peak / 2**20:.2f} MiB = {peak / got.bytes:.3%} of the file"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="100,400", help="comma-separated task counts")
    counts = [int(n) for n in parser.parse_args().tasks.split(",")]
    print("1. concurrent tasks on one client (sandbox process at speed 4, polls from 0.2 s)")
    for count in counts:
        concurrent_tasks(count)
    print("2. when to ask about one task: requests per task, and how late its end was heard")
    adaptive_polling()
    print("3. streaming a large output to disk")
    streaming_download()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MiB; pid {os.getpid()}")
    asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
