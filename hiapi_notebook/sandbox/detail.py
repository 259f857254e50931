"""Media at the sizes asked for: what the sandbox draws at full detail, the default.

Real results are big: a 4K PNG weighs 10-25 MB and a 1080p clip of 8 s several MB, and a
notebook, a journal or a download path that works on 640-pixel pictures can still fail on
those. So at full detail the sandbox draws each task at the pixel size its ``resolution``
and ``aspect_ratio`` (or ``size``) name, for the duration asked, with a fine grain that
keeps the files about as heavy as real ones (a flat gradient would compress to nothing).

``fast`` keeps the small stand-ins (640 px pictures, 320 px clips of at most 8 s) for test
suites that only need *a* picture: ``SandboxServer(detail="fast")``, ``--fast-media`` or
``HIAPI_SANDBOX_DETAIL=fast``.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

DETAILS = ("full", "fast")
DETAIL_ENV = "HIAPI_SANDBOX_DETAIL"
# The long side of an image at each resolution (HiAPI's fixed sizes: 2048x1152, 3840x2160).
IMAGE_LONG_SIDE = {"1k": 1024, "2k": 2048, "4k": 3840}
# The short side of a video at each resolution.
VIDEO_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "2k": 1440, "4k": 2160}
MAX_PIXELS = 40_000_000  # a bigger explicit ``size`` is drawn scaled down to this
FPS = 24
DEFAULT_SECONDS, MAX_SECONDS = 5, 60
BITS_PER_PIXEL = 0.1  # per frame: 1080p at 24 fps is 5 Mbit/s, as delivered clips are
GRAIN = 6  # +- levels of noise per channel: a 4K PNG weighs about 15 MB
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x*×]\s*(\d{2,5})\s*$")
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def detail_problem(detail: object) -> str | None:
    if detail in DETAILS:
        return None
    return f"detail must be one of {', '.join(DETAILS)}, not {detail!r}"[:200]


def default_detail() -> str:
    """``HIAPI_SANDBOX_DETAIL`` when set (``fast`` or ``full``), else full."""
    return (os.environ.get(DETAIL_ENV) or "full").strip().lower()


# -- sizes -----------------------------------------------------------------------------------


def _ratio(input: dict[str, Any], default: tuple[float, float]) -> tuple[float, float]:
    match = _RATIO.match(str(input.get("aspect_ratio") or ""))
    if match and float(match[1]) > 0 and float(match[2]) > 0:
        return float(match[1]), float(match[2])
    return default  # auto, adaptive, or none given


def _exact(input: dict[str, Any]) -> tuple[int, int] | None:
    """An explicit pixel size: ``size`` (1024x1024, 2048*2048) or such an ``aspect_ratio``."""
    for name in ("size", "aspect_ratio"):
        match = _SIZE.match(str(input.get(name) or ""))
        if match and int(match[1]) > 0 and int(match[2]) > 0:
            return int(match[1]), int(match[2])
    return None


def _fit(w: float, h: float, pixels: int = MAX_PIXELS) -> tuple[int, int]:
    scale = min(1.0, (pixels / (w * h)) ** 0.5)
    return _even(w * scale), _even(h * scale)


def _even(x: float) -> int:
    return max(16, round(x / 2) * 2)  # H.264 in yuv420p needs even sides


def image_size(input: dict[str, Any]) -> tuple[int, int]:
    """Pixels of an image: an explicit size, else the long side of ``resolution`` (1K by
    default) at ``aspect_ratio`` (square by default)."""
    exact = _exact(input)
    if exact:
        return _fit(*exact)
    long_side = IMAGE_LONG_SIDE.get(str(input.get("resolution") or "1K").lower(), 1024)
    w, h = _ratio(input, (1, 1))
    scale = long_side / max(w, h)
    return _fit(w * scale, h * scale)


def video_size(input: dict[str, Any]) -> tuple[int, int]:
    """Pixels of a video: the short side of ``resolution`` (720p by default) at
    ``aspect_ratio`` (16:9 by default)."""
    exact = _exact(input)
    if exact:
        return _fit(*exact)
    short_side = VIDEO_SHORT_SIDE.get(str(input.get("resolution") or "720p").lower(), 720)
    w, h = _ratio(input, (16, 9))
    scale = short_side / min(w, h)
    return _fit(w * scale, h * scale)


def made_from(input: dict[str, Any], shape: tuple[int, int], kind: str) -> tuple[int, int]:
    """Pixels of an output made from a picture of ``shape`` (image-to-image, image-to-video):
    what the request asks, an explicit size or an aspect ratio at its resolution, as for any
    task; with no ratio asked (none, ``auto``, ``adaptive``) the picture's own shape at the
    resolution's size, as HiAPI's routes do (the long side of an image, the short side of a
    video)."""
    if _exact(input) or _ratio(input, (0, 0)) != (0, 0):
        return image_size(input) if kind == "image" else video_size(input)
    w, h = max(1, shape[0]), max(1, shape[1])
    if kind == "image":
        side = IMAGE_LONG_SIDE.get(str(input.get("resolution") or "1K").lower(), 1024)
        scale = side / max(w, h)
    else:
        side = VIDEO_SHORT_SIDE.get(str(input.get("resolution") or "720p").lower(), 720)
        scale = side / min(w, h)
    return _fit(w * scale, h * scale)


def video_seconds(input: dict[str, Any]) -> int:
    """The duration asked for (5, "8", "8s"); the default where none (or -1, "auto") is."""
    asked = input.get("duration")
    if isinstance(asked, str):
        match = _SECONDS.match(asked)
        asked = float(match[1]) if match else None
    if isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked > 0:
        return max(1, min(MAX_SECONDS, round(asked)))
    return DEFAULT_SECONDS


# -- content ---------------------------------------------------------------------------------


def grain(seed: bytes, size: tuple[int, int], amplitude: int = GRAIN) -> Any:
    """Deterministic RGB noise around mid-grey (128 +- ``amplitude``), to add to a picture.

    A band of random rows is repeated down the picture: farther apart than deflate can see,
    so a PNG stays as heavy as a photograph's.
    """
    from PIL import Image

    w, h = size
    rows = min(h, 61)
    band = Image.frombytes("RGB", (w, rows), random.Random(seed).randbytes(w * rows * 3))
    band = band.point([128 + round((v - 127.5) * amplitude / 127.5) for v in range(256)] * 3)
    noise = Image.new("RGB", size)
    for y in range(0, h, rows):
        noise.paste(band, (0, y))
    return noise


def with_grain(picture: Any, seed: bytes) -> Any:
    """``picture`` (RGB or RGBA) with grain on its colours; transparency is kept."""
    from PIL import ImageChops

    alpha = picture.getchannel("A") if picture.mode == "RGBA" else None
    grainy = ImageChops.add(picture.convert("RGB"), grain(seed, picture.size), offset=-128)
    if alpha is not None:
        grainy.putalpha(alpha)
    return grainy


def encode_video(
    ffmpeg: str,
    layers: dict[str, Any],
    size: tuple[int, int],
    seconds: int,
    seed: bytes,
) -> tuple[bytes, bytes]:
    """(an H.264 MP4, its first frame as PNG) from still layers that ffmpeg moves.

    ``layers``: ``background`` (RGB, as big as the video), ``ball`` and ``bar`` (RGBA) and
    ``text`` (RGBA, as big as the video). The ball crosses the picture, the bar grows along
    the top, and the background carries grain that changes every frame, so the encoder
    spends the bit rate a real clip of this size gets.
    """
    w, h = size
    rate = int(w * h * FPS * BITS_PER_PIXEL)
    moves = (
        f"[0:v]noise=alls=10:allf=t+u:all_seed={int.from_bytes(seed[:3], 'big')}[bg];"
        f"[bg][1:v]overlay=x='(W-w)*t/{seconds}':y='(H-h)/2+sin(2*PI*t/{seconds})*H/4'[a];"
        f"[a][2:v]overlay=x='-w+w*t/{seconds}':y=0[b];"
        "[b][3:v]overlay=0:0,split[clip][still];[clip]format=yuv420p[out]"
    )
    with tempfile.TemporaryDirectory(prefix="hiapi-sandbox-") as tmp:
        folder = Path(tmp)
        inputs: list[str] = []
        for name in ("background", "ball", "bar", "text"):
            path = folder / f"{name}.png"
            layers[name].save(path, compress_level=1)
            inputs += ["-loop", "1", "-framerate", str(FPS), "-i", str(path)]
        clip, still = folder / "clip.mp4", folder / "first.png"
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *inputs, "-filter_complex", moves]
            + ["-map", "[out]", "-t", str(seconds), "-r", str(FPS), "-c:v", "libx264"]
            + ["-preset", "ultrafast", "-b:v", str(rate), "-maxrate", str(rate * 3 // 2)]
            + ["-bufsize", str(rate * 2), "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(clip)]
            + ["-map", "[still]", "-frames:v", "1", str(still)],
            capture_output=True,
            check=True,
            timeout=600,
        )
        return clip.read_bytes(), still.read_bytes()
