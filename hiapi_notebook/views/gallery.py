"""``Gallery``: many results at once, as static HTML that fills in as tasks finish.

A responsive grid of cards (``render.card_html``): one small thumbnail each, the
full size only on a click, in a popover (no script). ``LiveHTML`` keeps it current
after the cell has returned.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any, TypeVar

from ..costs import Estimate
from ..runtime import Gate, Job
from .live import LiveHTML
from .render import CARD_STYLE, EMBED_LIMIT, THUMB, Viewed, card_html, card_text, embed_mode, job_of
from .text import NO_MATH, esc

Item = TypeVar("Item", bound=Viewed)


def embed_limit_of(item: object, given: int | None) -> int:
    """The limit a caller gave, else the item's own (a ``Generation`` carries its
    session's setting), else the default."""
    if given is not None:
        return given
    return int(getattr(item, "embed_limit", None) or EMBED_LIMIT)


def embed_of(item: object, given: str | bool | None) -> str:
    """What to embed (``preview``, ``full``, ``none``): as a caller said, else the item's own
    (a ``Generation`` carries its session's ``embed`` setting), else previews."""
    if given is not None:
        return embed_mode(given)
    return embed_mode(getattr(item, "embed", None))


class Gallery(LiveHTML):
    """A responsive grid of results with captions, click to enlarge and download links.

    ``Gallery(generations, columns=None, thumb=192)``: ``columns`` fixes the
    number of columns (else as many ``thumb``-px columns as fit). Displaying it
    shows live status for running items; ``add()`` appends more. Thumbnails are
    embedded; a click shows the original from the local copy beside the notebook
    (``embed="full"`` embeds the originals too, for a self-contained notebook;
    ``embed="none"`` embeds nothing). By default each item follows its session's
    ``embed`` setting.
    """

    def __init__(
        self,
        generations: Iterable[Viewed] = (),
        columns: int | None = None,
        thumb: int = THUMB,
        *,
        embed_limit: int | None = None,
        title: str | None = None,
        newest_first: bool = False,
        embed: str | bool | None = None,
    ) -> None:
        super().__init__()
        self.generations: list[Viewed] = list(generations)
        self.columns = columns
        self.thumb = int(thumb)
        self.embed_limit = embed_limit
        self.title = title
        self.newest_first = newest_first
        self.embed = embed

    def __len__(self) -> int:
        return len(self.generations)

    def add(self, generation: Viewed) -> Gallery:
        self.generations.append(generation)
        if self._handles:
            self._follow()
            self._changed()
        return self

    def jobs(self) -> list[Job]:
        return [job_of(g) for g in self.generations]

    def _ordered(self) -> list[Viewed]:
        return list(reversed(self.generations)) if self.newest_first else list(self.generations)

    def render_html(self) -> str:
        cols = (
            f"repeat({int(self.columns)},minmax(0,1fr))"
            if self.columns
            else f"repeat(auto-fill,minmax({self.thumb}px,1fr))"
        )
        cards = "".join(
            card_html(
                job_of(g),
                thumb=self.thumb,
                embed_limit=embed_limit_of(g, self.embed_limit),
                embed=embed_of(g, self.embed),
            )
            for g in self._ordered()
        )
        done = sum(1 for job in self.jobs() if job.done)
        head = self.title or "hiapi gallery"
        count = f"{done}/{len(self.generations)} done"
        summary = f'<div style="font-size:12px;margin-bottom:4px">{esc(head)} · {count}</div>'
        if not self.generations:
            cards = '<div style="font-size:12px">(nothing yet)</div>'
        return (
            f'<div class="hiapi-gallery {NO_MATH}">{CARD_STYLE}{summary}'
            f'<div class="hiapi-gallery-grid" style="display:grid;grid-template-columns:{cols};'
            f'gap:10px;align-items:start">{cards}</div></div>'
        )

    def render_text(self) -> str:
        lines = [card_text(job_of(g)) for g in self._ordered()]
        return "\n".join(lines) if lines else "(empty gallery)"

    def __repr__(self) -> str:
        return f"<Gallery of {len(self.generations)}>"


class GenerationList(list[Item]):
    """The ``Generation``s of one batch, in order: a plain list that displays as a
    ``Gallery``. ``stop()`` sends nothing more of the batch (its waiting items end).
    Generic in its items (``GenerationList[Generation]``): views sit below ``Generation``."""

    gate: Gate | None = None
    estimate: Estimate | None = None  # what the batch was estimated to cost before it was sent

    def stop(self, reason: str = "not submitted: stopped") -> None:
        if self.gate is not None:
            self.gate.stop(reason)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        return Gallery(self)._repr_mimebundle_()

    def _ipython_display_(self) -> None:
        show_gallery(self)


def show_gallery(generations: Iterable[Viewed], **options: Any) -> Gallery:
    """Display ``generations`` as a live gallery in this cell (text lines outside a notebook)."""
    gallery = Gallery(generations, **options)
    gallery._ipython_display_()
    return gallery


__all__ = ["Gallery", "GenerationList", "show_gallery"]
