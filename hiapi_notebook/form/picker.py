"""The picker of earlier results in a media field: a grid that scrolls as one, one card per
result, this notebook's results first and the folder's after them, marked as such, and a
filter box once there are more than a screenful.

A whole card is the click target (its "use" button is stretched over it by CSS), so a
click picks the card it lands on; each card has a fixed width in a grid, so no card
squashes or overlaps its neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import inputs
from ..catalog import MediaField
from ..generation import Generation
from ..inputs import MediaInputError
from ..session import get_session
from ..views.text import esc, excerpt
from .previews import close_all, preview

if TYPE_CHECKING:
    from ..runtime import Job

LIMIT = 60  # cards at most: the newest; the filter narrows them down
SCREENFUL = 12  # more cards than two rows of the grid: a filter box shows
FILTER_HINT = "filter: words of the prompt, a model, a task id"
CARD_PX = 112
THUMB_PX = 96

# The card's "use" button covers the whole card (a stretched link): a click anywhere on
# the card is a click on its own button. Without the style, the button still works.
STYLE = (
    "<style>"
    ".hiapi-media-pick-item{position:relative;cursor:pointer;border:1px solid transparent;"
    "border-radius:4px;padding:2px}"
    ".hiapi-media-pick-item:hover{border-color:var(--jp-brand-color1,#1976d2)}"
    ".hiapi-media-pick-item .hiapi-media-pick-use{position:static;width:100%}"
    ".hiapi-media-pick-item .hiapi-media-pick-use::after{content:'';position:absolute;inset:0}"
    ".hiapi-pick-caption{font-size:11px;line-height:1.3;overflow:hidden;display:-webkit-box;"
    "-webkit-line-clamp:2;-webkit-box-orient:vertical;word-break:break-word}"
    ".hiapi-pick-folder{font-size:10px;opacity:.75}"
    "</style>"
)


@dataclass(frozen=True)
class Earlier:
    """A result the picker offers; ``mine``: made by this notebook, else only found in
    the folder's journal (another notebook, or this one before a restart)."""

    generation: Generation
    mine: bool

    @property
    def words(self) -> str:
        """What the filter box searches: prompt, model and task id."""
        g = self.generation
        return " ".join((g.prompt or "", g.model or "", g.task_id or "")).lower()


def earlier_results(field: MediaField, limit: int = LIMIT) -> list[Earlier]:
    """The results ``field`` can take, this notebook's first, then the folder's: this
    kernel's own jobs and the journal's rows this notebook made, then the journal's other
    rows (other notebooks, or made where no notebook was named)."""
    session = get_session()
    own = [job for job in reversed(session.jobs) if job.succeeded]
    seen = {job.task_id for job in own if job.task_id}
    if session.notebook is not None:  # the journal knows which rows are this notebook's
        own += session.recorded(limit, skip=seen)
        seen |= {job.task_id for job in own if job.task_id}
    folder = session.recorded(limit, skip=seen, notebook=None)
    return ordered(field, own, folder, limit)


def ordered(
    field: MediaField, own: Iterable[Job], folder: Iterable[Job], limit: int = LIMIT
) -> list[Earlier]:
    """One entry per result (a cached re-run is the same result: same task id), newest
    first within each group, ``own`` before ``folder``; only results ``field`` takes."""
    seen: set[object] = set()
    found: list[Earlier] = []
    for mine, jobs in ((True, own), (False, folder)):
        for job in jobs:
            key = job.task_id or id(job)
            if key in seen:
                continue
            seen.add(key)
            generation = Generation(job)
            try:
                inputs.pick_output(field, generation)
            except MediaInputError:
                continue
            found.append(Earlier(generation, mine))
            if len(found) >= limit:
                return found
    return found


class Picker:
    """The grid of earlier results under a media field. ``open()`` (re)fills it,
    ``close()`` hides it; ``on_pick(generation)`` runs for the card clicked."""

    def __init__(self, field: MediaField, name: str, on_pick: Callable[[Generation], None]) -> None:
        import ipywidgets as w

        self.field = field
        self.on_pick = on_pick
        self.entries: list[Earlier] = []
        self.cards: list[Any] = []
        self._groups: list[tuple[Any, Any, list[Any]]] = []  # heading, grid, cards
        # headings and a grid per group, in one box that scrolls as one (cards never do)
        self.grid = w.VBox(layout=w.Layout(max_height="330px", overflow="auto", width="100%"))
        self.grid.add_class("hiapi-media-picker")
        self.grid.add_class(f"hiapi-media-picker-{name}")
        self.filter = w.Text(placeholder=FILTER_HINT, continuous_update=True, layout=w.Layout(width="340px"))
        self.filter.add_class("hiapi-media-pick-filter")
        self.filter.add_class(f"hiapi-media-pick-filter-{name}")
        self.filter.observe(self._on_filter, names="value")
        self._summary = ""
        self.summary = w.HTML()
        self.summary.add_class("hiapi-media-pick-summary")
        self.summary.add_class(f"hiapi-media-pick-summary-{name}")
        # the filter is in the page only beyond a screenful (a hidden input is no input)
        self.head = w.HBox([self.summary], layout=w.Layout(align_items="center"))
        self.box = w.VBox(
            [self.head, self.grid],
            layout=w.Layout(display="none", margin="0 0 0 158px", max_width="760px"),
        )

    def open(self) -> None:
        self.entries = earlier_results(self.field)
        children: list[Any] = []
        self.cards = []
        self._groups = []
        for mine in (True, False):
            group = [self._card(e) for e in self.entries if e.mine is mine]
            if group:
                heading, grid = self._heading(mine, len(group)), self._cards_grid(group)
                children += [heading, grid]
                self._groups.append((heading, grid, group))
                self.cards += group
        if not self.entries:
            children = [self._note("no earlier results of this kind yet")]
        close_all(self.grid.children)
        self.grid.children = tuple(children)
        many = len(self.entries) > SCREENFUL
        self.filter.value = ""
        self.head.children = (self.filter, self.summary) if many else (self.summary,)
        more = " (the newest; filter to find one)" if len(self.entries) >= LIMIT else ""
        self._summary = (
            f'<span style="font-size:12px">{len(self.entries)} earlier results{more}: '
            "click one to use it</span>"
            if self.entries
            else ""
        )
        self.summary.value = STYLE + self._summary
        self.box.layout.display = ""

    def close(self) -> None:
        self.box.layout.display = "none"

    def _cards_grid(self, cards: list[Any]) -> Any:
        import ipywidgets as w

        return w.GridBox(
            cards,
            layout=w.Layout(
                grid_template_columns=f"repeat(auto-fill, {CARD_PX}px)",
                grid_gap="6px",
                align_items="flex-start",
                overflow="visible",
                flex="none",
            ),
        )

    def _heading(self, mine: bool, count: int) -> Any:
        text = (
            f"this notebook ({count})"
            if mine
            else f"from this folder's journal ({count}): other notebooks, earlier sessions"
        )
        return self._note(text, "hiapi-media-pick-heading")

    def _note(self, text: str, cls: str = "hiapi-media-pick-note") -> Any:
        import ipywidgets as w

        note = w.HTML(f'<span style="font-size:12px;font-weight:600">{esc(text)}</span>')
        note.add_class(cls)
        return note

    def _card(self, entry: Earlier) -> Any:
        import ipywidgets as w

        g = entry.generation
        output = inputs.pick_output(self.field, g)
        where = "this notebook" if entry.mine else "this folder's journal (not this notebook)"
        title = " · ".join(x for x in (g.prompt, g.model, g.task_id, where) if x)
        button = w.Button(description="use", tooltip=g.task_id or "", layout=w.Layout(width="100%"))
        button.add_class("hiapi-media-pick-use")
        button.on_click(lambda _b, picked=g: self.on_pick(picked))
        mark = "" if entry.mine else '<div class="hiapi-pick-folder">folder</div>'
        text = esc(excerpt(g.prompt or g.model, 60))
        caption = w.HTML(f'<div class="hiapi-pick-caption" title="{esc(title)}">{text}</div>{mark}')
        card = w.VBox(
            [preview(output, THUMB_PX), button, caption],
            layout=w.Layout(width=f"{CARD_PX}px", overflow="visible", align_items="center"),
        )
        card.add_class("hiapi-media-pick-item")
        card.add_class("hiapi-media-pick-mine" if entry.mine else "hiapi-media-pick-folder")
        return card

    def _on_filter(self, change: Any) -> None:
        words = str(change["new"]).lower().split()
        shown = 0
        for entry, card in zip(self.entries, self.cards, strict=False):
            match = all(word in entry.words for word in words)
            card.layout.display = "" if match else "none"
            shown += match
        for heading, grid, cards in self._groups:  # a group with no match: not even its heading
            heading.layout.display = grid.layout.display = (
                "" if any(c.layout.display != "none" for c in cards) else "none"
            )
        matched = f'<span style="font-size:12px">{shown} of {len(self.entries)} match</span>'
        self.summary.value = STYLE + (matched if words else self._summary)
