"""What the estimate before a batch costs in time: the catalogue's prices plus one journal
look-up per task (is it reused?), for batches of 12, 100 and 1000 priced requests, with an
empty journal and with one that already holds 1000 rows. Nothing is sent.
Prints figures; compare them within one run.

  .venv/bin/python bench/bench_estimate.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiapi_notebook import api  # noqa: E402
from hiapi_notebook.session import reset_session  # noqa: E402

MODEL = "gpt-image-2.5-flare/text-to-image"


def timed(session, requests) -> float:
    plan = [(r, 0) for r in requests]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        api.estimate(session, plan)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        session = reset_session()
        session.configure(base_url="http://127.0.0.1:9/v1", api_key="bench")  # never contacted
        journal = session.journal
        assert journal is not None
        for rows in (0, 1000):
            for n in range(rows):  # the second round: a journal of 1000 earlier submissions
                journal.claim(MODEL, {"prompt": f"old {n}"}, server=session.runtime.client.base_url)
            for size in (12, 100, 1000):
                requests = [api.build_request(MODEL, f"new {i}") for i in range(size)]
                seconds = timed(session, requests)
                print(
                    f"journal {rows:5d} rows · batch {size:5d}: {seconds * 1000:8.1f} ms "
                    f"({seconds / size * 1e6:6.1f} µs a task)"
                )


if __name__ == "__main__":
    main()
