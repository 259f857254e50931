"""Previews: an image at the size it is shown, for the saved notebook to keep.

A 4K original weighs 10-25 MB; shown 512 px wide it needs 1024 px (a 2x screen), about
100 KB as JPEG. The notebook keeps that preview and the original stays beside it, one click
away. A preview is JPEG where the image has no transparency to keep and PNG (256 colours)
where it has; an image already that small and light is its own preview.

Previews are cached by file and size: a gallery re-rendered each time one of its tasks
finishes must not decode every original again.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ..media import TooManyPixels, open_bounded

log = logging.getLogger("hiapi_notebook")

OWN_PREVIEW_BYTES = 160 * 1024  # an image within the size asked for and this light is shown as it is
JPEG_QUALITY = 85
_CACHE: OrderedDict[tuple, Preview | None] = OrderedDict()
_CACHE_SIZE = 512
_lock = threading.Lock()


@dataclass(frozen=True)
class Preview:
    data: bytes
    mime: str
    width: int  # pixels of the preview
    height: int
    original: tuple[int, int]  # pixels of the image it shows

    @property
    def uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"

    def css_size(self, box: int) -> tuple[int, int]:
        """Its size in CSS pixels inside a ``box``-pixel square: sharp on a 2x screen, never
        wider than the original."""
        w, h = self.original
        scale = min(1.0, box / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))


FITS = ("contain", "width", "cover")
TALLEST = 4  # with fit="width", a preview is at most this many times as high as wide


def box(size: tuple[int, int], px: int, fit: str) -> tuple[int, int]:
    """The most pixels a preview of an image of ``size`` needs: shown within a ``px`` square
    (``contain``), ``px`` wide (``width``: a card's column), or filling a ``px`` square
    (``cover``: a cropped thumbnail, whose shorter side must be ``px``)."""
    w, h = size
    if fit == "width":
        return px, px * TALLEST
    if fit == "cover":
        scale = px / min(w, h)
        return max(px, round(w * scale)), max(px, round(h * scale))
    return px, px


def preview(key: Hashable, read: Callable[[], bytes | None], px: int, fit: str = "contain") -> Preview | None:
    """The image ``read()`` gives, scaled to what ``px`` and ``fit`` ask for (see ``box``);
    None when it is not an image Pillow can read (or there is no Pillow, or no bytes).
    ``key`` names the file (a repeat costs a dictionary lookup and ``read`` is not called)."""
    full_key = (key, px, fit)
    with _lock:
        if full_key in _CACHE:
            _CACHE.move_to_end(full_key)
            return _CACHE[full_key]
    data = read()
    made = _make(data, px, fit) if data else None
    with _lock:
        _CACHE[full_key] = made
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return made


def _make(data: bytes, px: int, fit: str) -> Preview | None:
    try:
        from PIL import Image, ImageOps
    except ImportError:  # no Pillow: callers show the original, or link to it
        return None
    try:
        probe, original = open_bounded(data, None)  # the header: size, mode, format (a bomb: no)
        with probe:
            fmt = (probe.format or "").upper()
            alpha = probe.mode in ("RGBA", "LA", "PA") or (probe.mode == "P" and "transparency" in probe.info)
            most = box(_oriented(original, probe), px, fit)
            fits = original[0] <= most[0] and original[1] <= most[1]
            if fits and len(data) <= OWN_PREVIEW_BYTES and fmt in ("PNG", "JPEG", "GIF", "WEBP"):
                if not probe.info.get("exif"):
                    return Preview(data, Image.MIME[fmt], *original, original)
        # A JPEG decodes at 1/2, 1/4 or 1/8 size (a 4K JPEG in a tenth the time); past the
        # pixel cap nothing is decoded at all.
        im, _stored = open_bounded(data, most)
        with im:
            shown = ImageOps.exif_transpose(im)
            original = _oriented(original, im)
            shown.thumbnail(most, Image.Resampling.LANCZOS, reducing_gap=3.0)
            out = io.BytesIO()
            if alpha:  # 256 colours with their transparency: a tenth of the bytes, the same look
                shown.convert("RGBA").quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG")
                mime = "image/png"
            else:
                shown.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
                mime = "image/jpeg"
            return Preview(out.getvalue(), mime, shown.width, shown.height, original)
    except TooManyPixels as exc:  # said once: previews are cached, refusals too
        log.warning("hiapi: no preview of an image of %s; its local copy is linked instead", exc)
        return None
    except Exception:  # not an image Pillow can read
        return None


def _oriented(size: tuple[int, int], im: object) -> tuple[int, int]:
    """The original's size as shown: an EXIF rotation by a quarter turn swaps its sides."""
    try:
        orientation = im.getexif().get(0x0112)  # type: ignore[attr-defined]
    except Exception:
        return size
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


__all__ = ["FITS", "Preview", "box", "preview"]
