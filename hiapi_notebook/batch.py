"""Many requests with at most ``concurrency`` tasks in flight (``generate_many``).

Every request gets its ``Generation`` at once, in order, so a grid can show all
of them from the start: until its turn comes, a generation follows a stand-in
job that says ``waiting``. A feeder coroutine on the background loop submits
the next request as soon as one ends, and the stand-in then mirrors the real
job (status, task, files, error), so views and ``wait()`` see one job from
start to end. A request that cannot be submitted fails alone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from . import _loop
from .catalog import estimate_cost
from .generation import Generation
from .runtime import Job, Request

_MIRRORED = (
    "task_id",
    "status",
    "task",
    "files",
    "error",
    "started",
    "finished",
    "cached",
    "replayed",
    "attached",
    "sandbox",
    "record_id",
    "request",
)
_mirror_lock = threading.Lock()


class Batch:
    """The generations of one ``generate_many`` call and the feeder behind them."""

    def __init__(
        self,
        requests: Sequence[Request],
        variants: Sequence[int],
        *,
        concurrency: int = 8,
        fresh: bool = False,
    ) -> None:
        if len(variants) != len(requests):
            raise ValueError("one variant per request")
        self.requests = list(requests)
        self.variants = list(variants)
        self.concurrency = max(1, int(concurrency))
        self.fresh = fresh
        self.placeholders = [Job(request=r, status="waiting") for r in self.requests]
        self.generations = [Generation(j) for j in self.placeholders]
        self._stopped = False
        self.max_in_flight = 0  # the most tasks seen running at once (for tests and benches)
        self._in_flight = 0

    def start(self) -> Batch:
        _loop.spawn(self._feed())
        return self

    def stop(self, reason: str = "not submitted: stopped") -> None:
        """Submit nothing more; requests still waiting end with ``reason``."""
        self._stopped = True
        self._reason = reason

    async def _feed(self) -> None:
        from .session import get_session

        session = get_session()
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.concurrency)
        index = 0
        try:
            for index, (request, holder, variant) in enumerate(  # noqa: B007 (read after the loop)
                zip(self.requests, self.placeholders, self.variants)
            ):
                await slots.acquire()
                if self._stopped:
                    slots.release()
                    raise _Stopped()
                try:  # the journal is SQLite: keep its I/O off the loop
                    job = await asyncio.to_thread(
                        session.submit,
                        request,
                        variant=variant,
                        fresh=self.fresh,
                        cost=estimate_cost(request.model, dict(request.input)),
                    )
                except Exception as exc:  # this one fails alone; the others go on
                    slots.release()
                    _fail(holder, exc)
                    continue
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)

                def release(_f, loop=loop) -> None:
                    loop.call_soon_threadsafe(self._release, slots)

                job.future.add_done_callback(release)
                job.subscribe(lambda j, holder=holder: _mirror(j, holder))
            index = len(self.requests)
        except _Stopped:
            for holder in self.placeholders[index:]:
                _fail(holder, RuntimeError(getattr(self, "_reason", "not submitted")))
        except BaseException as exc:  # never leave a stand-in waiting forever
            for holder in self.placeholders[index:]:
                if not holder.done:
                    _fail(holder, exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            raise

    def _release(self, slots: asyncio.Semaphore) -> None:
        self._in_flight -= 1
        slots.release()


class _Stopped(Exception):
    pass


def _mirror(source: Job, holder: Job) -> None:
    """Copy the real job's state onto its stand-in; settle the stand-in at the end.

    Like the runtime: listeners hear of the end (``done`` is true) before the
    future resolves, so a waiting cell resumes only after its views are final."""
    with _mirror_lock:
        if getattr(holder, "_batch_ended", False):
            return
        for name in _MIRRORED:
            setattr(holder, name, getattr(source, name))
        ended = source.done
        if ended:
            holder._batch_ended = True
    holder._notify()
    if ended:
        if source.error is not None:
            holder.future.set_exception(source.error)
        else:
            holder.future.set_result(source.task)


def _fail(holder: Job, exc: BaseException) -> None:
    with _mirror_lock:
        if getattr(holder, "_batch_ended", False):
            return
        holder._batch_ended = True
        holder.error = exc
        holder.status = "error"
        holder.finished = time.time()
    holder._notify()
    holder.future.set_exception(exc)


__all__ = ["Batch"]
