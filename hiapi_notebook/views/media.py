"""Static mime bundles: what stays in a saved notebook with no kernel and no
widget state (GitHub, nbviewer, a reopened notebook).

One image becomes plain ``image/png``/``image/jpeg`` (every renderer shows it);
video, audio or several outputs become one ``text/html`` row with the media
embedded as data URIs up to ``embed_limit``, beyond which they link to the
local copy or the URL.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from ..runtime import Job, OutputFile
from .text import COLOURS, esc, headline, state_text, style_of

DISPLAY_WIDTH = 512
EMBED_LIMIT = 20 * 2**20
embed_limit = EMBED_LIMIT  # the session's setting; views never reach up to read it
_SNIFF = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)


def sniff(data: bytes, declared: str | None) -> str:
    for magic, mime in _SNIFF:
        if data.startswith(magic):
            if mime == "image/webp" and data[8:12] != b"WEBP":
                break  # RIFF is also WAV
            return mime
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return declared or "application/octet-stream"


def read_within(file: OutputFile, limit: int) -> bytes | None:
    """The bytes of an output small enough to embed; a bigger one is not read at all
    (a video can be gigabytes), and is shown from its local copy or URL instead."""
    size = file.size
    if size is None and file.path is not None and file.path.exists():
        size = file.path.stat().st_size
    if size is not None and size > limit:
        return None
    return file.read()


def safe_href(url: str) -> str:
    """Server-sent URLs become links only when they are http(s) (never javascript:)."""
    return url if url.startswith(("http://", "https://")) else "#"


def _kind(file: OutputFile, mime: str) -> str:
    if mime.startswith("video/") or file.type == "video":
        return "video"
    if mime.startswith("audio/") or file.type == "audio":
        return "audio"
    return "image"


def _src(file: OutputFile, data: bytes | None, mime: str, embed_limit: int) -> str:
    if data is not None and len(data) <= embed_limit:
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"
    if file.path is not None and _under_cwd(file.path):
        return os.path.relpath(file.path)  # notebook front ends resolve it beside the notebook
    return safe_href(file.url)


def _under_cwd(path) -> bool:
    try:
        path.resolve().relative_to(os.getcwd())
        return True
    except ValueError:
        return False


def media_bundle(
    job: Job, *, embed_limit: int = EMBED_LIMIT, width: int = DISPLAY_WIDTH
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(data, metadata) for the job's outputs, or None when there is nothing to show."""
    files = [(f, read_within(f, embed_limit)) for f in job.files]
    if not files:
        return None
    typed = [(f, d, sniff(d, f.content_type) if d else (f.content_type or "")) for f, d in files]
    text = "\n".join(f"{f.type}: {f.path or f.url}" for f, _, _ in typed)
    images = [t for t in typed if _kind(t[0], t[2]) == "image"]
    if (
        len(typed) == 1
        and images
        and images[0][1] is not None
        and images[0][2] in ("image/png", "image/jpeg")
    ):
        f, data, mime = images[0]
        return ({mime: base64.b64encode(data).decode(), "text/plain": text}, {mime: {"width": width}})
    poster = next((t for t in typed if t[0].type == "first_frame"), None)
    has_video = any(_kind(f, m) == "video" for f, _, m in typed)
    items = []
    for f, data, mime in typed:
        if has_video and poster is not None and f is poster[0]:
            continue  # shown as the video's poster
        src = esc(_src(f, data, mime, embed_limit))
        kind = _kind(f, mime)
        if kind == "video":
            poster_attr = ""
            if poster is not None and poster[1] is not None:
                poster_attr = f' poster="{esc(_src(poster[0], poster[1], poster[2], embed_limit))}"'
            items.append(
                f'<video controls muted loop playsinline preload="metadata" '
                f'style="max-width:{width}px;width:100%"{poster_attr} src="{src}"></video>'
            )
        elif kind == "audio":
            items.append(f'<audio controls src="{src}"></audio>')
        elif data is None and f.problem:
            items.append(f'<a href="{esc(safe_href(f.url))}">{esc(f.type)} (not kept: {esc(f.problem)})</a>')
        else:
            items.append(f'<img src="{src}" alt="{esc(f.type)}" style="max-width:{width}px">')
    html = (
        '<div class="hiapi-media" style="display:flex;flex-wrap:wrap;gap:8px;'
        'align-items:flex-start">' + "".join(items) + "</div>"
    )
    return {"text/html": html, "text/plain": text}, {}


def status_bundle(job: Job) -> dict[str, Any]:
    """The final status line as static HTML that looks like the live bar."""
    style = style_of(job) or ""
    colour = COLOURS[style]
    html = (
        f'<div class="hiapi-status hiapi-{esc(job.status)}" data-status="{esc(job.status)}" '
        'style="font-family:var(--jp-code-font-family,monospace);font-size:12px;margin:2px 0">'
        f"<div>{esc(headline(job))}</div>"
        '<div style="display:flex;align-items:center;gap:8px">'
        '<div style="flex:0 0 240px;height:8px;background:#eee;border-radius:3px">'
        f'<div class="hiapi-bar hiapi-bar-{style or "running"}" '
        f'style="width:100%;height:100%;background:{colour};border-radius:3px"></div></div>'
        f"<span>{esc(state_text(job))}</span></div></div>"
    )
    return {"text/html": html, "text/plain": f"{headline(job)} — {state_text(job)}"}
