"""Synthetic media: pictures of the prompt, short H.264 clips and tones, all deterministic.

The same model and input give the same picture (its colours and shapes come from a hash of the
request) and the prompt is written on it, so a demo shows which result belongs to which prompt.
Pillow (a base dependency) draws the pictures; imageio-ffmpeg (the ``sandbox`` extra) encodes the
videos. Both are imported only when a file is first drawn, so the API itself answers without them.

At full detail (the default) every file has the pixel size, duration and about the weight a real
one would (``detail.py``); ``detail="fast"`` draws small stand-ins for fast test suites.

Without imageio-ffmpeg every video task gets the sample clip shipped in ``sample/`` (a real H.264
MP4 and its first frame), and ``extra_note()`` says what the extra adds. Without Pillow, image
tasks are refused when created (``unavailable``): a task never succeeds with an output that
cannot be served.
"""

from __future__ import annotations

import array
import colorsys
import functools
import hashlib
import importlib
import importlib.resources
import io
import logging
import math
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import wave
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .detail import encode_video, image_size, video_size, with_grain
from .detail import video_seconds as seconds_asked
from .wire import canonical_json

OUTPUTS = {"image": ("image",), "video": ("video", "first_frame"), "audio": ("audio",)}
EXTENSIONS = {"image": "png", "first_frame": "png", "video": "mp4", "audio": "wav"}
CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "wav": "audio/wav"}
VIDEO_SECONDS, VIDEO_FPS = 2, 12  # without a duration input; with one, up to MAX_VIDEO_SECONDS
MAX_VIDEO_SECONDS = 8  # longer requests are cut short: the clip is only a stand-in
SAMPLE_SIZE, SAMPLE_SECONDS = (320, 180), 3
SAMPLE_TEXT = "Sample clip: pip install 'hiapi-notebook[sandbox]' to see a video of your prompt"
INSTALL_EXTRA = "pip install 'hiapi-notebook[sandbox]'"
AUDIO_SECONDS, AUDIO_RATE = 2, 22050
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:x*]\s*(\d+(?:\.\d+)?)\s*$")
log = logging.getLogger(__name__)


def prompt_text(input: dict) -> str:
    """The text a task is about: its prompt, or what a speech or song model reads."""
    for name in ("prompt", "text", "lyrics"):
        if isinstance(input.get(name), str):
            return input[name]
    return ""


def draw(kind: str, model: str, input: dict, *, detail: str = "full") -> dict[str, bytes]:
    """Every file of a task, by output type (see ``OUTPUTS``): at the size the input asks
    for (``detail="full"``), or small (``"fast"``)."""
    seed = hashlib.sha256(f"{model}\n{canonical_json(input)}".encode()).digest()
    text = prompt_text(input) or "(no prompt)"
    if kind == "video":
        if not can_draw_videos():
            return sample_clip()
        try:
            if detail == "full":
                return _full_video(seed, model, text, input)
            return _video(seed, model, text, _size(input, 320, 240, (16, 9)), _seconds(input))
        except (OSError, subprocess.SubprocessError) as exc:  # ffmpeg missing, killed or failing
            log.warning("hiapi sandbox: could not encode a video (%s); serving the sample clip", exc)
            return sample_clip()
    if kind == "audio":
        return {"audio": _tone(seed)}
    transparent = input.get("background") == "transparent"
    if detail == "full":
        picture = _picture(seed, model, text, image_size(input), transparent)
        return {"image": _png(with_grain(picture, seed), level=1)}
    return {"image": _png(_picture(seed, model, text, _size(input, 640, 512, (1, 1)), transparent))}


def _importable(*modules: str) -> bool:
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def can_draw_pictures() -> bool:
    return _importable("PIL.Image", "PIL.ImageDraw", "PIL.ImageFont", "PIL.ImageOps")


def can_draw_videos() -> bool:
    return can_draw_pictures() and _importable("imageio_ffmpeg")


def unavailable(kind: str) -> str | None:
    """Why this sandbox cannot make tasks of this kind (``image``, ``video``, ``audio``), or None.

    Videos and audio always can: the sample clip needs nothing, tones need only the standard library.
    """
    if kind == "image" and not can_draw_pictures():
        return "this sandbox draws images with Pillow, which cannot be imported here: pip install pillow"
    return None


def extra_note() -> str | None:
    """One line on what the ``sandbox`` extra adds here, or None when nothing is missing."""
    if can_draw_videos():
        return None
    return (
        "HiAPI sandbox: every video is the same sample clip; "
        f"{INSTALL_EXTRA} adds imageio-ffmpeg, which draws a video of each prompt."
    )


def sample_clip() -> dict[str, bytes]:
    """The shipped stand-in video and its first frame (made by ``make_sample_clip``)."""
    folder = importlib.resources.files(__package__).joinpath("sample")
    return {
        "video": folder.joinpath("clip.mp4").read_bytes(),
        "first_frame": folder.joinpath("first_frame.png").read_bytes(),
    }


def make_sample_clip(folder: Path) -> None:
    """Write ``sample/clip.mp4`` and ``sample/first_frame.png`` again (needs the ``sandbox`` extra)."""
    seed = hashlib.sha256(b"hiapi-notebook sample clip").digest()
    files = _video(seed, "sample clip", SAMPLE_TEXT, SAMPLE_SIZE, SAMPLE_SECONDS)
    (folder / "clip.mp4").write_bytes(files["video"])
    (folder / "first_frame.png").write_bytes(files["first_frame"])


class MediaCache:
    """Drawn files, least recently used out first once over ``max_bytes``.

    A file asked for twice at once is drawn once; different files are drawn side by side
    (at most ``drawers`` at a time), so a small picture never waits behind a 4K clip.
    Drawing may nest: drawing from a task's inputs may draw the earlier task they came from
    (a nested drawing takes no second drawer, so two of them cannot wait on each other).
    ``draw_ahead`` starts drawing a file before anyone asks for it: a big one is then
    ready when its task succeeds, and its first download does not wait for ffmpeg.
    """

    AHEAD_QUEUE = 32  # more waiting than this are drawn when asked for instead

    def __init__(self, max_bytes: int = 64 * 2**20, drawers: int = 2) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, dict[str, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._drawing: dict[str, threading.Event] = {}
        self._drawers = threading.Semaphore(drawers)
        self._ahead: queue.Queue[tuple[str, Callable[[], dict[str, bytes]]]] = queue.Queue(self.AHEAD_QUEUE)
        self._worker: threading.Thread | None = None
        self._nested = threading.local()  # how deep this thread is in drawing

    def get(self, key: str, make: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                pending = self._drawing.get(key)
                if pending is None:
                    pending = self._drawing[key] = threading.Event()
                    break
            pending.wait()  # another thread draws it: then look again
        try:
            depth = getattr(self._nested, "depth", 0)
            if depth == 0:
                self._drawers.acquire()
            self._nested.depth = depth + 1
            try:
                files = make()
            finally:
                self._nested.depth = depth
                if depth == 0:
                    self._drawers.release()
            with self._lock:
                self._items[key] = files
                self._size += sum(map(len, files.values()))
                while self._size > self.max_bytes and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._size -= sum(map(len, old.values()))
            return files
        finally:
            with self._lock:
                self._drawing.pop(key, None)
            pending.set()

    def draw_ahead(self, key: str, make: Callable[[], dict[str, bytes]]) -> None:
        """Draw in the background, one file at a time, in the order asked."""
        try:
            self._ahead.put_nowait((key, make))
        except queue.Full:
            return
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._draw_queued, name="hiapi-sandbox-draw", daemon=True
                )
                self._worker.start()

    def _draw_queued(self) -> None:
        while True:
            try:
                key, make = self._ahead.get(timeout=5)
            except queue.Empty:
                with self._lock:
                    if self._ahead.empty():
                        self._worker = None
                        return
                continue
            try:
                self.get(key, make)
            except Exception as exc:  # drawn again (and answered as an error) when asked for
                log.warning("hiapi sandbox: drawing ahead failed: %s", exc)


# -- pictures ------------------------------------------------------------------------------


def _size(input: dict, long_side: int, square_side: int, default: tuple[float, float]) -> tuple[int, int]:
    """Pixel size from ``aspect_ratio`` or ``size`` (16:9, 1024x1024, 2048*2048), kept small."""
    for name in ("aspect_ratio", "size"):
        match = _RATIO.match(str(input.get(name, "")))
        if match and float(match[1]) > 0 and float(match[2]) > 0:
            w, h = float(match[1]), float(match[2])
            break
    else:
        w, h = default
    if w == h:
        return square_side, square_side
    scale = long_side / max(w, h)
    return _even(w * scale), _even(h * scale)


def _even(x: float) -> int:
    return max(16, round(x / 2) * 2)  # H.264 in yuv420p needs even sides


def _canvas(seed: bytes, size: tuple[int, int], transparent: bool = False) -> Any:
    """A gradient and translucent shapes whose colours and places come from the seed
    (the shapes alone with ``transparent``)."""
    from PIL import Image, ImageDraw, ImageOps

    rng = random.Random(seed)
    hue = rng.random()
    gradient = Image.linear_gradient("L")
    if rng.random() < 0.5:
        gradient = gradient.transpose(Image.Transpose.ROTATE_90)
    canvas = ImageOps.colorize(
        gradient.resize(size), _colour(hue, 0.55, 0.95), _colour(hue + 0.35, 0.7, 0.45)
    ).convert("RGBA")
    shapes = Image.new("RGBA", size)
    pen = ImageDraw.Draw(shapes)
    w, h = size
    for _ in range(rng.randint(5, 8)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.08, 0.3) * min(w, h)
        fill = _colour(rng.random(), 0.6, 0.9) + (rng.randint(90, 160),)
        box = (x - r, y - r, x + r, y + r)
        (pen.ellipse if rng.random() < 0.6 else pen.rectangle)(box, fill=fill)
    if transparent:
        return shapes
    return Image.alpha_composite(canvas, shapes)


def _overlay(size: tuple[int, int], model: str, text: str) -> Any:
    """The prompt in a box in the middle and a "HiAPI sandbox" label at the bottom."""
    from PIL import Image, ImageDraw

    w, h = size
    layer = Image.new("RGBA", size)
    pen = ImageDraw.Draw(layer)
    font = _font(max(12, min(w, h) // 16))
    line_height = round(font.size * 1.25)
    lines = _wrap(text, font, w - w // 6, max_lines=max(1, int(h * 0.55) // line_height))
    block = len(lines) * line_height
    top = (h - block) // 2
    pad = font.size // 2
    widest = max(font.getlength(line) for line in lines)
    pen.rounded_rectangle(
        ((w - widest) / 2 - pad, top - pad, (w + widest) / 2 + pad, top + block + pad),
        radius=pad,
        fill=(0, 0, 0, 150),
    )
    for i, line in enumerate(lines):
        pen.text((w / 2, top + i * line_height), line, font=font, fill="white", anchor="ma")
    small = _font(max(10, font.size // 2))
    label = f"HiAPI sandbox - {model}"
    pen.rectangle((0, h - small.size - 6, small.getlength(label) + 10, h), fill=(0, 0, 0, 170))
    pen.text((5, h - 3), label, font=small, fill=(255, 255, 255, 230), anchor="ld")
    return layer


def _picture(seed: bytes, model: str, text: str, size: tuple[int, int], transparent: bool = False) -> Any:
    """The prompt over coloured shapes on a gradient; with ``transparent`` the gradient is left
    out and the picture keeps its alpha (``background: transparent``)."""
    from PIL import Image

    layer = _canvas(seed, size, transparent)
    picture = Image.alpha_composite(layer, _overlay(size, model, text))
    return picture if transparent else picture.convert("RGB")


def _wrap(text: str, font: Any, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap; a word wider than the line is cut, the last line ends in ... if cut."""
    lines: list[str] = []
    for word in text.split():
        while font.getlength(word) > width and len(word) > 1:
            cut = max(1, int(len(word) * width / font.getlength(word)))
            lines.append(word[:cut])
            word = word[cut:]
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(1, len(lines[-1]) - 3)] + "..."
    return lines or [""]


@functools.cache
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _png(picture: Any, level: int = 6) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=level)
    return out.getvalue()


# -- video ---------------------------------------------------------------------------------


def _seconds(input: dict) -> int:
    """The requested duration (a number of seconds), within what the sandbox draws."""
    asked = input.get("duration")
    if isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked > 0:
        return max(1, min(MAX_VIDEO_SECONDS, round(asked)))
    return VIDEO_SECONDS


def _video(
    seed: bytes, model: str, text: str, size: tuple[int, int], seconds: int = VIDEO_SECONDS
) -> dict[str, bytes]:
    """A ball crossing the picture behind the prompt, and a progress bar: visibly moving."""
    from PIL import Image, ImageDraw

    canvas, overlay = _canvas(seed, size), _overlay(size, model, text)
    w, h = size
    radius = min(w, h) // 8
    accent = _colour(seed[0] / 255 + 0.5, 0.8, 1.0)
    frames = []
    count = seconds * VIDEO_FPS
    for i in range(count):
        t = i / (count - 1)
        frame = canvas.copy()
        pen = ImageDraw.Draw(frame)
        x = radius + t * (w - 2 * radius)
        y = h / 2 + math.sin(2 * math.pi * t) * h / 4
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)
        pen.rectangle((0, 0, t * w, 3), fill=accent)
        frames.append(Image.alpha_composite(frame, overlay).convert("RGB"))
    return {"video": _h264(frames, size), "first_frame": _png(frames[0])}


def _full_video(seed: bytes, model: str, text: str, input: dict) -> dict[str, bytes]:
    """The same picture as ``_video``, at the asked size and duration: ffmpeg moves the layers."""
    from PIL import Image, ImageDraw

    size = video_size(input)
    w, h = size
    radius = min(w, h) // 8
    accent = _colour(seed[0] / 255 + 0.5, 0.8, 1.0)
    ball = Image.new("RGBA", (2 * radius, 2 * radius))
    ImageDraw.Draw(ball).ellipse((0, 0, 2 * radius - 1, 2 * radius - 1), fill=accent)
    layers = {
        "background": _canvas(seed, size).convert("RGB"),
        "ball": ball,
        "bar": Image.new("RGBA", (w, max(3, h // 240)), accent),
        "text": _overlay(size, model, text),
    }
    video, first = encode_video(_ffmpeg(), layers, size, seconds_asked(input), seed)
    return {"video": video, "first_frame": first}


def _ffmpeg() -> str:
    import imageio_ffmpeg

    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:  # its binary is missing for this platform, and no ffmpeg elsewhere
        raise FileNotFoundError(str(exc)) from exc


def _h264(frames: list, size: tuple[int, int]) -> bytes:
    """Pipe raw RGB frames to ffmpeg for an MP4 that browsers play (H.264, yuv420p, faststart)."""
    ffmpeg = _ffmpeg()
    w, h = size
    with tempfile.TemporaryDirectory(prefix="hiapi-sandbox-") as tmp:
        out = Path(tmp) / "clip.mp4"  # +faststart rewrites the file, so it cannot be a pipe
        subprocess.run(
            [
                ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{w}x{h}",
                "-r",
                str(VIDEO_FPS),
                "-i",
                "-",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-preset",
                "veryfast",
                "-movflags",
                "+faststart",
                "-y",
                str(out),
            ],
            input=b"".join(frame.tobytes() for frame in frames),
            capture_output=True,
            check=True,
            timeout=120,
        )
        return out.read_bytes()


# -- audio ---------------------------------------------------------------------------------


def _tone(seed: bytes) -> bytes:
    """A WAV arpeggio (root, third, fifth, octave) whose root comes from the seed."""
    root = 220 * 2 ** ((seed[0] % 24) / 12)
    notes = (root, root * 5 / 4, root * 3 / 2, root * 2)
    per_note = AUDIO_SECONDS * AUDIO_RATE // len(notes)
    samples = array.array("h")
    for freq in notes:
        for n in range(per_note):
            fade = min(1.0, n / 400, (per_note - n) / 400)  # no clicks between notes
            samples.append(int(12000 * fade * math.sin(2 * math.pi * freq * n / AUDIO_RATE)))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(AUDIO_RATE)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


# The parts derive.py draws with, for outputs made from a task's inputs.
canvas, overlay, png, h264, font = _canvas, _overlay, _png, _h264, _font
picture_size, video_seconds, colour = _size, _seconds, _colour
