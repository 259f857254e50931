"""The tags every view draws a result with, and the rule for their sources: what an
``<img>`` shows and what a click opens (``still_source``, ``open_source``), and, where
files beside the notebook do not load (VS Code's webview, Colab's iframe), a video that
plays anyway (``portable_video``) and words saying where a file is instead of a dead link.
"""

from __future__ import annotations

import time

from ..runtime import OutputFile
from .clip import preview_clip
from .frontend import detect, files_resolve
from .preview import Preview
from .shown import Shown, file_size_text, local_path, safe_href, size_of
from .text import esc

# --- the rule -------------------------------------------------------------------------------


def files_load() -> bool:
    """Whether the HTML drawn now may point at files beside the notebook: not in VS Code
    or Colab (``frontend.files_resolve``). Terminals and scripts show no HTML; what they
    build (a ``Generation``'s bundle) keeps today's links."""
    return files_resolve() or detect() in ("terminal", "script")


def plain_copy() -> bool:
    """Whether a lone picture also goes out as a plain ``image/*`` output beside its HTML, which
    holds the same preview. The front ends a person saves from (JupyterLab, Notebook 7, VS Code,
    Colab) and the viewers of what they save (nbviewer; GitHub, whose grids' thumbnails are HTML
    too) draw the HTML: a second copy would only double each picture's weight. Headless runs keep
    it: their notebooks become reports, and nbconvert's PDF, LaTeX and Markdown draw no HTML."""
    return detect() in ("headless", "terminal", "script")


def still_source(s: Shown, embed: str, px: int, fit: str = "contain") -> tuple[str, Preview | None]:
    """What an ``<img>`` of ``s`` shows (a result, a thumbnail, a poster), drawn for ``px``
    pixels as ``fit`` says (``preview.box``: twice the CSS size it is shown at): the preview
    (``preview``, ``full``), else the original embedded (``full``), else the original's local
    copy or URL (and ``none`` always that)."""
    if embed != "none":
        small = s.preview(px, fit)
        if small is not None:
            return small.uri, small
        inside = s.embedded() if embed == "full" else None
        if inside is not None:
            return inside, None
    return s.link() or "#", None


def open_source(s: Shown, embed: str) -> str | None:
    """What a click opens or a player plays: the original embedded (``full``, up to the embed
    limit), else its local copy, else its URL while it lives."""
    if embed == "full":
        inside = s.embedded()
        if inside is not None:
            return inside
    return s.link()


# --- tags -------------------------------------------------------------------------------------


def video_tag(src: str, poster: str | None, width: int, *, preload: str) -> str:
    poster_attr = f' poster="{esc(poster)}"' if poster else ""
    return (
        f'<video controls muted loop playsinline preload="{preload}"{poster_attr} src="{esc(src)}" '
        f'style="width:100%;max-width:{width}px;display:block"></video>'
    )


def img_tag(src: str, alt: str, *, width: int, shown: Preview | None = None, lazy: bool = False) -> str:
    """An image at most ``width`` CSS pixels wide (its preview's own size when known, so the
    page does not jump while it loads)."""
    size = ""
    if shown is not None:
        w, h = shown.css_size(width)
        size = f' width="{w}" height="{h}"'
    loading = ' loading="lazy"' if lazy else ""
    return (
        f'<img src="{esc(src)}"{loading} alt="{esc(alt)}"{size} '
        f'style="max-width:min(100%,{width}px);height:auto;display:block">'
    )


def original_note(s: Shown, shown: Preview | None, href: str | None, where: str | None = None) -> str:
    """One short line under a preview: what the original is, and a link that opens it (or,
    where files do not load, ``where`` it is)."""
    bits = []
    if shown is not None:
        bits.append(f"{shown.original[0]}×{shown.original[1]}")
    bits.append(s.mime.split("/")[-1].upper())
    size = file_size_text(size_of(s.file))
    if size:
        bits.append(size)
    text = esc(" · ".join(bits))
    if href:
        text += f' · <a href="{esc(href)}" target="_blank" title="{esc(href)}">open the original</a>'
    elif where:
        text += f" · {where}"
    return (
        '<div class="hiapi-original-note" style="font-size:11px;line-height:1.4;margin-top:2px;'
        f'color:var(--jp-content-font-color2,#666)">{text}</div>'
    )


def audio_tag(src: str, width: int | None = None) -> str:
    style = f' style="width:100%;max-width:{width}px"' if width else ""
    return f'<audio controls preload="none" src="{esc(src)}"{style}></audio>'


def missing_link(file: OutputFile) -> str:
    note = f" (not kept: {file.problem})" if file.problem else ""
    return f'<a href="{esc(safe_href(file.url))}" target="_blank">{esc(file.type)}{esc(note)}</a>'


def where_text(s: Shown, what: str = "the original") -> str | None:
    """Where the local copy is, for a front end that cannot open it: its path beside the notebook."""
    path = local_path(s.file)
    if path is None:
        return None
    return f'{what}: <code title="beside the notebook">{esc(path)}</code> beside the notebook'


def live_url(s: Shown, now: float | None = None) -> str | None:
    """The output's URL while it lives (http(s) only)."""
    url = safe_href(s.file.url)
    expire_at = s.file.output.expire_at
    if url == "#" or (expire_at is not None and expire_at <= (time.time() if now is None else now)):
        return None
    return url


def until_text(s: Shown) -> str:
    expire_at = s.file.output.expire_at
    if expire_at is None:
        return "while its URL lives"
    return "until " + time.strftime("%Y-%m-%d %H:%M", time.localtime(expire_at))


def portable_video(s: Shown, poster: Shown | None, embed: str, width: int) -> str:
    """A video where files beside the notebook do not load: an embedded preview clip, else its
    poster linked to its URL while that lives, saying until when (else where the file is)."""
    cover = (
        still_source(poster, embed if embed != "none" else "preview", 2 * width)
        if poster and poster.kept
        else None
    )
    cover_src = cover[0] if cover and cover[0].startswith("data:") else None
    width = cover[1].css_size(width)[0] if cover and cover[1] else width
    clip = preview_clip(s) if s.kept else None
    if clip is not None:
        tag = video_tag(clip, cover_src, width, preload="metadata")
        where = where_text(s)
        if len(clip) < (size_of(s.file) or 0):  # base64 is 4/3 of the bytes: smaller means re-encoded
            where = "a small preview plays here" + (f" · {where}" if where else "")
        note = original_note(s, cover[1] if cover else None, None, where)
        return f'<div class="hiapi-result hiapi-clip">{tag}{note}</div>'
    url = live_url(s)
    still = (
        img_tag(cover_src, "video poster", width=width, shown=cover[1] if cover else None)
        if cover_src
        else f'<div style="font-size:12px">{esc(s.file.type)}</div>'
    )
    if url is not None:
        body = (
            f'<a class="hiapi-original" href="{esc(url)}" target="_blank" title="play the video">{still}</a>'
        )
        where = f'<a href="{esc(url)}" target="_blank">play it</a> from its URL {esc(until_text(s))}'
        if local_path(s.file):
            where += f" · {where_text(s)}"
    else:
        body, where = still, where_text(s, "the video") or "the video is not kept here"
    return f'<div class="hiapi-result hiapi-poster">{body}{original_note(s, None, None, where)}</div>'
