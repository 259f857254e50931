"""Small copies of images for galleries, grids and history rows, kept in a bounded
cache: a gallery re-rendered as its tasks finish must not shrink every image again."""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict

_CACHE: OrderedDict[tuple, str | None] = OrderedDict()
_CACHE_SIZE = 512
_lock = threading.Lock()


def thumbnail_uri(key: tuple, data: bytes, px: int) -> str | None:
    """A copy of an image at most ``px`` on its long side, as a data URI; None means
    "show the original" (already small, not an image, or no Pillow). ``key`` names the
    image (say a job and output index) so a repeat costs a dictionary lookup."""
    key = (*key, px, len(data))
    with _lock:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    uri = _make(data, px)
    with _lock:
        _CACHE[key] = uri
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return uri


def _make(data: bytes, px: int) -> str | None:
    try:
        from PIL import Image
    except ImportError:  # no Pillow: the browser scales the original (CSS size)
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) <= px:
                return None
            im.thumbnail((px, px))
            out = io.BytesIO()
            alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
            if alpha:
                im.save(out, format="PNG", optimize=True)
                mime = "image/png"
            else:
                im.convert("RGB").save(out, format="JPEG", quality=82)
                mime = "image/jpeg"
    except Exception:  # not an image Pillow can read: show the original
        return None
    return f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode()}"
