"""Media bytes as the package sends and records them: what they are (sniffed from the
bytes, never trusted from a name), ``data:`` URIs, and the references the journal
keeps in their place.

A media input sent inline travels as a base64 ``data:`` URI, which can be tens of
megabytes. The journal must key on the content and never hold those bytes, so a
request records each such input as a reference: a small dict whose ``$media`` key
is its content key (``sha256:<hex>``) beside where it came from, its name, size
and type. ``content_key`` reduces a recorded input to those keys for the request
hash; ``input_refs`` lists them for an export. Pure functions: no I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

REF = "$media"  # the key that marks a reference in a recorded input

TYPES = {
    "image": ("image/png", "image/jpeg", "image/webp", "image/gif"),
    "video": ("video/mp4", "video/webm", "video/quicktime"),
    "audio": ("audio/wav", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/flac", "audio/aac"),
}
NAMES = {  # how an error names each type
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "video/mp4": "MP4",
    "video/webm": "WebM",
    "video/quicktime": "MOV",
    "audio/wav": "WAV",
    "audio/mpeg": "MP3",
    "audio/mp4": "M4A",
    "audio/ogg": "OGG",
    "audio/flac": "FLAC",
    "audio/aac": "AAC",
}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
)
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*)(;base64)?,", re.ASCII)
SCHEMES = ("http://", "https://", "data:", "asset://")  # sent as written


def sniff(data: bytes) -> str | None:
    """The media type the bytes say they are, or None when they are none this package knows."""
    head = bytes(data[:16])
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF":
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # an ADTS header
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"  # an MPEG audio frame header
    return None


def kind_of(mime: str | None) -> str | None:
    """image, video or audio, for a media type this package sends."""
    for kind, types in TYPES.items():
        if mime in types:
            return kind
    return None


def type_names(kind: str | None) -> str:
    """ "PNG, JPEG, WebP or GIF images", for an error message."""
    kinds = [kind] if kind in TYPES else list(TYPES)
    parts = []
    for k in kinds:
        names = [NAMES[t] for t in TYPES[k]]
        parts.append(f"{', '.join(names[:-1])} or {names[-1]} {k}" + ("s" if k != "audio" else ""))
    return "; ".join(parts)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,…``: how HiAPI's own tools send a local file in a URL field."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def parse_data_uri(text: str) -> tuple[str | None, bytes]:
    """(declared type, bytes) of a ``data:`` URI; ``ValueError`` when it is not one."""
    match = _DATA_URI.match(text)
    if match is None:
        raise ValueError("not a data: URI (data:<type>;base64,<data>)")
    payload = text[match.end() :]
    if match.group(3):
        try:
            return match.group(1), base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("its base64 data is not valid") from None
    from urllib.parse import unquote_to_bytes

    return match.group(1), unquote_to_bytes(payload)


def is_ref(value: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping) and REF in value


def content_key(input: Mapping[str, Any]) -> dict[str, Any]:
    """``input`` with each reference reduced to its content key, so the request hash
    changes with the bytes and with nothing else (not the file's name or folder)."""

    def key(value: Any) -> Any:
        if is_ref(value):
            return value[REF]
        if isinstance(value, list):
            return [key(v) for v in value]
        return value

    return {name: key(value) for name, value in input.items()}


def input_refs(input: Mapping[str, Any], is_media: Callable[[str], bool]) -> list[dict[str, Any]]:
    """Each media input of a recorded input: field, content hash, source, name, size.
    A URL sent as written (in a field ``is_media`` names) is listed with the URL as
    its source and no hash: the server fetched it."""
    found: list[dict[str, Any]] = []
    for name, value in input.items():
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{name}[{index}]" if isinstance(value, list) else name
            if is_ref(item):
                digest = str(item[REF])
                found.append(
                    {
                        "field": where,
                        "sha256": digest.removeprefix("sha256:") if digest.startswith("sha256:") else None,
                        "source": item.get("source"),
                        "name": item.get("name"),
                        "bytes": item.get("bytes"),
                        "type": item.get("type"),
                        "sent": item.get("sent"),
                    }
                )
            elif isinstance(item, str) and item.startswith(("http://", "https://", "asset://")):
                if is_media(name):
                    found.append({"field": where, "sha256": None, "source": item, "sent": "url"})
    return found


def ref_label(value: Any) -> str:
    """A short name for a recorded media input (a reference's name, else the value)."""
    if is_ref(value):
        return str(value.get("name") or value.get("source") or value[REF])
    return str(value)


def png(pixels: bytes, width: int, height: int, channels: int) -> bytes:
    """A PNG of 8-bit RGB or RGBA rows, without Pillow (numpy arrays need none)."""
    colour = {3: 2, 4: 6}[channels]
    stride = width * channels
    raw = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def image_problem(data: bytes, mime: str | None) -> str | None:
    """Why an image's header cannot be what it says (a PNG cut short, a picture of no
    pixels), or None. Magic bytes alone pass a truncated file; its header and end do not."""
    if mime == "image/png":
        if len(data) < 33 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
            return "a damaged PNG (no header)"
        if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
            return "a damaged PNG (its header's checksum is wrong)"
        width, height = struct.unpack(">II", data[16:24])
        if not (0 < width < 2**31 and 0 < height < 2**31):
            return f"a damaged PNG ({width}×{height} pixels)"
        if not data.rstrip(b"\0").endswith(_PNG_END):
            return "a truncated PNG (it stops before its end)"
    elif mime == "image/jpeg":
        size = _jpeg_size(data)
        if size is None or 0 in size:
            return "a damaged JPEG (no frame header with its size)"
    return None


_PNG_END = b"IEND\xaeB`\x82"


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOF0-SOF15 but DHT, JPG, DAC), or None."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill bytes
            at += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers with no length
            at += 2
            continue
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


MAX_PIXELS = 50_000_000  # what a preview or a thumbnail decodes at most: about 200 MB as RGBA


class TooManyPixels(ValueError):
    """An image whose decoding would cost more memory than a preview is worth."""


def open_bounded(
    data: bytes, box: tuple[int, int] | None, max_pixels: int = MAX_PIXELS
) -> tuple[Any, tuple[int, int]]:
    """(a Pillow image of ``data``, its header read, no pixel decoded yet; its stored size).

    With a ``box``, a JPEG decodes straight at 1/2, 1/4 or 1/8 of its size toward it
    (``draft``). What would decode to more than ``max_pixels`` raises ``TooManyPixels``
    before a pixel is decoded: a 400 KB PNG can declare 12000×12000, 432 MB once decoded.
    Without a box (a look at the header, its EXIF) a JPEG may be up to 64 times that, what
    a draft at 1/8 brings back under the cap; anything else is held to the cap already (even
    reading a PNG's EXIF decodes it)."""
    import io
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in one line
        im = Image.open(io.BytesIO(data))
    original = im.size
    jpeg = im.format == "JPEG"
    if jpeg and box is not None:
        im.draft("RGB", box)
    width, height = im.size
    if width * height > max_pixels * (64 if jpeg and box is None else 1):
        im.close()
        raise TooManyPixels(
            f"{original[0]}×{original[1]} pixels, over the {max_pixels / 1e6:g}-megapixel limit of previews"
        )
    return im, original


def thumbnail(data: bytes, px: int = 64) -> bytes | None:
    """A small JPEG of an image, for the history; None without Pillow, for non-images, and
    for images past ``MAX_PIXELS`` (see ``open_bounded``)."""
    try:
        import io

        from PIL import Image  # noqa: F401 (no Pillow: no thumbnail)
    except ImportError:
        return None
    try:
        im, _original = open_bounded(data, (px, px))
        with im:
            im.thumbnail((px, px))
            out = io.BytesIO()
            im.convert("RGB").save(out, format="JPEG", quality=75)
            return out.getvalue()
    except Exception:
        return None


__all__ = [
    "REF",
    "SCHEMES",
    "TYPES",
    "content_key",
    "data_uri",
    "image_problem",
    "input_refs",
    "is_ref",
    "kind_of",
    "open_bounded",
    "parse_data_uri",
    "png",
    "ref_label",
    "sha256",
    "sniff",
    "thumbnail",
    "type_names",
]
