"""How a gallery scales with its items: render time and HTML size per item, for
12, 48 and 96 finished images (thumbnails in the grid, full size from the local
copies beside the notebook, as in a notebook with its journal).
Prints figures; compare the per-item ratios within one run.

  .venv/bin/python bench/bench_gallery.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiapi_notebook.client import AsyncHiAPI  # noqa: E402
from hiapi_notebook.journal import open_journal  # noqa: E402
from hiapi_notebook.models import Request
from hiapi_notebook.recorder import JournalStore  # noqa: E402
from hiapi_notebook.runtime import Runtime  # noqa: E402
from hiapi_notebook.sandbox import SandboxServer  # noqa: E402
from hiapi_notebook.views import preview  # noqa: E402
from hiapi_notebook.views.gallery import Gallery  # noqa: E402


def main() -> None:
    with SandboxServer(port=0, speed=50, detail="fast") as srv, tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # the notebook's folder: local copies go beside it
        store = JournalStore(open_journal(Path(folder) / ".hiapi"), Path("hiapi-outputs"))
        client = AsyncHiAPI(api_key="bench", base_url=srv.url, poll_interval=0.05, request_budget=500)
        runtime = Runtime(client, store)
        jobs = [
            runtime.submit(Request("gpt-image-2/text-to-image", {"prompt": f"item {i}"})) for i in range(96)
        ]
        for job in jobs:
            job.wait()
        assert all(job.files[0].path for job in jobs), "local copies were not kept"
        full = sum(job.files[0].size or 0 for job in jobs) / len(jobs)
        print(f"96 sandbox images, {full / 1024:.0f} KiB each on average")
        print("  items   first render   re-render   HTML size   HTML per item (vs full image)")
        for count in (12, 48, 96):
            preview._CACHE.clear()
            view = Gallery(jobs[:count])
            t0 = time.perf_counter()
            html = view.render_html()
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            view.render_html()  # thumbnails cached: what a live update costs
            again = time.perf_counter() - t0
            per_item = len(html) / count
            print(
                f"  {count:5d}   {first * 1000:9.1f} ms   {again * 1000:6.1f} ms   "
                f"{len(html) / 2**20:6.2f} MiB   {per_item / 1024:6.1f} KiB ({per_item / full:.2f}x)"
            )
        os.chdir(Path(__file__).resolve().parents[1])


if __name__ == "__main__":
    main()
