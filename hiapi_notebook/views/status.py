"""Live status for a job: a tqdm-like ipywidgets bar in a notebook, lines of
text elsewhere. At the end the bar is swapped for its static twin, so a saved
notebook keeps a readable status and never says "Error displaying widget"."""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, TextIO

from .. import _loop
from ..models import TERMINAL_STATUSES
from ..runtime import Job
from . import late
from .compat import widget_bundle
from .console import print_lines
from .frontend import use_widgets
from .render import EMBED_LIMIT, media_bundle, status_bundle
from .text import (
    NO_MATH,
    cost_title,
    elapsed_text,
    esc,
    headline,
    progress,
    state_text,
    status_line,
    style_of,
)

if TYPE_CHECKING:
    from IPython.display import DisplayHandle


class StatusBar:
    """The tqdm-like pieces every live view shares: a title, a bar, a state line.
    Views lay them out and decide what happens at the end."""

    def __init__(self, width: str = "240px", height: str = "14px") -> None:
        import ipywidgets as w

        self.title = w.HTML(layout=w.Layout(margin="0"))
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width=width, height=height))
        self.state = w.HTML()

    def draw(self, job: Job) -> None:
        self.title.value = (
            f'<span class="{NO_MATH}" style="font-family:var(--jp-code-font-family,monospace);'
            f'font-size:12px">{esc(headline(job))}</span>'
        )
        self.bar.bar_style = style_of(job)
        self.draw_clock(job)

    def draw_clock(self, job: Job) -> None:
        self.bar.value = progress(job)
        self.state.value = (
            f'<span class="{NO_MATH}" data-status="{esc(job.status)}" title="{esc(cost_title(job))}" '
            'style="font-size:12px">'
            f"{esc(state_text(job))}</span>"
        )


class LiveStatus:
    """A ``StatusBar`` following one job: redrawn on every change (from the loop
    thread) and every second by the ticker; ``on_end`` runs once, at the end."""

    def __init__(self, job: Job, status: StatusBar) -> None:
        self.job = job
        self.status = status
        self._final = False
        self._lock = threading.Lock()

    def follow(self) -> None:
        self.job.subscribe(self.refresh)
        _Ticker.track(self)

    def refresh(self, job: Job | None = None) -> None:
        with self._lock:
            if self._final:
                return
            self.status.draw(self.job)
            if self.job.done:
                self._final = True
                self.on_end()

    def tick(self) -> None:
        """Move the clock of a running bar; the end is left to the job's own update."""
        with self._lock:
            if self._final or self.job.done:
                return
            self.status.draw_clock(self.job)

    def on_end(self) -> None:
        """What the view does once the job has ended (called under its lock)."""


class TaskView(LiveStatus):
    """A status bar and a media slot, both display handles made in the cell."""

    def __init__(self, job: Job, *, embed_limit: int = EMBED_LIMIT, embed: str = "preview") -> None:
        import ipywidgets as w

        super().__init__(job, StatusBar())
        self.embed_limit = embed_limit
        self.embed = embed
        self.widget = w.VBox(
            [self.status.title, w.HBox([self.status.bar, self.status.state])], layout=w.Layout(margin="2px 0")
        )
        self.widget.add_class("hiapi-task")
        self.status_handle: DisplayHandle | None = None
        self.media_handle: DisplayHandle | None = None

    def display(self) -> TaskView:
        from IPython.display import display

        # The widget, with a readable text/plain fallback instead of "VBox(children=…)".
        bundle = {**widget_bundle(self.widget), "text/plain": status_line(self.job)}
        self.status_handle = display(bundle, raw=True, display_id=True)
        # An empty slot now, in this cell, so the media land here later even
        # when the cell has long returned (--no-wait).
        self.media_handle = display({"text/plain": ""}, raw=True, display_id=True)
        late.follow(lambda: [self.job], self.send_final)
        self.follow()
        return self

    def on_end(self) -> None:
        """Swap the widget for its static twin and fill the media slot."""
        self.send_final()
        close_all(self.widget)

    def send_final(self) -> None:
        """The static twin and the media, into this view's two display slots."""
        bundle = media_bundle(self.job, embed_limit=self.embed_limit, embed=self.embed)
        if bundle is not None and self.media_handle is not None:
            data, metadata = bundle
            self.media_handle.update(data, metadata=metadata, raw=True)
        if self.status_handle is not None:
            self.status_handle.update(status_bundle(self.job), raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return status_bundle(self.job)


def close_all(widget: Any) -> None:
    """Close a widget no view needs any more, with every widget in it and their layout and
    style models: the kernel and the front end keep each open model for the notebook's life
    (a task's bar is 13 of them). The parent goes first, so no view is left showing a child."""
    import ipywidgets as w

    children = list(getattr(widget, "children", ()))
    parts = [getattr(widget, name, None) for name in ("layout", "style")]
    widget.close()
    for child in children:
        close_all(child)
    for part in parts:
        if isinstance(part, w.Widget):
            part.close()


class TextTaskView:
    """Status as text, for terminal IPython and plain scripts: one short line per
    change of status. The first line names the job in full, the line where its
    task id first appears ties the id to the model, the rest name only the id;
    the last adds how it ended and the files (or URLs). A notice (Ctrl-C: you stopped
    waiting, it runs on) is a line of its own, as the notebook's bar says it. In terminal
    IPython the lines go above the prompt, leaving what the user is typing intact."""

    def __init__(self, job: Job, stream: TextIO | None = None) -> None:
        self.job = job
        self.stream = stream  # None: the terminal (above the prompt), else this file
        self._last_status: str | None = None
        self._named_id = False
        self._ended = False
        self._last_notice: str | None = None
        self._lock = threading.Lock()

    def display(self) -> TextTaskView:
        self.job.subscribe(self.refresh)
        return self

    def refresh(self, job: Job | None = None) -> None:
        # Listeners run on the loop thread, the first one in the cell: the lock keeps the
        # lines in order (print_lines only writes or queues, it never waits for a prompt).
        with self._lock:
            lines = self._lines()
            if not lines:
                return
            if self.stream is None:
                print_lines(lines)
            else:
                self.stream.write("".join(f"{line}\n" for line in lines))
                self.stream.flush()

    def _lines(self) -> list[str]:
        job = self.job
        lines: list[str] = []
        if job.status in TERMINAL_STATUSES and not job.done:
            return lines  # the end is told once it is recorded, files and all
        if job.status != self._last_status:
            first = self._last_status is None
            self._last_status = job.status
            model = job.request.model or "task"
            if first:
                name = headline(job)
            elif job.task_id and not self._named_id:
                name = f"{model} · {job.task_id}"
            else:
                name = job.task_id or model
            self._named_id = self._named_id or bool(job.task_id)
            state = state_text(job) if first or job.done else f"{job.status} · {elapsed_text(job.elapsed)}"
            lines.append(f"[hiapi] {name} — {state}")
        if job.notice and job.notice != self._last_notice and not job.done:
            self._last_notice = job.notice
            if self.stream is None and _at_a_terminal():
                lines.append("")  # ends the line the terminal echoed Ctrl-C on ("^C")
            lines.append(
                f"[hiapi] {job.task_id or job.request.model or 'task'} — {job.status} · {job.notice}"
            )
        if job.done and not self._ended:
            self._ended = True
            lines += [f"[hiapi]   {f.type}: {f.path or f.url}" for f in job.files]
        return lines


def _at_a_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False


def show_job(job: Job, *, embed_limit: int = EMBED_LIMIT, embed: str = "preview") -> TaskView | TextTaskView:
    """Display a live view of ``job`` in the current cell; returns the view."""
    if use_widgets():
        return TaskView(job, embed_limit=embed_limit, embed=embed).display()
    return TextTaskView(job).display()


class _Ticker:
    """One coroutine on the background loop moves every live bar's clock; it
    stops when no bar is live, so idle kernels do no work."""

    _views: weakref.WeakSet[LiveStatus] = weakref.WeakSet()
    _running = False
    _lock = threading.Lock()

    @classmethod
    def track(cls, view: LiveStatus) -> None:
        with cls._lock:
            cls._views.add(view)
            if cls._running:
                return
            cls._running = True
        _loop.spawn(cls._run())

    @classmethod
    async def _run(cls) -> None:
        while True:
            await asyncio.sleep(1.0)
            with cls._lock:
                live = [v for v in cls._views if not v._final]
                if not live:
                    cls._running = False
                    return
            for view in live:
                view.tick()
