"""Outputs drawn from a task's media inputs, so a chain (picture → refined picture →
clip) shows on the sandbox the way it would on HiAPI:

- an image model given pictures restyles the first (posterised and tinted with colours
  from the request), writes the prompt on it and insets the others;
- a video model given a first frame starts the clip on exactly that picture (also the
  ``first_frame`` output) and animates it: a slow zoom, the prompt fading in, and a
  crossfade to the last frame when one is given;
- reference fields (``reference_*``) show their references in a strip on the frames: a
  picture, a video's first frame, an audio file's waveform.

Like ``media``, deterministic: the same request draws the same files. At full detail
(the default) an output has the size HiAPI's would (``detail.made_from``): the resolution
and aspect ratio asked, else the input picture's shape at the resolution's size; ``fast``
keeps small stand-ins (640 px pictures, 320 px clips). A task keeps its inputs as
``reduced`` makes them: what these drawings need, not the bytes sent.
"""

from __future__ import annotations

import hashlib
import io
import math
import subprocess
import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

from .detail import made_from, video_size
from .inputs import MAX_INPUT_PIXELS, Media, declared_size
from .media import (
    VIDEO_FPS,
    canvas,
    colour,
    font,
    h264,
    overlay,
    picture_size,
    png,
    prompt_text,
    video_seconds,
)
from .wire import canonical_json

IMAGE_LONG_SIDE, VIDEO_LONG_SIDE = 640, 320
SOFT_PIXELS = 500_000  # a clip bigger than this blurs its frames at half size
KEEP_BYTES = 2 * 2**20  # an input this small (and a picture this small in pixels) is kept as sent
REDUCED_SIDE = 1024  # a bigger picture is kept this size: room to crop it to another shape
WAVE_POINTS = 400  # the samples a waveform is drawn from
# ffmpeg hands over a first frame no bigger than a kept picture, whatever size a clip declares
_NO_BIGGER = (
    f"scale=w='min({REDUCED_SIDE},iw)':h='min({REDUCED_SIDE},ih)':force_original_aspect_ratio=decrease"
)
_reducing = threading.Semaphore(1)  # one big input decoded at a time, however many creates come


def reduced(media: dict[str, list[Media]]) -> dict[str, list[Media]]:
    """What drawing outputs needs of each input, and no more: a small one as sent; a big
    picture at ``REDUCED_SIDE`` pixels, a big clip as its first frame (both as JPEG unless
    see-through), a long sound as the samples of its waveform."""
    return {name: [_reduced(item) for item in items] for name, items in media.items()}


def _reduced(item: Media) -> Media:
    data = item.data
    if data is None or (len(data) <= KEEP_BYTES and not _big_picture(item)):
        return item
    if item.kind == "audio":
        return Media(item.field, item.kind, item.mime, _short_sound(data), item.label)
    with _reducing:
        picture = _bounded_picture(data) if item.kind == "image" else _first_frame(data)
        if picture is None:
            return Media(item.field, item.kind, None, None, item.label)
        picture.thumbnail((REDUCED_SIDE, REDUCED_SIDE))
        mime, data = _encoded(picture)
        return Media(item.field, item.kind, mime, data, item.label)


def _encoded(picture: Any) -> tuple[str, bytes]:
    """A reduced picture as JPEG (a fifth of a PNG's weight), or PNG where it is see-through."""
    if picture.getchannel("A").getextrema()[0] < 255:
        return "image/png", png(picture, level=1)
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="JPEG", quality=90)
    return "image/jpeg", out.getvalue()


def _big_picture(item: Media) -> bool:
    size = declared_size(item.data) if item.kind == "image" and item.data is not None else None
    return size is not None and max(size) > REDUCED_SIDE


def _bounded_picture(data: bytes) -> Any:
    """A picture decoded no bigger than needed: a JPEG at a fraction of its size (``draft``),
    anything declaring more than ``MAX_INPUT_PIXELS`` not at all (None)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_INPUT_PIXELS:
                return None
            im.draft("RGB", (REDUCED_SIDE, REDUCED_SIDE))
            im.thumbnail((REDUCED_SIDE, REDUCED_SIDE))
            return im.convert("RGBA")
    except Exception:  # unreadable: drawn as a stand-in, as before
        return None


def _short_sound(data: bytes) -> bytes:
    """A long sound as a WAV of the samples its waveform is drawn from (or, not a WAV,
    the bytes its waveform is drawn from)."""
    samples = _wave_samples(data)
    if samples is None:
        return data[: WAVE_POINTS * 64]
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(round(v * 32767).to_bytes(2, "little", signed=True) for v in samples))
    return out.getvalue()


def derive(
    kind: str, model: str, input: dict, media: dict[str, list[Media]], *, detail: str = "full"
) -> dict[str, bytes] | None:
    """Every file of the task by output type, or None when its inputs give nothing to draw from."""
    seed = hashlib.sha256(f"{model}\n{canonical_json(input)}".encode()).digest()
    text = prompt_text(input) or "(no prompt)"
    if kind == "image":
        pictures = [m for items in media.values() for m in items if m.kind == "image"]
        if not pictures:
            return None
        return {"image": png(_picture(seed, model, text, input, pictures, detail))}
    if kind == "video":
        first, last, references = _roles(media)
        if first is None and not references:
            return None
        return _video(seed, model, text, input, first, last, references, detail)
    return None


def _roles(media: dict[str, list[Media]]) -> tuple[Media | None, Media | None, list[Media]]:
    """(first frame, last frame, references) of a video task's inputs."""
    first = last = None
    references: list[Media] = []
    for name, items in media.items():
        if "reference" in name or any(m.kind != "image" for m in items):
            references.extend(items)
        elif name == "last_frame_url":
            last = items[0] if items else None
        elif items:  # first_frame_url, or an image-to-video model's image_urls: [first, last]
            first = first or items[0]
            if len(items) > 1 and name != "first_frame_url":
                last = last or items[1]
    return first, last, references


# --- pictures -----------------------------------------------------------------------------


def _picture(seed: bytes, model: str, text: str, input: dict, pictures: list[Media], detail: str) -> Any:
    from PIL import Image

    base = _image(pictures[0], (IMAGE_LONG_SIDE, IMAGE_LONG_SIDE))
    if detail == "fast":
        size = _output_size(input, base, IMAGE_LONG_SIDE, 512, (1, 1))
    else:
        size = made_from(input, base.size, "image")
    out = _restyle(base, seed, size).convert("RGBA")
    inset = max(32, min(size) // 5)
    for i, extra in enumerate(pictures[1:5]):
        tile = _tile(extra, (inset, inset), f"input {i + 2}")
        out.alpha_composite(tile, (size[0] - (inset + 8) * (i + 1), 8))
    return Image.alpha_composite(out, overlay(size, model, text)).convert("RGB")


def _restyle(image: Any, seed: bytes, size: tuple[int, int]) -> Any:
    """The input, recognisably, as a print: cropped to size, softened (so writing on it
    gives way to the new prompt's), posterised, tinted with the request's colours and
    outlined in dark lines."""
    from PIL import Image, ImageChops, ImageFilter, ImageOps

    fitted = ImageOps.fit(image.convert("RGB"), size)
    soft = fitted.filter(ImageFilter.GaussianBlur(max(1.0, min(size) / 160)))
    poster = ImageOps.posterize(soft, 3)
    hue = seed[1] / 255
    tint = ImageOps.colorize(
        ImageOps.grayscale(soft), colour(hue, 0.8, 0.25), colour(hue + 0.1, 0.35, 1.0)
    ).convert("RGB")
    printed = Image.blend(poster, tint, 0.3)
    lines = ImageOps.grayscale(poster).filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 24 else 0)
    return ImageChops.subtract(printed, Image.merge("RGB", (lines, lines, lines)).point(lambda v: v * 0.6))


def _output_size(
    input: dict, image: Any, long_side: int, square_side: int, default: tuple[float, float]
) -> tuple[int, int]:
    """The size asked for (aspect_ratio / size); else the input picture's own shape."""
    asked = any(str(input.get(name, "")).strip() not in ("", "auto") for name in ("aspect_ratio", "size"))
    if asked:
        return picture_size(input, long_side, square_side, default)
    w, h = image.size
    scale = long_side / max(w, h)
    return _even(w * scale), _even(h * scale)


def _even(x: float) -> int:
    return max(16, round(x / 2) * 2)


def _image(item: Media, size: tuple[int, int]) -> Any:
    """An input as a picture: itself, a video's first frame, a waveform, or a labelled stand-in."""
    from PIL import Image

    if item.data is not None and (item.kind == "image" or (item.mime or "").startswith("image/")):
        try:
            with Image.open(io.BytesIO(item.data)) as im:
                return im.convert("RGBA")
        except Exception:
            pass
    if item.data is not None and item.kind == "video":
        frame = _first_frame(item.data)
        if frame is not None:
            return frame
    if item.data is not None and item.kind == "audio":
        return _waveform(item.data, size)
    return _stand_in(item.label, size)


def _tile(item: Media, size: tuple[int, int], label: str) -> Any:
    from PIL import Image, ImageDraw, ImageOps

    tile = Image.new("RGBA", size, (255, 255, 255, 255))
    inner = ImageOps.fit(_image(item, size).convert("RGBA"), (size[0] - 4, size[1] - 4))
    tile.alpha_composite(inner, (2, 2))
    small = font(max(9, size[1] // 8))
    pen = ImageDraw.Draw(tile)
    pen.rectangle((2, size[1] - small.size - 6, small.getlength(label) + 8, size[1] - 2), fill=(0, 0, 0, 170))
    pen.text((5, size[1] - 4), label, font=small, fill="white", anchor="ld")
    return tile


def _stand_in(label: str, size: tuple[int, int]) -> Any:
    """An input the sandbox did not fetch (another host, an asset id): grey, with its name."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", size, (90, 90, 96, 255))
    pen = ImageDraw.Draw(image)
    pen.text((size[0] / 2, size[1] / 2), label[:40], font=font(max(10, min(size) // 12)), anchor="mm")
    return image


def _waveform(data: bytes, size: tuple[int, int]) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", size, (20, 30, 50, 255))
    pen = ImageDraw.Draw(image)
    samples = _wave_samples(data)
    if samples is None:  # not a WAV: draw its bytes
        samples = [(b - 128) / 128 for b in data[: WAVE_POINTS * 64 : 64]]
    w, h = size
    for x in range(w):
        value = abs(samples[x * len(samples) // w]) if samples else 0
        pen.line((x, h / 2 - value * h / 2.2, x, h / 2 + value * h / 2.2), fill=(120, 200, 255, 255))
    return image


def _wave_samples(data: bytes) -> list[float] | None:
    """About ``WAVE_POINTS`` samples of a WAV, from -1 to 1; None when it is not one."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            width = wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
    except Exception:
        return None
    step = max(width, len(frames) // WAVE_POINTS // width * width)
    return [
        int.from_bytes(frames[i : i + width], "little", signed=width > 1) / (2 ** (8 * width - 1))
        for i in range(0, len(frames) - width + 1, step)
    ]


def _first_frame(data: bytes) -> Any:
    """A video's first frame, through the ffmpeg that draws the sandbox's clips."""
    try:
        import imageio_ffmpeg
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="hiapi-sandbox-") as tmp:
            clip = Path(tmp) / "in.video"
            clip.write_bytes(data)
            done = subprocess.run(
                [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(clip)]
                + ["-frames:v", "1", "-vf", _NO_BIGGER, "-f", "image2pipe", "-vcodec", "png", "-"],
                capture_output=True,
                check=True,
                timeout=60,
            )
        with Image.open(io.BytesIO(done.stdout)) as im:
            return im.convert("RGBA")
    except Exception:
        return None


# --- video --------------------------------------------------------------------------------


def _video(
    seed: bytes,
    model: str,
    text: str,
    input: dict,
    first: Media | None,
    last: Media | None,
    references: list[Media],
    detail: str,
) -> dict[str, bytes]:
    from PIL import Image, ImageDraw, ImageFilter, ImageOps

    start_image = _image(first, (VIDEO_LONG_SIDE, VIDEO_LONG_SIDE)) if first is not None else None
    shape = start_image if start_image is not None else Image.new("RGB", (16, 9))
    if detail == "fast":
        size = _output_size(input, shape, VIDEO_LONG_SIDE, 240, (16, 9))
    else:
        size = made_from(input, shape.size, "video") if start_image is not None else video_size(input)
    w, h = size
    start = ImageOps.fit(start_image.convert("RGB"), size) if start_image is not None else None
    end = ImageOps.fit(_image(last, size).convert("RGB"), size) if last is not None else None
    background = canvas(seed, size) if start is None else None
    words = overlay(size, model, text)
    strip = _strip(references, size)
    accent = colour(seed[0] / 255 + 0.5, 0.8, 1.0)
    count = video_seconds(input) * VIDEO_FPS
    k = 0.5 if w * h > SOFT_PIXELS else 1.0
    soft = (max(2, round(w * k)), max(2, round(h * k)))
    frames = []
    for i in range(count):
        t = i / (count - 1)
        if start is not None and i == 0:
            frames.append(start.copy())  # exactly the picture given: the clip starts on it
            continue
        if start is not None:
            zoom = 1 + 0.3 * t
            cw, ch = w / zoom, h / zoom
            cx = w / 2 + math.sin(math.pi * t) * w * 0.04
            box = (cx - cw / 2, (h - ch) / 2, cx + cw / 2, (h + ch) / 2)
            # Soft focus as the prompt comes in: drawn at a quarter of the pixels for a big
            # clip (a 1080p blur per frame would cost seconds), then brought back to size.
            frame = start.resize(soft, box=box, reducing_gap=2.0).filter(
                ImageFilter.GaussianBlur(2.0 * t * k)
            )
            frame = frame if soft == size else frame.resize(size, Image.Resampling.BILINEAR)
            if end is not None:
                frame = Image.blend(frame, end, t)
            frame = frame.convert("RGBA")
            fade = min(1.0, t * 2)
        else:
            assert background is not None  # drawn above when no first frame was given
            frame = background.copy()
            radius = min(w, h) // 8
            x, y = radius + t * (w - 2 * radius), h / 2 + math.sin(2 * math.pi * t) * h / 4
            ImageDraw.Draw(frame).ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)
            fade = 1.0
        if strip is not None:
            frame.alpha_composite(strip, (6, 6))
        frame = Image.alpha_composite(frame, _faded(words, fade))
        ImageDraw.Draw(frame).rectangle((0, h - 3, t * w, h), fill=accent)
        frames.append(frame.convert("RGB"))
    return {"video": h264(frames, size), "first_frame": png(frames[0])}


def _strip(references: list[Media], size: tuple[int, int]) -> Any:
    """The references side by side, a quarter of the frame high."""
    from PIL import Image

    if not references:
        return None
    th = max(24, size[1] // 4)
    tw = th * 4 // 3
    shown = references[: max(1, (size[0] - 12) // (tw + 4))]
    strip = Image.new("RGBA", (len(shown) * (tw + 4), th))
    for i, item in enumerate(shown):
        strip.alpha_composite(_tile(item, (tw, th), f"ref {i + 1}"), (i * (tw + 4), 0))
    return strip


def _faded(layer: Any, amount: float) -> Any:
    if amount >= 1:
        return layer
    faded = layer.copy()
    faded.putalpha(layer.getchannel("A").point(lambda v: int(v * amount)))
    return faded


__all__ = ["derive", "reduced"]
