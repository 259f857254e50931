"""The one renderer: a job's results and status as HTML or a mime bundle.

Every view draws through here: the cell (``media_bundle``, ``status_bundle``),
``Generation``'s display, gallery and grid cards (``card_html``), the prompt form's
history and ``%hiapi history`` (``Shown``, ``still_source``, ``open_source``). What stays
in a saved notebook is plain output that needs no kernel and no widget state (GitHub,
nbviewer, a reopened notebook), and how much of each result it holds is one rule,
``embed`` (``%hiapi config embed=``):

- ``preview`` (the default): each image as a preview sized for where it is shown (sharp on
  a 2x screen), linked to the original's local copy beside the notebook (else its URL); a
  video as its poster, playing from the local copy (else the URL, while it lives). A sweep
  of 4K images stays a few hundred KB.
- ``full``: the originals themselves, up to ``embed_limit`` each: self-contained and heavy.
- ``none``: nothing embedded; media come from the local copies (or the URLs).

Where files beside the notebook do not load (VS Code's webview, Colab's iframe: ``files``
false, by default ``frontend.files_resolve()``), nothing points at them: pictures are their
embedded previews, a video is an embedded preview clip (``clip``), else its poster linked to
its URL while that lives, and "open the original" says where the file is instead.

Settings arrive as arguments (``embed``, ``embed_limit``, ``files``).
"""

from __future__ import annotations

import base64
import itertools
import json
import mimetypes
import uuid
from typing import Any, Protocol, TypeAlias

from ..config import EMBED_MODES
from ..media import is_ref, ref_label
from ..runtime import Job
from .shown import (
    EMBED_LIMIT,
    Shown,
    local_path,
)
from .tags import (
    audio_tag,
    files_load,
    img_tag,
    live_url,
    missing_link,
    open_source,
    original_note,
    plain_copy,
    portable_video,
    still_source,
    video_tag,
    where_text,
)
from .text import (
    COLOURS,
    NO_MATH,
    cost_title,
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

DISPLAY_WIDTH = 512  # CSS pixels: the box an image or a video of the cell fits in
THUMB = 192  # an item of a gallery or grid
POSTER_TYPES = ("first_frame", "thumbnail")

# One scoped style block per output. A thumbnail opens its full size in a popover
# (native: a click outside or Escape closes it, no script); the full size loads only
# then (loading="lazy"). Where a front end strips the styling and those attributes
# (GitHub, an untrusted notebook), the thumbnail still shows and the full size stays
# hidden (an untrusted JupyterLab drops loading="lazy" too, and fetches it anyway).
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
.hiapi-card-links{font-size:11px;line-height:1.35;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.hiapi-lb-caption a{color:#9cf}
</style>"""
_zoom_ids = itertools.count(1)


def embed_mode(embed: str | bool | None) -> str:
    """One of ``EMBED_MODES``; ``True`` (the old ``embed=True``) means full, None the default."""
    if embed is True:
        return "full"
    if embed is None or embed is False:
        return "preview"
    if embed not in EMBED_MODES:
        raise ValueError(f"embed takes {', '.join(EMBED_MODES)}, not {embed!r}")
    return embed


# --- the rule (what an <img> shows, what a click opens: ``tags``) -------------------------


def shown_outputs(job: Job, embed_limit: int) -> tuple[list[Shown], Shown | None]:
    """(the outputs to draw, the poster of the video among them if any). A first frame
    or thumbnail beside a video becomes its poster rather than an item of its own."""
    shown = [Shown.of(f, embed_limit) for f in job.files]
    poster = next((s for s in shown if s.file.type in POSTER_TYPES), None)
    if poster is None or not any(s.kind == "video" for s in shown):
        return shown, None
    return [s for s in shown if s is not poster], poster


def primary_output(job: Job, kind: str, embed_limit: int) -> Shown | None:
    """The main output of ``kind`` that is here (a history row's image or clip):
    side outputs (frames, thumbnails) only when nothing else is there."""
    shown, _poster = shown_outputs(job, embed_limit)
    side = len(shown) > 1
    for s in shown:
        if s.kept and s.kind == kind and not (side and s.file.type in POSTER_TYPES + ("last_frame",)):
            return s
    return None


def file_name(job: Job, shown: Shown) -> str:
    """The name a download gets: task id, index and type."""
    f = shown.file
    ext = (mimetypes.guess_extension(shown.mime) or "") if shown.mime else ""
    if f.path is not None:
        ext = f.path.suffix or ext
    return f"{job.task_id or 'task'}-{f.index}-{f.type}{ext}"


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


def media_item(
    s: Shown, poster: Shown | None, embed: str, width: int = DISPLAY_WIDTH, files: bool = True
) -> str:
    """One output in the cell, as the ``embed`` rule says (see the module's docstring);
    ``files``: whether paths beside the notebook load where it is shown."""
    if not s.kept and s.kind == "image" and s.file.problem:
        return missing_link(s.file)
    if not files and s.kind == "video":
        return portable_video(s, poster, embed, width)
    href = open_source(s, embed)
    if not files and href is not None and href == local_path(s.file):
        href = None  # a path beside the notebook: nothing opens it here, say where it is
    if s.kind == "video":
        cover = still_source(poster, embed, 2 * width) if poster is not None and poster.kept else None
        width = cover[1].css_size(width)[0] if cover and cover[1] else width
        if href is None:
            return missing_link(s.file)
        tag = video_tag(href, cover[0] if cover else None, width, preload="metadata")
        # no "open" link: the player plays the original itself (and JupyterLab opens no .mp4)
        note = original_note(s, cover[1] if cover else None, None)
        return f'<div class="hiapi-result">{tag}{note}</div>'
    if s.kind == "audio":
        return audio_tag(href) if href else missing_link(s.file)
    if embed == "full":
        src, shown = s.embedded() or s.link() or "#", None
    else:
        src, shown = still_source(s, embed if files else "preview", 2 * width)
    if not files and src == local_path(s.file):
        src = s.embedded() or live_url(s) or "#"  # no preview (not an image Pillow reads)
    img = img_tag(src, s.file.type, width=width, shown=shown, lazy=embed == "none")
    if not files and not href:
        return f'<div class="hiapi-result">{img}{original_note(s, shown, None, where_text(s))}</div>'
    if embed == "full" or not href:
        return img
    title = "open the original" + (f" ({shown.original[0]}×{shown.original[1]})" if shown else "")
    return (
        f'<div class="hiapi-result"><a class="hiapi-original" href="{esc(href)}" target="_blank" '
        f'title="{esc(title)}" style="display:inline-block">{img}</a>{original_note(s, shown, href)}</div>'
    )


def media_bundle(
    job: Job,
    *,
    embed_limit: int = EMBED_LIMIT,
    width: int = DISPLAY_WIDTH,
    embed: str | bool = "preview",
    files: bool | None = None,
    plain: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(data, metadata) for the job's outputs in the cell, or None when there is nothing.
    ``files``: whether paths beside the notebook load where it is shown (None: ask
    ``tags.files_load``).

    With ``embed="full"`` one image alone goes out as a plain ``image/*`` output (the
    original). Its preview goes out once, in the HTML; also as a plain ``image/*`` output
    where ``plain`` (None: ``tags.plain_copy``, headless runs) says a viewer may draw no HTML."""
    if not job.files:
        return None
    embed = embed_mode(embed)
    files = files_load() if files is None else files
    plain = plain_copy() if plain is None else plain
    shown, poster = shown_outputs(job, embed_limit)
    text = "\n".join(f"{f.type}: {f.path or f.url}" for f in job.files)
    if len(job.files) == 1 and shown[0].kind == "image" and embed != "none":
        one = shown[0]
        if embed == "full":
            data = one.data()
            if data is not None and one.mime in ("image/png", "image/jpeg"):
                return (
                    {one.mime: base64.b64encode(data).decode(), "text/plain": text},
                    {one.mime: {"width": width}},
                )
        else:
            small = one.preview(2 * width)
            if small is not None and small.mime in ("image/png", "image/jpeg"):
                html = media_item(one, None, embed, width, files)
                if not plain:  # the preview once, in the HTML every viewer here draws
                    return {"text/html": html, "text/plain": text}, {}
                return (
                    {
                        "text/html": html,
                        small.mime: base64.b64encode(small.data).decode(),
                        "text/plain": text,
                    },
                    {small.mime: {"width": small.css_size(width)[0]}},
                )
    items = [media_item(s, poster, embed, width, files) for s in shown]
    html = (
        '<div class="hiapi-media" style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start">'
        + "".join(items)
        + "</div>"
    )
    return {"text/html": html, "text/plain": text}, {}


def status_bundle(job: Job) -> dict[str, Any]:
    """The final status line as static HTML that looks like the live bar."""
    html = (
        f'<div class="hiapi-status hiapi-{esc(job.status)} {NO_MATH}" data-status="{esc(job.status)}" '
        'style="font-family:var(--jp-code-font-family,monospace);font-size:12px;margin:2px 0">'
        f"<div>{esc(headline(job))}</div>"
        '<div style="display:flex;align-items:center;gap:8px">'
        f'{bar_html(job, "240px")}<span title="{esc(cost_title(job))}">{esc(state_text(job))}</span>'
        "</div></div>"
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
    job: Job,
    *,
    thumb: int = THUMB,
    embed_limit: int = EMBED_LIMIT,
    embed: str | bool = "preview",
    files: bool | None = None,
) -> tuple[str, list[str]]:
    """(the media of a finished job as thumbnails that enlarge on a click, its download links).
    The thumbnail is drawn at twice ``thumb`` pixels; what the click shows follows ``embed``;
    where files beside the notebook do not load (``files``), nothing points at them."""
    embed = embed_mode(embed)
    files = files_load() if files is None else files
    shown, poster = shown_outputs(job, embed_limit)
    items, links = [], []
    for s in shown:
        if not s.kept:
            items.append(missing_link(s.file))
            continue
        full = open_source(s, embed) or "#"
        if not files and full == local_path(s.file):
            full = still_source(s, "preview", 2 * DISPLAY_WIDTH)[0]  # what the enlarged view shows
        href = local_path(s.file) if files else live_url(s)
        link = (
            f'<a href="{esc(href or full)}" download="{esc(file_name(job, s))}" '
            f'target="_blank">download {esc(s.file.type)}</a>'
            if files or href
            else (where_text(s) or "")
        )
        links.append(link)
        if s.kind == "video" and not files:
            items.append(portable_video(s, poster, embed, thumb))
        elif s.kind == "video":
            cover = None
            if poster is not None and poster.kept:
                cover = still_source(poster, embed, thumb * 2, "width")[0]
            items.append(video_tag(full, cover, thumb, preload="none"))
        elif s.kind == "audio":
            items.append(audio_tag(full, thumb))
        else:
            caption = f"{esc(details_text(job))} · {link}"
            big = f'<img src="{esc(full)}" loading="lazy" alt="{esc(s.file.type)} (full size)">'
            small = still_source(s, embed, thumb * 2, "width")[0]
            items.append(zoom_html(small, big, caption, alt=s.file.type, width=thumb))
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
    embed: str | bool = "preview",
    files: bool | None = None,
) -> str:
    """One job as a card: live status, then its media (or its failure), a caption of one
    short line: ``label`` or the model (``caption="short"``: only what the grid's labels do
    not already say), and a download link for each output kept. The rest is on hover and in
    the enlarged view."""
    links: list[str] = []
    if not job.done:
        body = pending_html(job, thumb)
    elif job.succeeded and job.files:
        body, links = card_media(job, thumb=thumb, embed_limit=embed_limit, embed=embed, files=files)
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
        cap = f'<figcaption title="{esc(details_text(job))}">{" · ".join(line) or "&nbsp;"}</figcaption>'
    # On the card itself, not only in the enlarged view: a clip has none, and a picture's
    # link should not take two clicks to find.
    downloads = f'<div class="hiapi-card-links">{" · ".join(links)}</div>' if links else ""
    return (
        f'<figure class="hiapi-card" data-status="{esc(job.status)}" '
        f'data-task="{esc(job.task_id or "")}" style="margin:0;min-width:0;width:100%;'
        f'max-width:{thumb}px">{body}{cap}{downloads}</figure>'
    )


def card_text(job: Job) -> str:
    files = " ".join(str(f.path or f.url) for f in job.files)
    return status_line(job) + (f" · {files}" if files else "")


class HasJob(Protocol):
    """What views show besides a bare job: a ``Generation`` (the views, below it, name
    only what they use of it)."""

    @property
    def job(self) -> Job: ...


Viewed: TypeAlias = Job | HasJob  # an item of a gallery or grid


def job_of(item: Viewed) -> Job:
    """Views take ``Generation``s (anything with ``.job``) or runtime jobs."""
    return item if isinstance(item, Job) else item.job


__all__ = [
    "CARD_STYLE",
    "DISPLAY_WIDTH",
    "EMBED_LIMIT",
    "THUMB",
    "HasJob",
    "Viewed",
    "Shown",
    "embed_mode",
    "open_source",
    "still_source",
    "card_html",
    "card_media",
    "card_text",
    "job_of",
    "media_bundle",
    "primary_output",
    "shown_outputs",
    "status_bundle",
]
