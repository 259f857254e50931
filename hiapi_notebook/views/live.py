"""``LiveHTML``: static HTML made in the cell and kept live through a display handle.

Galleries and grids are not widgets: each is one HTML output, re-sent as its jobs
change, so a saved notebook keeps exactly what was last shown, with no widget
state to lose, and dozens of items stay cheap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Container
from typing import TYPE_CHECKING, Self

from .. import _loop
from ..runtime import Job
from . import late
from .frontend import use_widgets

if TYPE_CHECKING:
    from IPython.display import DisplayHandle


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
        self._handles: list[DisplayHandle] = []
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
    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        return {"text/html": self.render_html(), "text/plain": self.render_text()}

    def _ipython_display_(self) -> None:
        if use_widgets():
            self.display()
        else:  # terminal IPython, scripts: what it is now, once
            from IPython import get_ipython

            if get_ipython() is None:
                print(self.render_text())
                return
            from IPython.display import display

            display(self._repr_mimebundle_(), raw=True)

    def display(self) -> Self:
        """Show it in this cell; it keeps filling in after the cell has returned."""
        from IPython.display import display

        with self._lock:
            version = self._version
        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None:
            with self._lock:
                self._handles.append(handle)
                self._pushed = max(self._pushed, version)
        late.follow(self.jobs, self._push)
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
                # off the loop (thumbnails must never stall polling), on the one worker thread
                await asyncio.get_running_loop().run_in_executor(_loop.worker(), self._push)
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

    def wait(self, timeout: float | None = None) -> Self:
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
