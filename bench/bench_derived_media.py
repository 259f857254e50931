"""How long the sandbox takes to draw outputs made from an input picture, at the sizes HiAPI
would return (image-to-image at 1K, 2K and 4K; image-to-video of 4 s at 480p, 720p and 1080p),
and what drawing a big clip's soft focus at half size saves (``SOFT_PIXELS``). Prints seconds
per output, the best of three runs; compare within one run (a busy machine shifts them all).

  .venv/bin/python bench/bench_derived_media.py
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from hiapi_notebook.sandbox import derive as derive_module  # noqa: E402
from hiapi_notebook.sandbox.inputs import Media  # noqa: E402


def picture(w: int, h: int) -> Media:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (40, 90, 160)).save(out, format="PNG")
    return Media(field="image_urls", mime="image/png", kind="image", data=out.getvalue(), label="input")


def best_of(runs: int, kind: str, model: str, input: dict, source: Media) -> tuple[float, tuple[int, int]]:
    times, size = [], (0, 0)
    field = "input_urls" if kind == "image" else "image_urls"
    for _ in range(runs):
        start = time.perf_counter()
        files = derive_module.derive(kind, model, input, {field: [source]})
        times.append(time.perf_counter() - start)
        first = files.get("image") or files["first_frame"]
        with Image.open(io.BytesIO(first)) as im:
            size = im.size
    return min(times), size


def main() -> None:
    source = picture(1024, 576)
    for resolution in ("1K", "2K", "4K"):
        input = {"prompt": "as a woodcut", "resolution": resolution}
        seconds, size = best_of(3, "image", "gpt-image-2/image-to-image", input, source)
        print(f"image-to-image {resolution:5} {size[0]}x{size[1]:<5} {seconds:6.2f} s")
    for resolution in ("480p", "720p", "1080p"):
        input = {"prompt": "it moves", "duration": 4, "resolution": resolution}
        model = "kling-3.0-omni/image-to-video"
        for label, limit in (("half-size blur", derive_module.SOFT_PIXELS), ("full-size blur", 10**12)):
            derive_module.SOFT_PIXELS = limit
            seconds, size = best_of(3, "video", model, input, source)
            print(f"image-to-video {resolution:5} {size[0]}x{size[1]:<5} {seconds:6.2f} s  ({label})")
        derive_module.SOFT_PIXELS = 500_000


if __name__ == "__main__":
    main()
