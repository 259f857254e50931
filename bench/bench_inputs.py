"""What a media input costs before anything is sent, and what the journal keeps of it:
build_request time for a file of 1, 5 and 19 MB (read, sniff, SHA-256, base64, a 64 px
thumbnail), the size of the create's JSON body, and the journal's growth per request.
Prints figures; nothing is asserted.

  .venv/bin/python bench/bench_inputs.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiapi_notebook import api  # noqa: E402
from hiapi_notebook.session import reset_session  # noqa: E402


def noisy_png(path: Path, megabytes: float) -> None:
    """A PNG of random pixels (it does not compress) of about ``megabytes``."""
    from PIL import Image

    side = int((megabytes * 2**20 / 3) ** 0.5)
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        session = reset_session()
        session.configure(base_url="http://127.0.0.1:9/v1", api_key="bench")
        journal = session.journal
        for mb in (1, 5, 19):
            path = Path(f"input-{mb}.png")
            noisy_png(path, mb)
            size = path.stat().st_size
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                request = api.build_request("gpt-image-2/image-to-image", "p", input_urls=[str(path)])
                runs.append(time.perf_counter() - start)
            body = len(json.dumps({"model": request.model, "input": dict(request.input)}))
            before = sum(p.stat().st_size for p in Path(".hiapi").glob("journal.sqlite3*"))
            journal.claim(request.model, request.recorded_input())
            after = sum(p.stat().st_size for p in Path(".hiapi").glob("journal.sqlite3*"))
            print(
                f"{size / 2**20:5.1f} MB file: build_request {runs[0] * 1000:4.0f} ms first (+thumbnail), "
                f"{min(runs[1:]) * 1000:4.0f} ms again, "
                f"create body {body / 2**20:5.1f} MB, journal +{max(0, after - before) / 1024:.1f} KB, "
                f"recorded input {len(json.dumps(request.recorded_input()))} bytes"
            )
        reset_session()


if __name__ == "__main__":
    main()
