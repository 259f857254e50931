"""Soak: hundreds of tasks through a misbehaving sandbox, a kill -9 halfway, and a re-run.

The sandbox answers 10% of API requests with 429, 5% with 503, 2% with 500, drops 2% of
connections, fails 5% of tasks and breaks 5% of output downloads (500, 503, dropped, cut
short). A child process submits every request with ``generate_many`` (journal on, local
copies kept) and is killed with SIGKILL once half the tasks exist on the server; the same
script is then run again to the end, and once more to show what a third run reuses.

It prints, from the server's and the journal's records (not from what the client says):
submissions (creates received), tasks on the server, duplicates (a request with more than
one task that did not fail), results with a verified local copy, successes without one,
lost results (a task the server finished that the journal does not hold with its copy),
hangs, and stray temporary files. Targets: duplicates 0, lost 0, hangs 0, every success
with its local copy. Timings are printed, never asserted.

    python bench/soak.py [--tasks 300] [--speed 20] [--concurrency 16] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hiapi_notebook.journal import open_journal
from hiapi_notebook.models import is_failure_status
from hiapi_notebook.sandbox import Faults, SandboxServer

MODEL = "gpt-image-2/text-to-image"

RUN = """
import json, sys, time
from hiapi_notebook.api import generate_many

model, count, concurrency, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
requests = [{"model": model, "prompt": f"soak request {n}"} for n in range(count)]
gens = generate_many(requests, concurrency=concurrency, show=False, wait=False)
for gen in gens:
    try:
        gen.wait(max(0.0, deadline - time.time()))
    except Exception:
        pass
print(json.dumps({
    "statuses": dict(__import__("collections").Counter(g.status for g in gens)),
    "cached": sum(1 for g in gens if g.cached),
    "hung": sum(1 for g in gens if not g.done),
    "errors": sorted({str(g.error) for g in gens if g.status == "error"})[:5],
}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--speed", type=float, default=20.0, help="sandbox speed-up (default: 20)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retry-after", type=float, default=0.5, help="seconds sent with 429 and 503")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds a run may take")
    args = parser.parse_args()

    faults = Faults(
        rate_429=0.10,
        rate_503=0.05,
        rate_500=0.02,
        rate_drop=0.02,
        rate_fail=0.05,
        rate_download=0.05,
        retry_after=args.retry_after,
        seed=args.seed,
    )
    with (
        tempfile.TemporaryDirectory(prefix="hiapi-soak-") as folder,
        SandboxServer(speed=args.speed, faults=faults, detail="fast") as server,
    ):
        work = Path(folder)
        script = work / "run.py"
        script.write_text(RUN, encoding="utf-8")
        env = {
            **os.environ,
            "HIAPI_BASE_URL": server.url,
            "HIAPI_API_KEY": "soak",
            "HIAPI_HOME": str(work / ".hiapi"),
            "HIAPI_POLL_INTERVAL": "0.05",
            "HIAPI_MAX_POLL_INTERVAL": "0.5",
            "HIAPI_NOTEBOOK_DISPLAY": "text",
        }

        def run(kill_at: int | None = None) -> tuple[dict | None, float, bool]:
            """One run of the script: its summary (None if killed), seconds, and whether it overran."""
            started = time.monotonic()
            deadline = time.time() + args.deadline
            child = subprocess.Popen(
                [sys.executable, str(script), MODEL, str(args.tasks), str(args.concurrency), str(deadline)],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            if kill_at is not None:
                while server.task_count < kill_at and child.poll() is None:
                    time.sleep(0.01)
                os.kill(child.pid, signal.SIGKILL)
                child.communicate()
                return None, time.monotonic() - started, False
            try:
                out, err = child.communicate(timeout=args.deadline + 60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                return None, time.monotonic() - started, True
            if child.returncode != 0:
                sys.stderr.write(err)
                raise SystemExit(f"the run failed with exit code {child.returncode}")
            return json.loads(out.strip().splitlines()[-1]), time.monotonic() - started, False

        _, first_s, _ = run(kill_at=args.tasks // 2)
        at_kill = server.task_count
        killed = _copies(work)
        second, second_s, overran = run()
        audit = _audit(server, work, args.tasks)
        third, third_s, _ = run()
        after_third = server.task_count

    posts = sum(1 for method, path in server.requests if method == "POST" and path == "/v1/tasks")
    downloads = sum(1 for _, path in server.requests if path.startswith("/files/"))
    print(f"soak: {args.tasks} requests, sandbox speed {args.speed:g}, concurrency {args.concurrency}")
    print("  faults: 10% 429, 5% 503, 2% 500, 2% dropped, 5% failed tasks, 5% broken downloads")
    print(f"  first run killed (SIGKILL) at {at_kill} tasks on the server, after {first_s:.1f} s")
    print(
        f"  the killed run's journal: {killed['successes']} successes, "
        f"{killed['successes'] - killed['with_copy']} of them without a local copy yet"
    )
    print(f"  re-run finished in {second_s:.1f} s: {second and second['statuses']}")
    for error in (second or {}).get("errors", []):
        print(f"    error: {error}")
    print(f"  submissions (creates received)   {audit['posts_after_rerun']}")
    print(f"  tasks on the server              {audit['tasks']}")
    print(f"  failed tasks (5% asked for)      {audit['failed_tasks']}")
    print(f"  duplicates                       {audit['duplicates']}")
    print(f"  results with a local copy        {audit['with_copy']} of {audit['successes']} successes")
    print(f"  successes without a local copy   {audit['without_copy']}")
    print(f"  lost results                     {audit['lost']}")
    print(f"  requests without an outcome      {audit['open_requests']}")
    print(f"  hangs                            {(second or {}).get('hung', 0) + int(overran)}")
    print(f"  stray temporary files            {audit['stray']}")
    print(
        f"  third run in {third_s:.1f} s: {third and third['cached']} reused from the journal, "
        f"{after_third - audit['tasks']} new tasks (failed requests are submitted again)"
    )
    print(f"  totals: {posts} creates and {downloads} downloads received over the three runs")
    ok = (
        audit["duplicates"] == 0
        and audit["lost"] == 0
        and audit["without_copy"] == 0
        and not overran
        and (second or {}).get("hung", 0) == 0
    )
    print("  targets met" if ok else "  TARGETS MISSED")
    return 0 if ok else 1


def _audit(server: SandboxServer, work: Path, count: int) -> dict:
    """What the server made against what the journal kept, after the re-run."""
    tasks = server.tasks()
    by_prompt: dict[str, list[dict]] = {}
    for task in tasks:
        by_prompt.setdefault(task["input"].get("prompt", ""), []).append(task)
    duplicates = sum(
        max(0, sum(1 for t in ts if not is_failure_status(t["status"])) - 1) for ts in by_prompt.values()
    )
    copies = _copies(work)
    records, kept = copies["records"], copies["kept"]
    successes, with_copy = copies["successes"], copies["with_copy"]
    finished = [t for t in tasks if t["status"] == "success"]
    lost = sum(
        1
        for prompt, ts in by_prompt.items()
        if any(t["status"] == "success" for t in ts)
        and not any(t["taskId"] in kept for t in ts if t["status"] == "success")
    )
    outcomes = Counter()
    for rec in records:
        outcomes[rec.input.get("prompt")] += rec.is_terminal
    stray = sum(1 for _ in work.rglob("*.part"))
    return {
        "posts_after_rerun": sum(1 for m, p in server.requests if m == "POST" and p == "/v1/tasks"),
        "tasks": len(tasks),
        "failed_tasks": sum(1 for t in tasks if is_failure_status(t["status"])),
        "duplicates": duplicates,
        "successes": successes,
        "with_copy": with_copy,
        "without_copy": successes - with_copy,
        "lost": lost + max(0, len(finished) - len({t["taskId"] for t in finished})),
        "open_requests": count - sum(1 for n in range(count) if outcomes[f"soak request {n}"]),
        "stray": stray,
    }


def _copies(work: Path) -> dict:
    """The journal's successes, and those whose every output has a verified local copy."""
    with open_journal(work / ".hiapi") as journal:
        records = journal.records()
    kept = {}
    for rec in records:
        verified = [_copy_verified(work, f) for f in rec.files]
        if rec.succeeded and rec.outputs and len(verified) == len(rec.outputs) and all(verified):
            kept[rec.task_id] = rec
    successes = sum(1 for rec in records if rec.succeeded)
    return {"records": records, "kept": kept, "successes": successes, "with_copy": len(kept)}


def _copy_verified(work: Path, entry: dict) -> bool:
    path = entry.get("path")
    if not path:
        return False
    file = Path(path) if Path(path).is_absolute() else work / path
    return file.is_file() and hashlib.sha256(file.read_bytes()).hexdigest() == entry.get("sha256")


if __name__ == "__main__":
    sys.exit(main())
