"""One output as the views draw it: its type, its local copy or URL, its bytes read only
as far as needed (a 4K original is decoded once, for its preview, and a video never read)."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import OutputFile
from .preview import Preview, preview

EMBED_LIMIT = 20 * 2**20
PREVIEW_READ_LIMIT = 256 * 2**20  # an original bigger than this is linked, never decoded
_SNIFF = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)


def sniff(data: bytes, declared: str | None) -> str:
    """The media type the bytes say they are, else the one declared."""
    for magic, mime in _SNIFF:
        if data.startswith(magic):
            if mime == "image/webp" and data[8:12] != b"WEBP":
                break  # RIFF is also WAV
            return mime
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return declared or "application/octet-stream"


def size_of(file: OutputFile) -> int | None:
    if file.data is not None:
        return len(file.data)
    if file.path is not None and file.path.exists():
        return file.path.stat().st_size
    return file.size


def read_within(file: OutputFile, limit: int) -> bytes | None:
    """The bytes of an output no bigger than ``limit``; a bigger one is not read at all
    (a video can be gigabytes), and is shown from its local copy or URL instead."""
    size = size_of(file)
    if size is not None and size > limit:
        return None
    return file.read()


def head(file: OutputFile) -> bytes:
    if file.data is not None:
        return file.data[:16]
    if file.path is not None and file.path.exists():
        with open(file.path, "rb") as f:
            return f.read(16)
    return b""


def kind_of(file: OutputFile, mime: str) -> str:
    """image, video or audio: what tag shows it."""
    if mime.startswith("video/") or file.type == "video":
        return "video"
    if mime.startswith("audio/") or file.type == "audio":
        return "audio"
    return "image"


def safe_href(url: str) -> str:
    """Server-sent URLs become links only when they are http(s) (never javascript:)."""
    return url if url.startswith(("http://", "https://")) else "#"


def local_path(file: OutputFile) -> str | None:
    """An output's local copy as a path relative to the notebook's folder (see ``local_path_of``)."""
    return local_path_of(file.path)


def local_path_of(path: Path | None) -> str | None:
    """A file as a path relative to the notebook's folder, which front ends resolve;
    None when there is none or it lies outside that folder."""
    if path is None or not path.exists():
        return None
    try:
        path.resolve().relative_to(os.getcwd())
    except ValueError:
        return None
    return os.path.relpath(path)


def file_size_text(size: int | None) -> str:
    if size is None:
        return ""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@dataclass(eq=False)
class Shown:
    """One output as it will be drawn: type and kind, read only as far as needed."""

    file: OutputFile
    mime: str
    kind: str
    limit: int = EMBED_LIMIT  # embed_limit: the most an original may weigh to be embedded
    _data: list[bytes | None] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, file: OutputFile, limit: int = EMBED_LIMIT) -> Shown:
        mime = sniff(head(file), file.content_type)
        return cls(file, mime, kind_of(file, mime), limit)

    @property
    def kept(self) -> bool:
        """Its bytes are here: a local copy, or in memory."""
        return self.file.data is not None or (self.file.path is not None and self.file.path.exists())

    def data(self) -> bytes | None:
        """The original's bytes when no bigger than the embed limit (read once)."""
        if not self._data:
            self._data.append(read_within(self.file, self.limit))
        return self._data[0]

    def embedded(self) -> str | None:
        data = self.data()
        return f"data:{self.mime};base64,{base64.b64encode(data).decode()}" if data is not None else None

    def link(self) -> str | None:
        """Where the original is: the local copy beside the notebook, else its URL."""
        href = local_path(self.file) or safe_href(self.file.url)
        return None if href == "#" else href

    def preview(self, px: int, fit: str = "contain") -> Preview | None:
        """The image scaled for ``px`` pixels as ``fit`` says (see ``preview.box``); None
        when it is not an image we can read."""
        if self.kind != "image" or not self.kept:
            return None
        f = self.file
        if f.sha256:
            key: tuple = ("sha256", f.sha256)
        elif f.data is not None:
            key = ("memory", hashlib.blake2b(f.data, digest_size=16).digest())
        else:
            assert f.path is not None
            stat = f.path.stat()
            key = ("path", str(f.path.resolve()), stat.st_mtime_ns, stat.st_size)
        return preview(key, lambda: read_within(f, PREVIEW_READ_LIMIT), px, fit)


__all__ = [
    "EMBED_LIMIT",
    "Shown",
    "file_size_text",
    "kind_of",
    "local_path",
    "local_path_of",
    "read_within",
    "safe_href",
    "size_of",
    "sniff",
]
