"""``Gallery``: many results at once, as static HTML that fills in as tasks finish.

The gallery is not a widget: it is an HTML output made in the cell (a display
handle) and re-sent whenever one of its jobs changes. So a saved notebook keeps
exactly what was last shown, with no widget state to lose, and dozens of items
stay cheap (one small thumbnail each in the grid; the full size only opens on a
click). Images open in a lightbox (a ``<details>`` element: no script needed);
where a front end strips the styling, the full image simply opens below its
thumbnail.

``LiveHTML`` (the display-handle machinery) and ``item_html`` (one result as a
card) are shared with the comparison grid.
"""

from __future__ import annotations

import asyncio
import base64
import io
import mimetypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from .. import _loop
from ..runtime import Job, OutputFile
from .media import EMBED_LIMIT, _kind, _src, _under_cwd, read_within, safe_href, sniff
from .text import COLOURS, elapsed_text, esc, excerpt, failure_text, progress, style_of

THUMB = 192
_THUMB_CACHE: OrderedDict[tuple, str | None] = OrderedDict()
_THUMB_CACHE_SIZE = 512
_thumb_lock = threading.Lock()

# One scoped style block per output. Front ends that strip <style> (GitHub, an
# untrusted notebook) still show the thumbnail, and the full image below it on a click.
STYLE = """<style>
.hiapi-lb>summary{list-style:none;cursor:zoom-in;display:block;outline:none}
.hiapi-lb>summary::-webkit-details-marker{display:none}
.hiapi-lb>summary::marker{content:""}
.hiapi-lb[open]>summary::after{content:"";position:fixed;inset:0;z-index:10001;cursor:zoom-out}
.hiapi-lb[open]>.hiapi-lb-full{display:flex;position:fixed;inset:0;z-index:10000;
  background:rgba(0,0,0,.85);align-items:center;justify-content:center;box-sizing:border-box;padding:2vh 2vw}
.hiapi-lb-full img{max-width:96vw;max-height:94vh;object-fit:contain}
.hiapi-card figcaption{text-align:left;font-size:11px;line-height:1.35;word-break:break-word;margin-top:3px;
  font-family:var(--jp-code-font-family,monospace);color:var(--jp-content-font-color2,#555)}
.hiapi-card a{color:var(--jp-content-link-color,#1a73e8)}
</style>"""


# --- one result as a card --------------------------------------------------------------------


def thumbnail_uri(job: Job, file: OutputFile, data: bytes, mime: str, px: int) -> str | None:
    """A downscaled copy of an image as a data URI (Pillow), or None to use the original."""
    key = (job.local_id, file.index, px, len(data))
    with _thumb_lock:
        if key in _THUMB_CACHE:
            _THUMB_CACHE.move_to_end(key)
            return _THUMB_CACHE[key]
    uri = _make_thumbnail(data, px)
    with _thumb_lock:
        _THUMB_CACHE[key] = uri
        while len(_THUMB_CACHE) > _THUMB_CACHE_SIZE:
            _THUMB_CACHE.popitem(last=False)
    return uri


def _make_thumbnail(data: bytes, px: int) -> str | None:
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


def key_settings(job: Job, limit: int = 4) -> str:
    """The inputs that make this result differ: everything but the prompt, shortened."""
    parts = []
    for name, value in job.request.input.items():
        if name in ("prompt", "text") or value in (None, "", [], {}):
            continue
        parts.append(f"{name}={excerpt(value if isinstance(value, str) else _json(value), 24)}")
    shown = parts[:limit]
    if len(parts) > limit:
        shown.append("…")
    return " ".join(shown)


def _json(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _local(file: OutputFile) -> str | None:
    if file.path is not None and file.path.exists() and _under_cwd(file.path):
        return os.path.relpath(file.path)
    return None


def full_source(file: OutputFile, data: bytes, mime: str, embed_limit: int, embed: bool) -> str:
    """Full size: the local copy beside the notebook (front ends resolve it; nothing
    big goes into the output), else embedded up to ``embed_limit``, else the URL.
    ``embed`` embeds even when there is a local copy (a self-contained notebook)."""
    local = None if embed else _local(file)
    return local or _src(file, data, mime, embed_limit)


def _file_name(job: Job, file: OutputFile, mime: str) -> str:
    ext = (mimetypes.guess_extension(mime) or "") if mime else ""
    if file.path is not None:
        ext = file.path.suffix or ext
    return f"{job.task_id or 'task'}-{file.index}-{file.type}{ext}"


def pending_html(job: Job, width: int) -> str:
    """A running job as a small static bar: status word, position, elapsed time."""
    status = job.status
    style = "info" if status == "waiting" else (style_of(job) or "")
    colour = COLOURS.get(style, COLOURS[""])
    pct = 3 if status == "waiting" else int(round(progress(job) * 100))
    return (
        f'<div class="hiapi-pending" data-status="{esc(status)}" style="width:100%;'
        f"max-width:{width}px;min-height:{max(48, width // 3)}px;display:flex;flex-direction:column;"
        "justify-content:center;gap:4px;padding:6px;box-sizing:border-box;border:1px dashed "
        "var(--jp-border-color1,#ccc);border-radius:4px;font-size:12px;"
        'font-family:var(--jp-code-font-family,monospace)">'
        f"<div>{esc(status)} · {esc(elapsed_text(job.elapsed))}</div>"
        '<div style="height:6px;background:#eee;border-radius:3px">'
        f'<div style="width:{pct}%;height:100%;background:{colour};border-radius:3px"></div></div>'
        "</div>"
    )


def failure_html(job: Job, width: int) -> str:
    message = failure_text(job) or job.status
    return (
        f'<div class="hiapi-failure" data-status="{esc(job.status)}" style="width:100%;'
        f"max-width:{width}px;padding:6px;box-sizing:border-box;border:1px solid {COLOURS['danger']};"
        f"border-radius:4px;background:rgba(217,83,79,.08);color:{COLOURS['danger']};"
        f'font-size:12px;word-break:break-word">{esc(job.status)}: {esc(message)}</div>'
    )


def media_html(
    job: Job, *, thumb: int = THUMB, embed_limit: int = EMBED_LIMIT, embed: bool = False
) -> tuple[str, list[str]]:
    """(the media of a finished job, its download links)."""
    typed = []
    for f in job.files:
        data = read_within(f, embed_limit)
        mime = sniff(data, f.content_type) if data else (f.content_type or "")
        typed.append((f, data, mime))
    poster = next((t for t in typed if t[0].type in ("first_frame", "thumbnail")), None)
    has_video = any(_kind(f, m) == "video" for f, _, m in typed)
    items, links = [], []
    for f, data, mime in typed:
        if has_video and poster is not None and f is poster[0]:
            continue  # the video's poster
        if data is None:
            note = f" (not kept: {f.problem})" if f.problem else ""
            items.append(f'<a href="{esc(safe_href(f.url))}" target="_blank">{esc(f.type)}{esc(note)}</a>')
            continue
        full = full_source(f, data, mime, embed_limit, embed)
        kind = _kind(f, mime)
        links.append(
            f'<a href="{esc(_local(f) or full)}" download="{esc(_file_name(job, f, mime))}" '
            'target="_blank" style="color:var(--jp-content-link-color,#1a73e8)">'
            f"download {esc(f.type)}</a>"
        )
        if kind == "video":
            poster_attr = ""
            if poster is not None and poster[1] is not None:
                p_uri = thumbnail_uri(job, poster[0], poster[1], poster[2], thumb * 2) or _src(
                    poster[0], poster[1], poster[2], embed_limit
                )
                poster_attr = f' poster="{esc(p_uri)}"'
            items.append(
                f'<video controls muted loop playsinline preload="none"{poster_attr} '
                f'src="{esc(full)}" style="width:100%;max-width:{thumb}px;display:block">'
                "</video>"
            )
        elif kind == "audio":
            items.append(
                f'<audio controls preload="none" src="{esc(full)}" '
                f'style="width:100%;max-width:{thumb}px"></audio>'
            )
        else:
            small = thumbnail_uri(job, f, data, mime, thumb * 2) or _src(f, data, mime, embed_limit)
            items.append(
                '<details class="hiapi-lb"><summary title="click to enlarge">'
                f'<img class="hiapi-thumb" src="{esc(small)}" alt="{esc(f.type)}" '
                f'style="width:100%;max-width:{thumb}px;height:auto;display:block;border-radius:3px">'
                '</summary><div class="hiapi-lb-full">'
                f'<img src="{esc(full)}" alt="{esc(f.type)} (full size)" style="max-width:100%"></div>'
                "</details>"
            )
    return "".join(items), links


def item_html(
    job: Job,
    *,
    thumb: int = THUMB,
    embed_limit: int = EMBED_LIMIT,
    caption: bool | str = True,
    label: str | None = None,
    embed: bool = False,
) -> str:
    """One job as a card: live status, then its media (or its failure) and a caption."""
    links: list[str] = []
    if not job.done:
        body = pending_html(job, thumb)
    elif job.succeeded and job.files:
        body, links = media_html(job, thumb=thumb, embed_limit=embed_limit, embed=embed)
    elif job.succeeded:
        body = '<div style="font-size:12px">success (no outputs)</div>'
    else:
        body = failure_html(job, thumb)
    cap = ""
    if caption:  # True: model, settings, prompt, id, links; "short": id and links (grid cells)
        bits = []
        if label:
            bits.append(f"<b>{esc(label)}</b>")
        if caption != "short":
            bits.append(esc(job.request.model or "task"))
            settings = key_settings(job)
            if settings:
                bits.append(esc(settings))
            if job.request.prompt:
                bits.append(f'"{esc(excerpt(job.request.prompt, 60))}"')
        if job.task_id:
            bits.append(f'<span class="hiapi-task-id">{esc(job.task_id)}</span>')
        if job.cached:
            bits.append("cached")
        bits.extend(links)
        cap = f"<figcaption>{' · '.join(bits)}</figcaption>"
    return (
        f'<figure class="hiapi-card" data-status="{esc(job.status)}" '
        f'data-task="{esc(job.task_id or "")}" style="margin:0;min-width:0;width:100%;'
        f'max-width:{thumb}px">{body}{cap}</figure>'
    )


def item_text(job: Job) -> str:
    from .text import status_line

    files = " ".join(str(f.path or f.url) for f in job.files)
    return status_line(job) + (f" · {files}" if files else "")


# --- static HTML kept live through a display handle ----------------------------------------


class LiveHTML:
    """Static HTML made in the cell, re-sent (coalesced) as its jobs change.

    Job listeners run on the background loop and only count a change; one pump
    coroutine per view re-renders at most every ``interval`` seconds (in a worker
    thread, so thumbnails never stall polling) and moves the clocks of running
    items now and then. The end is different: when the last job ends, its
    listener sends the final HTML at once, before the job's future resolves, so
    a cell waiting on the jobs returns only after its output is final (nbclient
    keeps only what a cell sends before it returns).
    """

    interval = 0.25

    def __init__(self) -> None:
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        self._push_lock = threading.Lock()
        self._version = 0  # changes seen
        self._pushed = 0  # the change the front end shows
        self._pumping = False
        self._subscribed: set[int] = set()
        self._last_size = 0

    # subclasses
    def jobs(self) -> list[Job]:
        raise NotImplementedError

    def render_html(self) -> str:
        raise NotImplementedError

    def render_text(self) -> str:
        raise NotImplementedError

    # display
    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {"text/html": self.render_html(), "text/plain": self.render_text()}

    def _ipython_display_(self) -> None:
        from .status import use_widgets

        if use_widgets():
            self.display()
        else:  # terminal IPython, scripts: what it is now, once
            from IPython import get_ipython

            if get_ipython() is None:
                print(self.render_text())
                return
            from IPython.display import display

            display(self._repr_mimebundle_(), raw=True)

    def display(self):
        """Show it in this cell; it keeps filling in after the cell has returned."""
        from IPython.display import display

        with self._lock:
            version = self._version
        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None:
            with self._lock:
                self._handles.append(handle)
                self._pushed = max(self._pushed, version)
        self._follow()
        return self

    def _follow(self) -> None:
        for job in self.jobs():
            if id(job) not in self._subscribed:  # a done job's subscribe pushes its end at once
                self._subscribed.add(id(job))
                job.subscribe(self._changed)

    def _changed(self, job: Job | None = None) -> None:
        with self._lock:
            self._version += 1
            if not self._handles:
                return
        if job is not None and job.done and all(j.done for j in self.jobs()):
            self._push()  # the last one ended: final HTML now, on the caller's thread
            return
        with self._lock:
            if self._pumping:
                return
            self._pumping = True
        _loop.spawn(self._pump())

    async def _pump(self) -> None:
        last_push = time.monotonic()
        while True:
            # Big outputs (many embedded media) are re-sent less often.
            await asyncio.sleep(max(self.interval, self._last_size / 4_000_000))
            with self._lock:
                stale = self._pushed < self._version
            all_done = all(j.done for j in self.jobs())
            tick = max(1.0, self._last_size / 200_000)  # running clocks
            if stale or (not all_done and time.monotonic() - last_push >= tick):
                await asyncio.to_thread(self._push)
                last_push = time.monotonic()
            if all_done:
                with self._lock:
                    if self._pushed >= self._version:
                        self._pumping = False
                        return

    def _push(self) -> None:
        with self._push_lock:  # one render at a time, so the last one sent is the newest
            with self._lock:
                version = self._version
                handles = list(self._handles)
            bundle = self._repr_mimebundle_()
            self._last_size = len(bundle["text/html"])
            for handle in handles:
                try:
                    handle.update(bundle, raw=True)
                except Exception:  # a closed front end must not stop the others
                    pass
            with self._lock:
                self._pushed = max(self._pushed, version)

    def wait(self, timeout: float | None = None):
        """Block until every job has ended (failures included) and the view is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.jobs():
            try:
                job.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except Exception:
                pass
        while True:
            with self._lock:
                if not self._handles or self._pushed >= self._version:
                    return self
            if deadline is not None and time.monotonic() > deadline:
                return self
            time.sleep(0.05)


def _job_of(item: Any) -> Job:
    """Galleries take ``Generation``s (anything with ``.job``) or runtime jobs."""
    return item if isinstance(item, Job) else item.job


class Gallery(LiveHTML):
    """A responsive grid of results with captions, click to enlarge and download links.

    ``Gallery(generations, columns=None, thumb=192)``: ``columns`` fixes the
    number of columns (else as many ``thumb``-px columns as fit). Displaying it
    shows live status for running items; ``add()`` appends more. Thumbnails are
    embedded; full size comes from the local copy beside the notebook when there
    is one (``embed=True`` embeds it too, for a self-contained notebook).
    """

    def __init__(
        self,
        generations: Iterable[Any] = (),
        columns: int | None = None,
        thumb: int = THUMB,
        *,
        embed_limit: int | None = None,
        title: str | None = None,
        newest_first: bool = False,
        embed: bool = False,
    ) -> None:
        super().__init__()
        self.generations = list(generations)
        self.columns = columns
        self.thumb = int(thumb)
        self.embed_limit = embed_limit if embed_limit is not None else _embed_limit()
        self.title = title
        self.newest_first = newest_first
        self.embed = embed

    def __len__(self) -> int:
        return len(self.generations)

    def add(self, generation: Any) -> Gallery:
        self.generations.append(generation)
        if self._handles:
            self._follow()
            self._changed()
        return self

    def jobs(self) -> list[Job]:
        return [_job_of(g) for g in self.generations]

    def _ordered(self):
        jobs = self.jobs()
        return list(reversed(jobs)) if self.newest_first else jobs

    def render_html(self) -> str:
        cols = (
            f"repeat({int(self.columns)},minmax(0,1fr))"
            if self.columns
            else f"repeat(auto-fill,minmax({self.thumb}px,1fr))"
        )
        cards = "".join(
            item_html(job, thumb=self.thumb, embed_limit=self.embed_limit, embed=self.embed)
            for job in self._ordered()
        )
        done = sum(1 for job in self.jobs() if job.done)
        head = self.title or "hiapi gallery"
        summary = (
            f'<div style="font-size:12px;margin-bottom:4px">{esc(head)} · '
            f"{done}/{len(self.generations)} done</div>"
        )
        if not self.generations:
            cards = '<div style="font-size:12px">(nothing yet)</div>'
        return (
            f'<div class="hiapi-gallery">{STYLE}{summary}'
            f'<div class="hiapi-gallery-grid" style="display:grid;grid-template-columns:{cols};'
            f'gap:10px;align-items:start">{cards}</div></div>'
        )

    def render_text(self) -> str:
        lines = [item_text(job) for job in self._ordered()]
        return "\n".join(lines) if lines else "(empty gallery)"

    def __repr__(self) -> str:
        return f"<Gallery of {len(self.generations)}>"


class GenerationList(list):
    """A plain list of ``Generation``s that displays as a ``Gallery``."""

    def _repr_mimebundle_(self, include=None, exclude=None):
        return Gallery(self)._repr_mimebundle_()

    def _ipython_display_(self) -> None:
        show_gallery(self)


def show_gallery(generations: Iterable[Any], **options: Any):
    """Display ``generations`` as a live gallery in this cell (text lines outside a notebook)."""
    gallery = Gallery(generations, **options)
    gallery._ipython_display_()
    return gallery


def _embed_limit() -> int:
    from . import media

    return media.embed_limit


__all__ = ["Gallery", "GenerationList", "LiveHTML", "item_html", "show_gallery"]
