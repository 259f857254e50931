"""What a video costs where files beside the notebook do not load (VS Code, Colab): the time
and the bytes of its embedded preview clip, for the sandbox's clips at each resolution (a clip
at most ``CLIP_BYTES`` is embedded as it is; a bigger one is re-encoded small, once, on the
thread that draws the result).

  .venv/bin/python bench/bench_clip.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiapi_notebook.models import Output  # noqa: E402
from hiapi_notebook.runtime import OutputFile  # noqa: E402
from hiapi_notebook.sandbox.media import draw  # noqa: E402
from hiapi_notebook.views import clip  # noqa: E402
from hiapi_notebook.views.shown import Shown  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for resolution, seconds in (("480p", 4), ("720p", 8), ("1080p", 8), ("1080p", 20)):
            files = draw("video", "seedance-2-0", {"prompt": "a lighthouse", "resolution": resolution,
                                                   "duration": seconds})  # fmt: skip
            path = Path(folder) / f"{resolution}-{seconds}.mp4"
            path.write_bytes(files["video"])
            file = OutputFile(0, Output(url="http://127.0.0.1/x.mp4", type="video"), path=path)
            start = time.perf_counter()
            uri = clip.preview_clip(Shown.of(file))
            took = time.perf_counter() - start
            kept = "none" if uri is None else f"{len(uri) * 3 / 4 / 2**20:.2f} MB embedded"
            size = path.stat().st_size / 2**20
            print(f"{resolution} {seconds:2d} s: original {size:5.1f} MB -> {kept} in {took:.2f} s")


if __name__ == "__main__":
    main()
