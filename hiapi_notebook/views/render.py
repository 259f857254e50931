"""The one renderer: a job's results and status as HTML or a mime bundle.

Every view draws through here: the cell (``media_bundle``, ``status_bundle``),
``Generation``'s display, gallery and grid cards (``card_html``) and the prompt
form's history rows (``primary_output``). What stays in a saved notebook is
plain output that needs no kernel and no widget state (GitHub, nbviewer, a
reopened notebook): one image as ``image/png``/``image/jpeg``, anything else as
one HTML block with media embedded as data URIs up to ``embed_limit``, beyond
which they come from the local copy beside the notebook or the URL.

Settings arrive as arguments (``embed_limit``); this module reads no globals.
"""

from __future__ import annotations

import base64
import itertools
import json
import mimetypes
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..media import is_ref, ref_label
from ..runtime import Job, OutputFile
from .text import (
    COLOURS,
    elapsed_text,
    esc,
    excerpt,
    failure_text,
    headline,
    progress,
    state_text,
    status_line,
    style_of,
)
from .thumbs import thumbnail_uri

DISPLAY_WIDTH = 512  # an image in the cell
THUMB = 192  # an item of a gallery or grid
EMBED_LIMIT = 20 * 2**20
POSTER_TYPES = ("first_frame", "thumbnail")
_SNIFF = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)

# One scoped style block per output. A thumbnail opens its full size in a popover
# (native: a click outside or Escape closes it, no script). Where a front end strips
# the styling and those attributes (GitHub, an untrusted notebook), the thumbnail
# still shows and the full size stays hidden.
CARD_STYLE = """<style>
.hiapi-zoom{all:unset;display:block;cursor:zoom-in}
.hiapi-lb-full:popover-open{display:flex !important;flex-direction:column;align-items:center;gap:8px;
  border:0;padding:8px;background:transparent;color:#eee;max-width:98vw;max-height:98vh;overflow:auto}
.hiapi-lb-full::backdrop{background:rgba(0,0,0,.85);cursor:zoom-out}
.hiapi-lb-full img,.hiapi-lb-full video{max-width:96vw;max-height:86vh;object-fit:contain}
.hiapi-lb-caption{font:12px var(--jp-code-font-family,monospace);max-width:96vw;text-align:center;
  overflow-wrap:anywhere}
.hiapi-card figcaption{text-align:left;font-size:11px;line-height:1.35;margin-top:3px;white-space:nowrap;
  overflow:hidden;text-overflow:ellipsis;font-family:var(--jp-code-font-family,monospace);
  color:var(--jp-content-font-color2,#555)}
.hiapi-card a{color:var(--jp-content-link-color,#1a73e8)}
.hiapi-lb-caption a{color:#9cf}
</style>"""
_zoom_ids = itertools.count(1)


# --- reading an output ----------------------------------------------------------------------


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


def read_within(file: OutputFile, limit: int) -> bytes | None:
    """The bytes of an output small enough to embed; a bigger one is not read at all
    (a video can be gigabytes), and is shown from its local copy or URL instead."""
    size = file.size
    if size is None and file.path is not None and file.path.exists():
        size = file.path.stat().st_size
    if size is not None and size > limit:
        return None
    return file.read()


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


@dataclass(frozen=True)
class Shown:
    """One output as it will be drawn: its bytes (when small enough), type and kind."""

    file: OutputFile
    data: bytes | None
    mime: str
    kind: str

    def source(self, embed_limit: int) -> str:
        """Embedded up to ``embed_limit``, else the local copy beside the notebook, else the URL."""
        if self.data is not None and len(self.data) <= embed_limit:
            return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"
        return local_path(self.file) or safe_href(self.file.url)

    def full_source(self, embed_limit: int, embed: bool) -> str:
        """Full size for a card: the local copy (nothing big goes into the output) unless
        ``embed`` asks for a self-contained notebook, else as ``source``."""
        local = None if embed else local_path(self.file)
        return local or self.source(embed_limit)


def shown_outputs(job: Job, embed_limit: int) -> tuple[list[Shown], Shown | None]:
    """(the outputs to draw, the poster of the video among them if any). A first frame
    or thumbnail beside a video becomes its poster rather than an item of its own."""
    shown = []
    for f in job.files:
        data = read_within(f, embed_limit)
        mime = sniff(data, f.content_type) if data else (f.content_type or "")
        shown.append(Shown(f, data, mime, kind_of(f, mime)))
    poster = next((s for s in shown if s.file.type in POSTER_TYPES), None)
    if poster is None or not any(s.kind == "video" for s in shown):
        return shown, None
    return [s for s in shown if s is not poster], poster


def primary_output(job: Job, kind: str, embed_limit: int) -> Shown | None:
    """The main output of ``kind`` with its bytes (a history row's image or clip):
    side outputs (frames, thumbnails) only when nothing else is there."""
    shown, _poster = shown_outputs(job, embed_limit)
    side = len(shown) > 1
    for s in shown:
        if (
            s.data is not None
            and s.kind == kind
            and not (side and s.file.type in POSTER_TYPES + ("last_frame",))
        ):
            return s
    return None


def file_name(job: Job, shown: Shown) -> str:
    """The name a download gets: task id, index and type."""
    f = shown.file
    ext = (mimetypes.guess_extension(shown.mime) or "") if shown.mime else ""
    if f.path is not None:
        ext = f.path.suffix or ext
    return f"{job.task_id or 'task'}-{f.index}-{f.type}{ext}"


# --- tags -------------------------------------------------------------------------------------


def video_tag(src: str, poster: str | None, width: int, *, preload: str) -> str:
    poster_attr = f' poster="{esc(poster)}"' if poster else ""
    return (
        f'<video controls muted loop playsinline preload="{preload}"{poster_attr} src="{esc(src)}" '
        f'style="width:100%;max-width:{width}px;display:block"></video>'
    )


def audio_tag(src: str, width: int | None = None) -> str:
    style = f' style="width:100%;max-width:{width}px"' if width else ""
    return f'<audio controls preload="none" src="{esc(src)}"{style}></audio>'


def missing_link(file: OutputFile) -> str:
    note = f" (not kept: {file.problem})" if file.problem else ""
    return f'<a href="{esc(safe_href(file.url))}" target="_blank">{esc(file.type)}{esc(note)}</a>'


def bar_html(job: Job, width: str, height: int = 8) -> str:
    """A static bar at the job's position in its colour (the live bar is a widget)."""
    pct = 3 if job.status == "waiting" else int(round(progress(job) * 100))
    colour = COLOURS.get(style_of(job) or "", COLOURS[""])
    return (
        f'<div style="flex:0 0 auto;width:{width};height:{height}px;background:var(--jp-layout-color3,#eee);'
        'border-radius:3px">'
        f'<div class="hiapi-bar hiapi-bar-{style_of(job) or "running"}" style="width:{pct}%;height:100%;'
        f'background:{colour};border-radius:3px"></div></div>'
    )


# --- the cell -------------------------------------------------------------------------------


def media_bundle(
    job: Job, *, embed_limit: int = EMBED_LIMIT, width: int = DISPLAY_WIDTH
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(data, metadata) for the job's outputs in the cell, or None when there is nothing."""
    shown, poster = shown_outputs(job, embed_limit)
    if not job.files:
        return None
    text = "\n".join(f"{f.type}: {f.path or f.url}" for f in job.files)
    if len(job.files) == 1 and shown[0].data is not None and shown[0].mime in ("image/png", "image/jpeg"):
        one = shown[0]
        return (
            {one.mime: base64.b64encode(one.data).decode(), "text/plain": text},
            {one.mime: {"width": width}},
        )
    items = []
    for s in shown:
        if s.kind == "video":
            items.append(
                video_tag(
                    s.source(embed_limit),
                    poster.source(embed_limit) if poster and poster.data else None,
                    width,
                    preload="metadata",
                )
            )
        elif s.kind == "audio":
            items.append(audio_tag(s.source(embed_limit)))
        elif s.data is None and s.file.problem:
            items.append(missing_link(s.file))
        else:
            src = esc(s.source(embed_limit))
            items.append(f'<img src="{src}" alt="{esc(s.file.type)}" style="max-width:{width}px">')
    html = (
        '<div class="hiapi-media" style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start">'
        + "".join(items)
        + "</div>"
    )
    return {"text/html": html, "text/plain": text}, {}


def status_bundle(job: Job) -> dict[str, Any]:
    """The final status line as static HTML that looks like the live bar."""
    html = (
        f'<div class="hiapi-status hiapi-{esc(job.status)}" data-status="{esc(job.status)}" '
        'style="font-family:var(--jp-code-font-family,monospace);font-size:12px;margin:2px 0">'
        f"<div>{esc(headline(job))}</div>"
        '<div style="display:flex;align-items:center;gap:8px">'
        f"{bar_html(job, '240px')}<span>{esc(state_text(job))}</span></div></div>"
    )
    return {"text/html": html, "text/plain": f"{headline(job)} — {state_text(job)}"}


# --- cards: an item of a gallery, grid or kept history --------------------------------------


def pending_html(job: Job, width: int) -> str:
    """A running job as a small static card: status word, elapsed time, bar."""
    return (
        f'<div class="hiapi-pending" data-status="{esc(job.status)}" style="width:100%;'
        f"max-width:{width}px;min-height:{max(48, width // 3)}px;display:flex;flex-direction:column;"
        "justify-content:center;gap:4px;padding:6px;box-sizing:border-box;border:1px dashed "
        "var(--jp-border-color1,#ccc);border-radius:4px;font-size:12px;"
        'font-family:var(--jp-code-font-family,monospace)">'
        f"<div>{esc(job.status)} · {esc(elapsed_text(job.elapsed))}</div>"
        f"{bar_html(job, '100%', 6)}</div>"
    )


def failure_html(job: Job, width: int) -> str:
    message = failure_text(job) or job.status
    return (
        f'<div class="hiapi-failure" data-status="{esc(job.status)}" style="width:100%;'
        f"max-width:{width}px;padding:6px;box-sizing:border-box;border:1px solid {COLOURS['danger']};"
        f"border-radius:4px;background:rgba(217,83,79,.08);color:{COLOURS['danger']};"
        f'font-size:12px;word-break:break-word">{esc(job.status)}: {esc(message)}</div>'
    )


def _thumb(job: Job, s: Shown, px: int, embed_limit: int) -> str:
    assert s.data is not None
    return thumbnail_uri((job.local_id, s.file.index), s.data, px) or s.source(embed_limit)


def zoom_html(small: str, full_html: str, caption_html: str, *, alt: str, width: int) -> str:
    """A thumbnail that opens ``full_html`` (with ``caption_html`` under it) over the page on a
    click; a click beside it or Escape closes it."""
    pid = f"hiapi-zoom-{_page_id}-{next(_zoom_ids)}"
    return (
        f'<button type="button" class="hiapi-zoom hiapi-lb" popovertarget="{pid}" title="click to enlarge">'
        f'<img class="hiapi-thumb" src="{esc(small)}" alt="{esc(alt)}" style="width:100%;max-width:{width}px;'
        'height:auto;display:block;border-radius:3px"></button>'
        f'<div id="{pid}" popover class="hiapi-lb-full" style="display:none">{full_html}'
        f'<div class="hiapi-lb-caption">{caption_html}</div></div>'
    )


_page_id = uuid.uuid4().hex[:8]  # ids stay unique when two kernels' outputs share a page


def details_text(job: Job) -> str:
    """Everything a card's one-line caption leaves out: model, settings, prompt, task id."""
    bits = [job.request.model or "task"]
    settings = key_settings(job, limit=8)
    if settings:
        bits.append(settings)
    if job.request.prompt:
        bits.append(f'"{excerpt(job.request.prompt, 300)}"')
    if job.task_id:
        bits.append(job.task_id)
    if job.cached:
        bits.append("cached")
    return " · ".join(bits)


def card_media(
    job: Job, *, thumb: int = THUMB, embed_limit: int = EMBED_LIMIT, embed: bool = False
) -> tuple[str, list[str]]:
    """(the media of a finished job as thumbnails that enlarge on a click, its download links)."""
    shown, poster = shown_outputs(job, embed_limit)
    items, links = [], []
    for s in shown:
        if s.data is None:
            items.append(missing_link(s.file))
            continue
        full = s.full_source(embed_limit, embed)
        link = (
            f'<a href="{esc(local_path(s.file) or full)}" download="{esc(file_name(job, s))}" '
            f'target="_blank">download {esc(s.file.type)}</a>'
        )
        links.append(link)
        if s.kind == "video":
            cover = _thumb(job, poster, thumb * 2, embed_limit) if poster and poster.data else None
            items.append(video_tag(full, cover, thumb, preload="none"))
        elif s.kind == "audio":
            items.append(audio_tag(full, thumb))
        else:
            caption = f"{esc(details_text(job))} · {link}"
            big = f'<img src="{esc(full)}" alt="{esc(s.file.type)} (full size)">'
            items.append(
                zoom_html(_thumb(job, s, thumb * 2, embed_limit), big, caption, alt=s.file.type, width=thumb)
            )
    return "".join(items), links


def key_settings(job: Job, limit: int = 4) -> str:
    """The inputs that make this result differ: everything but the prompt, shortened."""
    parts = []
    for name, value in job.request.recorded_input().items():
        if name in ("prompt", "text") or value in (None, "", [], {}):
            continue
        if is_ref(value) or (isinstance(value, list) and any(is_ref(v) for v in value)):
            value = [ref_label(v) for v in value] if isinstance(value, list) else ref_label(value)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{name}={excerpt(text, 24)}")
    shown = parts[:limit]
    if len(parts) > limit:
        shown.append("…")
    return " ".join(shown)


def card_html(
    job: Job,
    *,
    thumb: int = THUMB,
    embed_limit: int = EMBED_LIMIT,
    caption: bool | str = True,
    label: str | None = None,
    embed: bool = False,
) -> str:
    """One job as a card: live status, then its media (or its failure), and a caption of
    one short line: ``label`` or the model (``caption="short"``: only what the grid's labels
    do not already say). The rest is on hover and in the enlarged view."""
    links: list[str] = []
    if not job.done:
        body = pending_html(job, thumb)
    elif job.succeeded and job.files:
        body, links = card_media(job, thumb=thumb, embed_limit=embed_limit, embed=embed)
    elif job.succeeded:
        body = '<div style="font-size:12px">success (no outputs)</div>'
    else:
        body = failure_html(job, thumb)
    cap = ""
    if caption:
        line = [f"<b>{esc(label)}</b>"] if label else []
        if caption != "short" and not label:
            line.append(esc(job.request.model or "task"))
        if job.cached:
            line.append("cached")
        if links and not any(s.kind == "image" for s in shown_outputs(job, embed_limit)[0]):
            line.extend(links)  # a clip or a sound has no enlarged view to carry its link
        cap = f'<figcaption title="{esc(details_text(job))}">{" · ".join(line) or "&nbsp;"}</figcaption>'
    return (
        f'<figure class="hiapi-card" data-status="{esc(job.status)}" '
        f'data-task="{esc(job.task_id or "")}" style="margin:0;min-width:0;width:100%;'
        f'max-width:{thumb}px">{body}{cap}</figure>'
    )


def card_text(job: Job) -> str:
    files = " ".join(str(f.path or f.url) for f in job.files)
    return status_line(job) + (f" · {files}" if files else "")


def job_of(item: Any) -> Job:
    """Views take ``Generation``s (anything with ``.job``) or runtime jobs."""
    return item if isinstance(item, Job) else item.job


__all__ = [
    "CARD_STYLE",
    "DISPLAY_WIDTH",
    "EMBED_LIMIT",
    "THUMB",
    "Shown",
    "card_html",
    "card_media",
    "card_text",
    "job_of",
    "media_bundle",
    "primary_output",
    "read_within",
    "shown_outputs",
    "sniff",
    "status_bundle",
]
