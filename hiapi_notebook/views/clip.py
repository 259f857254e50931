"""Preview clips: a video that plays where files beside the notebook do not load.

VS Code draws outputs in a webview and Colab in an iframe, neither with a route to the
kernel's files: a ``<video src="hiapi-outputs/…">`` plays nothing there. So the clip goes
into the notebook itself: the original when it is small, else a small re-encode (480 px
on the long side, no sound, the first seconds) made with imageio-ffmpeg when it is
installed. Without either, the caller shows the poster instead.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from .shown import Shown, size_of

CLIP_BYTES = 4 * 2**20  # the most a clip embedded in the notebook may weigh
CLIP_PX = 480  # the long side of a re-encoded clip
CLIP_SECONDS = 12  # a re-encoded clip keeps this much of the original
ENCODE_TIMEOUT = 120
_CACHE: OrderedDict[tuple, str | None] = OrderedDict()
_CACHE_SIZE = 32
_lock = threading.Lock()


def preview_clip(s: Shown, limit: int | None = None) -> str | None:
    """A ``data:`` URI of ``s`` (a video) that weighs at most ``limit`` (``CLIP_BYTES``), or None."""
    limit = CLIP_BYTES if limit is None else limit
    size = size_of(s.file)
    if s.file.data is not None or (size is not None and size <= limit):
        data = s.file.read()
        if data is not None and len(data) <= limit:
            return _uri(data)
    path = s.file.path
    if path is None or not path.exists():
        return None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, limit)
    with _lock:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    small = _reencode(path)
    made = _uri(small) if small is not None and len(small) <= limit else None
    with _lock:
        _CACHE[key] = made
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return made


def _uri(data: bytes) -> str:
    return f"data:video/mp4;base64,{base64.b64encode(data).decode()}"


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:  # no binary for this platform, and no ffmpeg elsewhere
        return None


def _reencode(path: Path) -> bytes | None:
    """A small H.264 MP4 of ``path`` that browsers play (yuv420p, faststart), or None."""
    ffmpeg = _ffmpeg()
    if ffmpeg is None:
        return None
    scale = f"scale='if(gte(iw,ih),min({CLIP_PX},iw),-2)':'if(gte(iw,ih),-2,min({CLIP_PX},ih))'"
    with tempfile.TemporaryDirectory(prefix="hiapi-clip-") as folder:
        out = Path(folder) / "clip.mp4"
        command = [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
            "-t", str(CLIP_SECONDS), "-vf", scale, "-an", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", "30", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=ENCODE_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0 or not out.exists():
            return None
        return out.read_bytes()


__all__ = ["CLIP_BYTES", "preview_clip"]
