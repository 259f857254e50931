"""One poller per client: it follows every task in flight with as few requests as
it can.

Each cycle reads the list endpoint (newest first, 100 a page), which reports
every task of the key in one request, and updates every followed task it finds
there. It pages on only while some task that is due is still unseen and the
page has not yet reached back past the oldest of them, and never further than
a few pages. A task the list no longer shows (other programs on the same key
pushed it out of reach, or the server's list leaves it out) is asked for by
its own detail request from then on. ``mode="detail"`` asks for every task by
detail, for servers whose list misbehaves.

When to ask comes from ``timing``: a cycle happens when some task is due, and
one list request then speaks for all of them. The poller only records what it
sees; each waiter (``Follow.changes``) reads the news on its own coroutine, so
updates stay tied to whoever waits (a notebook cell), and a waiter hears every
status the poller saw, in order. The HTTP side is injected (``fetch_page``,
``fetch_task``), so the poller knows nothing of httpx.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .errors import (
    APIConnectionError,
    AuthenticationError,
    HiAPIError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)
from .models import Task, TaskPage
from .timing import TimingModel, crowd_delay, observed_duration

log = logging.getLogger("hiapi_notebook")

PAGE_SIZE = 100  # the most one list request reports
MAX_PAGES = 10  # the furthest a cycle pages back
DETAIL_CONCURRENCY = 8  # detail requests of one cycle in flight at once
CREATED_SLACK = 2.0  # seconds: ``created`` is whole seconds, and clocks differ a little
MODES = ("list", "detail")
TRANSIENT = (APIConnectionError, ServerError, ServiceUnavailableError, RateLimitError)
REFUSALS = (AuthenticationError, PaymentRequiredError, PermissionDeniedError)

FetchPage = Callable[[int, int], Awaitable[TaskPage]]
FetchTask = Callable[[str], Awaitable[Task]]


@dataclass(eq=False)
class Follow:
    """One task in flight: what the poller knows of it, shared by its waiters."""

    task_id: str
    model: str | None = None
    route: str | None = None
    born: float = 0.0  # Unix time of the create (or the best guess)
    born_known: bool = False
    changes: list[Task] = field(default_factory=list)  # each new status seen, in order
    error: BaseException | None = None
    next_at: float = 0.0  # Unix time of the next ask
    asked: float = 0.0  # Unix time of the last answer about it
    last_running: float = 0.0  # the last answer that found it not ended
    off_list: bool = False  # the list no longer shows it: ask by detail
    outage: int = 0  # failed asks in a row
    waiters: int = 0
    news: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def status(self) -> str | None:
        return self.changes[-1].status if self.changes else None

    @property
    def ended(self) -> bool:
        return self.error is not None or bool(self.changes and self.changes[-1].is_terminal)

    @property
    def created(self) -> float:
        """The create's time as the server's ``created`` tells it, else as seen here."""
        first = self.changes[0].created_at if self.changes else None
        return float(first) if first else self.born


class Poller:
    """Follows every task of one client on one event loop (see the module's note)."""

    def __init__(
        self,
        fetch_page: FetchPage,
        fetch_task: FetchTask,
        timing: TimingModel,
        *,
        mode: str = "list",
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        clock: Callable[[], float] = time.time,
        on_plan: Callable[[float | None], None] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"poll_mode takes list or detail, not {mode!r}")
        self.fetch_page = fetch_page
        self.fetch_task = fetch_task
        self.timing = timing
        self.mode = mode
        self.page_size = page_size
        self.max_pages = max_pages
        self.clock = clock
        self.on_plan = on_plan  # hears when the next ask is due (Unix time), say the budget
        self.follows: dict[str, Follow] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._outage = 0
        self._updated: list[Follow] = []  # answered about in this cycle

    # --- waiters ---

    def follow(
        self, task_id: str, *, model: str | None = None, route: str | None = None, since: float | None = None
    ) -> Follow:
        """Start (or join) following ``task_id``; ``since`` is its create's Unix time
        when known. Pair every call with ``leave``."""
        entry = self.follows.get(task_id)
        now = self.clock()
        if entry is None:
            entry = Follow(task_id, model=model, route=route, born=since or now, born_known=since is not None)
            # A task created here is asked about when its model says so; any other at once.
            entry.next_at = now if since is None else since + self._delay(entry, 0.0)
            entry.last_running = entry.born
            self.follows[task_id] = entry
            self._wake.set()
        else:
            entry.model = entry.model or model
            entry.route = entry.route or route
        entry.waiters += 1
        self._ensure_running()
        return entry

    def leave(self, entry: Follow) -> None:
        """A waiter is done; with none left, the task is no longer asked about."""
        entry.waiters -= 1
        if entry.waiters <= 0 and self.follows.get(entry.task_id) is entry:
            del self.follows[entry.task_id]

    # --- the loop ---

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            # A context of its own: the poller belongs to no cell; its waiters do.
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        while self.follows:
            now = self.clock()
            wake = min(e.next_at for e in self.follows.values())
            if self.on_plan is not None:
                self.on_plan(wake)
            if wake > now:
                self._wake.clear()
                try:
                    async with asyncio.timeout(wake - now):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            try:
                await self.cycle()
            except Exception:  # a bug here must not leave every waiter hanging
                log.exception("hiapi-notebook poller cycle failed")
                for entry in list(self.follows.values()):
                    entry.next_at = self.clock() + 1.0
        if self.on_plan is not None:
            self.on_plan(None)

    async def cycle(self) -> None:
        """Ask once about every task that is due (and learn about others for free)."""
        now = self.clock()
        slack = self.timing.pace.dense / 2  # due a moment from now: ask now, with the rest
        due = [e for e in self.follows.values() if e.next_at <= now + slack and not e.ended]
        fresh: set[str] = set()
        if self.mode == "list":
            listed = [e for e in due if not e.off_list]
            if listed:
                fresh = await self._read_list(listed)
        by_detail = [e for e in due if e.task_id not in fresh and not e.ended]
        if by_detail:
            await self._read_details(by_detail)
        self._plan()

    async def _read_list(self, due: list[Follow]) -> set[str]:
        """Page through the list until every due task was seen or cannot be; returns
        the ids seen. Tasks it cannot reach are marked ``off_list``."""
        seen: set[str] = set()
        listed = sum(1 for e in self.follows.values() if not e.off_list and not e.ended)
        limit = min(self.max_pages, 1 + math.ceil(listed / self.page_size))
        page_no = 0
        while True:
            page_no += 1
            try:
                page = await self.fetch_page(page_no, self.page_size)
            except TRANSIENT as exc:
                self._outage += 1
                log.debug("list request failed (%s); asking again later", exc)
                self._postpone([e for e in due if e.task_id not in seen], self._outage)
                return seen | {e.task_id for e in due}
            except REFUSALS as exc:
                for entry in due:
                    self._fail(entry, exc)
                return seen | {e.task_id for e in due}
            except HiAPIError as exc:  # the list is refused (404, 400...): detail from now on
                log.debug("list request refused (%s); asking by detail", exc)
                for entry in due:
                    entry.off_list = True
                return seen
            self._outage = 0
            now = self.clock()
            for task in page.items:
                follow = self.follows.get(task.task_id)
                if follow is not None and not follow.ended:
                    if task.succeeded and not task.output:
                        continue  # a list without outputs: the detail request will tell
                    follow.off_list = False
                    self._record(follow, task, now)
                    seen.add(task.task_id)
            unseen = [e for e in due if e.task_id not in seen and not e.ended]
            if not unseen:
                return seen
            if self._list_ends(page, page_no) or page_no >= limit or self._passed(page, unseen):
                for entry in unseen:
                    entry.off_list = True
                return seen

    def _list_ends(self, page: TaskPage, page_no: int) -> bool:
        return len(page.items) < self.page_size or bool(page.total and page_no * self.page_size >= page.total)

    @staticmethod
    def _passed(page: TaskPage, unseen: list[Follow]) -> bool:
        """The page already reaches back before the oldest unseen task: the list
        does not show it (newest first means it would have come by now)."""
        oldest = page.items[-1].created_at if page.items else None
        return oldest is not None and oldest < min(e.created for e in unseen) - CREATED_SLACK

    async def _read_details(self, entries: list[Follow]) -> None:
        gate = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def one(entry: Follow) -> None:
            async with gate:
                if entry.ended or self.follows.get(entry.task_id) is not entry:
                    return
                try:
                    task = await self.fetch_task(entry.task_id)
                except TRANSIENT as exc:
                    entry.outage += 1
                    log.debug("poll of %s failed (%s); asking again later", entry.task_id, exc)
                    self._postpone([entry], entry.outage)
                    return
                except HiAPIError as exc:  # 404 (not this key's task), 401, 403...
                    self._fail(entry, exc)
                    return
                entry.outage = 0
                self._record(entry, task, self.clock())

        await asyncio.gather(*(one(e) for e in entries))

    # --- what was seen ---

    def _record(self, entry: Follow, task: Task, now: float) -> None:
        entry.asked = now
        self._updated.append(entry)
        if not entry.born_known and task.created_at:
            entry.born = task.created_at + 0.5  # whole seconds: the middle of that second
            entry.born_known = True
        entry.model = entry.model or task.model
        entry.route = entry.route or task.route
        if task.is_terminal:
            if task.succeeded:
                seconds = observed_duration(entry.born, entry.last_running, now, task.completed_at)
                if seconds is not None:
                    self.timing.learn(entry.model, entry.route, seconds)
        else:
            entry.last_running = now
        if not entry.changes or entry.changes[-1].status != task.status or task.is_terminal:
            entry.changes.append(task)
            self._tell(entry)

    def _fail(self, entry: Follow, error: BaseException) -> None:
        entry.error = error
        self._tell(entry)

    def _tell(self, entry: Follow) -> None:
        entry.news.set()
        entry.news = asyncio.Event()
        if entry.ended and self.follows.get(entry.task_id) is entry:
            del self.follows[entry.task_id]  # waiters still hold it and read its end

    def _postpone(self, entries: list[Follow], outage: int) -> None:
        """A failed ask: the task runs on regardless; ask again after a backoff."""
        wait = min(self.timing.pace.max_interval, 0.5 * 2 ** min(outage, 5)) * (0.5 + random.random() / 2)
        for entry in entries:
            entry.next_at = self.clock() + wait

    # --- when next ---

    def _delay(self, entry: Follow, age: float) -> float:
        return self.timing.delay(entry.model, entry.route, age, entry.status)

    def _plan(self) -> None:
        """Each task answered about in this cycle gets its next ask from its own
        schedule; in list mode, also the gap that the ending rate of all listed tasks
        together asks for (one request serves them all)."""
        updated, self._updated = self._updated, []
        crowd_rate = 0.0
        for entry in updated:
            if entry.ended:
                continue
            age = entry.asked - entry.born
            entry.next_at = entry.asked + self._delay(entry, age)
            if self.mode == "list" and not entry.off_list:
                crowd_rate += self.timing.rate(entry.model, entry.route, age)
        gap = crowd_delay(crowd_rate, self.timing.pace) if self.mode == "list" else None
        if gap is not None:
            for entry in updated:
                if not entry.ended and not entry.off_list:
                    entry.next_at = min(entry.next_at, entry.asked + gap)


async def watch(
    poller: Poller, entry: Follow, *, timeout: float | None, on_change: Callable[[Task], Awaitable[object]]
) -> Task:
    """Read ``entry``'s news until it ends; ``on_change(task)`` hears each status in
    order (awaited). Returns the last task; raises the entry's error, or
    ``TimeoutError`` once ``timeout`` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    read = 0
    try:
        while True:
            while read < len(entry.changes):
                task = entry.changes[read]
                read += 1
                await on_change(task)
                if task.is_terminal:
                    return task
            if entry.error is not None:
                raise entry.error
            news = entry.news
            if deadline is None:
                await news.wait()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                async with asyncio.timeout(left):
                    await news.wait()
            except TimeoutError:
                if read >= len(entry.changes) and entry.error is None:
                    raise
    finally:
        poller.leave(entry)


__all__ = ["Follow", "MODES", "Poller", "watch"]
