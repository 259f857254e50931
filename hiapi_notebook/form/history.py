"""The form's history: a row per submission (live status, then the result as
widget traits, set from the background loop). Its static copy for the saved
notebook is the form's twin (``twin.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..runtime import Job
from ..views.render import CARD_STYLE, card_media, embed_mode, primary_output
from ..views.status import LiveStatus, StatusBar

if TYPE_CHECKING:
    from ..generation import Generation

# --- one submission in the history ---------------------------------------------------------


class HistoryRow(LiveStatus):
    """A submission under the form: live status, then the media, set as widget traits
    from the background loop (no output capture)."""

    def __init__(
        self,
        generation: Generation,
        kind: str,
        *,
        thumb: int,
        embed_limit: int,
        on_change: Callable[[], None],
        on_use: Callable[[Generation], None] | None = None,
    ) -> None:
        import ipywidgets as w

        super().__init__(generation.job, StatusBar())  # the same bar as a cell's
        self.generation = generation
        self.thumb = thumb
        self.embed_limit = embed_limit
        self.on_change = on_change
        self.status.state.add_class("hiapi-history-state")
        width = f"{thumb}px"
        if kind == "video":
            self.media = w.Video(
                format="mp4",
                controls=True,
                autoplay=False,
                loop=True,
                layout=w.Layout(display="none", max_width=width),
            )
        elif kind == "audio":
            self.media = w.Audio(format="wav", controls=True, autoplay=False, layout=w.Layout(display="none"))
        else:
            self.media = w.Image(layout=w.Layout(display="none", max_width=width, height="auto"))
        self.media.add_class("hiapi-history-media")
        self.kind = kind
        self.links = w.HTML()
        # Send this result to the form as an input of the model chosen now (a chain).
        self.use_button = w.Button(
            description="use as input",
            icon="share",
            tooltip="put this result in a media field of the form's model",
            layout=w.Layout(display="none", width="130px"),
        )
        self.use_button.add_class("hiapi-history-use")
        if on_use is not None:
            self.use_button.on_click(lambda _b: on_use(self.generation))
        # laid out as a %%hiapi cell shows a task: title, bar and state, then the result
        self.widget = w.VBox(
            [
                self.status.title,
                w.HBox([self.status.bar, self.status.state], layout=w.Layout(align_items="center")),
                self.media,
                self.links,
                self.use_button,
            ],
            layout=w.Layout(
                border_top="1px solid var(--jp-border-color2, #ddd)", padding="6px 0 2px", margin="4px 0"
            ),
        )
        self.widget.add_class("hiapi-history-row")

    def start(self) -> HistoryRow:
        self.follow()
        return self

    def refresh(self, job: Job | None = None) -> None:
        super().refresh(job)
        self.on_change()  # the running count beside the form's button

    def on_end(self) -> None:
        self._show_result()

    def _show_result(self) -> None:
        job = self.job
        if not job.succeeded:
            return  # the red bar and the message in the state line say it all
        self.use_button.layout.display = ""
        embed = embed_mode(self.generation.embed)
        shown = primary_output(job, self.kind, self.embed_limit)
        # An image goes to the front end at the size it is shown (a 4K original would
        # be megabytes of widget traffic); a clip or a sound whole, up to the embed limit.
        small = None
        if shown is not None and shown.kind == "image":
            small = shown.preview(2 * self.thumb, "width")
        mime, data = ("", None)
        if small is not None:
            mime, data = small.mime, small.data
        elif shown is not None:
            mime, data = shown.mime, shown.data()
        if data is not None:
            self.media.format = mime.split("/", 1)[1] if "/" in mime else mime
            self.media.value = data
            self.media.layout.display = ""
        items, links = card_media(job, thumb=self.thumb, embed_limit=self.embed_limit, embed=embed)
        extra = ""
        if data is None:  # not the kind expected (or too big for widget state): static HTML
            extra = CARD_STYLE + f'<div style="display:flex;gap:6px;flex-wrap:wrap">{items}</div>'
        self.links.value = extra + (
            '<div style="font-size:11px">' + " · ".join(links) + "</div>" if links else ""
        )
