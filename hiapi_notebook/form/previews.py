"""Small pictures of the form's media values (a chosen file, a result, bytes) and the
closing of replaced widgets: shared by the media fields and the picker of earlier results."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import inputs, media
from ..generation import GeneratedOutput, Generation
from ..inputs import Named
from ..views.status import close_all as close_widget
from ..views.text import esc

if TYPE_CHECKING:
    from ipywidgets import DOMWidget, Widget

THUMB = 72


def preview(value: Any, px: int = THUMB) -> DOMWidget:
    """A small picture of a value (an HTML label when there is none)."""
    import ipywidgets as w

    data = bytes_of(value)
    mime = media.sniff(data) if data else None
    if data and mime is not None and media.kind_of(mime) == "image":
        small = media.thumbnail(data, px * 2)
        if small is not None or len(data) <= 256 * 1024:
            image = w.Image(
                value=small or data,
                format="jpeg" if small is not None else mime.split("/")[1],
                layout=w.Layout(max_width=f"{px}px", max_height=f"{px}px", object_fit="contain"),
            )
            image.add_class("hiapi-media-thumb")
            return image
    what = media.NAMES.get(mime, "") if mime else ""
    return w.HTML(
        f'<div class="hiapi-media-thumb" style="width:{px}px;height:{px // 2}px;font-size:11px;'
        f'border:1px solid #ccc;display:flex;align-items:center;justify-content:center">'
        f"{esc(what or 'link')}</div>"
    )


def bytes_of(value: Any) -> bytes | None:
    """The bytes behind a chosen value, when they are here (never fetched)."""
    if isinstance(value, Named):
        return bytes_of(value.value)
    if isinstance(value, Path):
        try:
            small = value.is_file() and value.stat().st_size <= 64 * 2**20  # a FIFO would block
            return value.read_bytes() if small else None
        except OSError:
            return None
    if isinstance(value, Generation):
        outputs = value.outputs
        picture = next(
            (o for o in outputs if o.type in inputs.IMAGE_OUTPUTS), outputs[0] if outputs else None
        )
        return picture.local_data() if picture is not None else None
    if isinstance(value, GeneratedOutput):
        return value.local_data()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return None


def close_all(widgets: Iterable[Widget]) -> None:
    """Close widgets being replaced, with theirs, layouts and styles too: the kernel and the
    front end keep every open model. Call it once they have left their box."""
    for widget in widgets:
        close_widget(widget)
