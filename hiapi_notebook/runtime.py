"""The one background runtime: every task of the process is a coroutine on the
shared background loop (``_loop``), so there is no thread per task, one
connection pool, and a rate-limit pause seen by one poll slows them all.

A ``Job`` is the live state of one submission. Whoever keeps records (the
journal) plugs in through the ``Store`` hooks; whoever shows things (views)
subscribes to a job. The runtime itself knows neither files of its own nor
widgets. A ``Gate`` gives a batch its concurrency: jobs behind it wait for a
slot before their create is sent.

Each job waits on its own coroutine, started from the cell that made it, so
what it tells its views belongs to that cell; the client's one poller does the
asking for all of them. Store hooks run on one writer thread for the whole
process, the calls made in the same moment (one poll's news) as one batch.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from . import _loop
from .client import AsyncHiAPI
from .errors import (
    TOP_UP,
    HiAPIError,
    NotSubmitted,
    OutputExpiredError,
    OutputRefusedError,
    PaymentRequiredError,
    PollTimeout,
    TaskFailed,
)
from .models import CreatedTask, Output, Request, Task

log = logging.getLogger("hiapi_notebook")

MEMORY_OUTPUT_LIMIT = 64 * 2**20  # without local copies, outputs are held in memory up to this


@dataclass
class OutputFile:
    """One output as the notebook holds it: the URL, and a local copy or bytes."""

    index: int
    output: Output
    path: Path | None = None
    data: bytes | None = None
    content_type: str | None = None
    sha256: str | None = None
    size: int | None = None
    problem: str | None = None  # why there is no local copy, if there is none
    refused: bool = False  # not kept on purpose (not media, too big): never fetched again

    @property
    def url(self) -> str:
        return self.output.url

    @property
    def type(self) -> str:
        return self.output.type

    def read(self) -> bytes | None:
        if self.data is not None:
            return self.data
        if self.path is not None and self.path.exists():
            return self.path.read_bytes()
        return None

    def worth_fetching(self, now: float | None = None) -> bool:
        """No local copy, yet one can still be made: the URL lives and nothing refused it."""
        if self.data is not None or (self.path is not None and self.path.exists()):
            return False
        expire_at = self.output.expire_at
        alive = expire_at is None or expire_at > (time.time() if now is None else now)
        return alive and not self.refused and self.problem != "expired" and bool(self.url)


class Store(Protocol):
    """Hooks through which a record keeper follows a job. ``created``, ``status``
    and ``finished`` run on the writer thread (``output_path`` on the loop), each
    awaited before the job moves on; a store with a ``batch()`` context manager
    gets each batch of calls inside it (say one transaction)."""

    def created(self, job: Job, created: CreatedTask) -> None: ...
    def status(self, job: Job, task: Task) -> None: ...
    def finished(self, job: Job) -> None: ...
    def output_path(self, job: Job, index: int, output: Output) -> Path | None: ...


Listener = Callable[["Job"], Any]
_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    """The live state of one task, shared by the loop thread and the cell."""

    request: Request
    task_id: str | None = None
    status: str = "submitting"
    task: Task | None = None
    files: list[OutputFile] = field(default_factory=list)
    error: BaseException | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cached: bool = False  # the result came from the journal, nothing was sent
    replayed: bool = False  # the server replayed an earlier create (same key)
    attached: bool = False  # re-attached to a task submitted earlier
    sandbox: bool = False  # the server is the local sandbox: results are synthetic
    record_id: int | None = None  # the journal row, when there is one
    server: str | None = None  # the API base URL its task lives on
    submitted: float | None = None  # Unix time the create was answered (here)
    gate: Gate | None = field(default=None, repr=False)  # the batch's slots, if any
    looked_up: bool = False  # shown from the journal by task id (%hiapi status), not a re-run
    notice: str | None = None  # a word beside the status while running (say, a wait interrupted)
    local_id: int = field(default_factory=lambda: next(_ids))
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future, repr=False)
    _listeners: list[Listener] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done(self) -> bool:
        """Ended and recorded. Set before listeners hear of the end and before
        ``future`` resolves, so a waiting cell resumes only after its views
        have drawn the result (and those updates belong to that cell)."""
        return self.finished is not None

    @property
    def succeeded(self) -> bool:
        return self.done and self.task is not None and self.task.succeeded

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(job)`` now and on every change (from the loop thread)."""
        with self._lock:
            self._listeners.append(listener)
        _safe_call(listener, self)

    def note(self, text: str | None) -> None:
        """Say ``text`` beside the status until the job ends; its views redraw now."""
        self.notice = text
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            _safe_call(listener, self)

    def wait(self, timeout: float | None = None) -> Task:
        """Block until the job ends (interruptible); raises its error."""
        return _loop.wait_future(self.future, timeout)

    def __await__(self) -> Generator[Any, None, Task]:
        # shield: cancelling one awaiter (wait_for, an interrupted await) must not
        # cancel the shared future that every other waiter and view relies on.
        return asyncio.shield(asyncio.wrap_future(self.future)).__await__()


def _safe_call(listener: Listener, job: Job) -> None:
    try:
        listener(job)
    except Exception:  # a broken view must never stop polling
        log.exception("hiapi-notebook listener failed")


class Gate:
    """At most ``limit`` jobs past this point at once: the concurrency of one batch.

    A job behind a gate shows ``waiting`` until a slot is free, takes it before
    its create is sent and frees it when it ends, so slots pass on in order of
    submission. ``stop`` ends every job still waiting (nothing of theirs was
    sent); jobs already past the gate run on. Slots are counted on the loop
    thread only; ``stop`` may come from any thread (a cell's interrupt).
    """

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"a gate needs a whole number of slots, at least 1, not {limit!r}")
        self.limit = limit
        self.in_flight = 0
        self.max_in_flight = 0  # the most jobs seen past the gate at once
        self.stopped: str | None = None
        self._waiters: collections.deque[asyncio.Future] = collections.deque()

    async def enter(self) -> None:
        if self.stopped is not None:
            raise NotSubmitted(self.stopped)
        if self.in_flight < self.limit and not self._waiters:
            self._take()
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        await turn  # set by ``leave`` (a slot handed over) or ``stop`` (NotSubmitted)
        if self.stopped is not None:  # stopped after the slot was handed over, before it was used
            self.in_flight -= 1
            raise NotSubmitted(self.stopped)

    def leave(self) -> None:
        self.in_flight -= 1
        if self.stopped is not None:  # nothing more is sent: the waiters end instead
            self._end_waiters()
            return
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                self._take()
                turn.set_result(None)
                return

    def stop(self, reason: str) -> None:
        """Send nothing more: jobs still waiting end as ``stopped`` with ``reason``."""
        self.stopped = reason
        _loop.background_loop().call_soon_threadsafe(self._end_waiters)

    def _take(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _end_waiters(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_exception(NotSubmitted(self.stopped or "not submitted: stopped"))


class Runtime:
    """Runs jobs on the background loop with one client and one optional store."""

    def __init__(
        self, client: AsyncHiAPI, store: Store | None = None, *, max_output_bytes: int = 2 * 2**30
    ) -> None:
        self.client = client
        self.store = store
        self.max_output_bytes = max_output_bytes
        self._jobs: set[Job] = set()
        self.writer = StoreWriter(store) if store is not None else None

    @property
    def active(self) -> list[Job]:
        return [j for j in self._jobs if not j.done]

    def submit(self, request: Request, *, record_id: int | None = None, gate: Gate | None = None) -> Job:
        """Create the task and follow it to the end, in the background (after a
        slot of ``gate``, when given, is free)."""
        job = Job(request=request, record_id=record_id, gate=gate)
        if gate is not None:
            job.status = "waiting"
        return self._launch(job, self._create_and_follow(job))

    def attach(
        self,
        task_id: str,
        request: Request | None = None,
        *,
        record_id: int | None = None,
        gate: Gate | None = None,
    ) -> Job:
        """Follow a task that already exists (a re-run after a restart, ``%hiapi status``)."""
        job = Job(
            request=request or Request(model="", input={}),
            task_id=task_id,
            status="waiting" if gate is not None else "attaching",
            attached=True,
            record_id=record_id,
            gate=gate,
        )
        return self._launch(job, self._follow(job))

    def refused(self, request: Request, error: BaseException) -> Job:
        """A job that ended before anything was sent (say its journal row could not
        be claimed): it shows ``error`` in its place among the others."""
        job = Job(request=request, status="error", error=error, finished=time.time())
        job.future.set_exception(error)
        return job

    def restore(
        self,
        request: Request,
        task: Task,
        files: list[OutputFile],
        *,
        record_id: int | None = None,
        started: float | None = None,
        finished: float | None = None,
    ) -> Job:
        """A finished job rebuilt from records: no request is sent to the API.

        A success whose local copies are missing (a download failed, a file was
        deleted) fetches them again while the URLs live, in the background, and is
        done once they are kept: a result is never served without its copy when
        one can still be made."""
        job = Job(
            request=request,
            task_id=task.task_id,
            status="fail" if task.failed else task.status,
            task=task,
            files=files,
            cached=True,
            record_id=record_id,
            started=started or time.time(),
            server=self.client.base_url,  # a recorded result is reused only on its own server
        )
        if task.succeeded and self.store is not None and any(f.worth_fetching() for f in files):
            return self._launch(job, self._collect_outputs(job, task, files), finished=finished)
        job.finished = finished or time.time()
        if task.failed:
            job.error = TaskFailed(task)
            job.future.set_exception(job.error)
        else:
            job.future.set_result(task)
        return job

    def _launch(self, job: Job, coro: Coroutine[Any, Any, Any], *, finished: float | None = None) -> Job:
        job.server = self.client.base_url
        self._jobs.add(job)
        _loop.spawn(self._drive(job, coro, finished))
        return job

    async def _drive(self, job: Job, coro: Coroutine[Any, Any, Any], finished: float | None = None) -> None:
        """Run a job to its end, then settle it: record, tell the views, resolve."""
        error: BaseException | None = None
        gate, entered = job.gate, False
        try:
            if gate is not None:
                try:
                    await gate.enter()
                except BaseException:
                    coro.close()  # never started: nothing to clean up, nothing was sent
                    raise
                entered = True
                job.status = "attaching" if job.attached else "submitting"
                job.started = time.time()  # the clock counts from the create, not the wait
                job._notify()
            await coro
        except BaseException as exc:  # cancellation included: the job must still end
            error = exc
        finally:
            if isinstance(error, PaymentRequiredError) and gate is not None and gate.stopped is None:
                # The balance cannot cover this task: the rest of the batch would be refused too.
                gate.stop(
                    f"not sent: HiAPI answered 402 to a task of this batch ({error.balance_text()}); {TOP_UP}"
                )
            if gate is not None and entered:
                gate.leave()
        if error is not None:
            job.error = error
            if isinstance(error, PollTimeout):
                job.status = "timeout"  # not a failure: the task may still finish
            elif isinstance(error, NotSubmitted):
                job.status = "stopped"  # nothing was sent
            elif job.status != "fail":
                job.status = "error"
        job.finished = finished or time.time()
        if self.store is not None:
            await self._record(self.store.finished, job)
        self._jobs.discard(job)
        # Views first, then the future: a waiting cell resumes only once its views
        # have drawn the end (see ``Job.done``).
        job._notify()
        if error is None:
            job.future.set_result(job.task)
        else:
            job.future.set_exception(error)

    async def _record(self, hook: Callable[..., object], *args: Any) -> None:
        """Journal writes run on the writer thread: a journal locked by another kernel
        must not stall every poll and bar on the loop."""
        assert self.writer is not None
        try:
            await self.writer.call(hook, *args)
        except Exception:
            log.exception("hiapi-notebook could not record a change of a job")

    async def _create_and_follow(self, job: Job) -> None:
        req = job.request
        created = await self.client.tasks.create(
            req.model,
            req.input,
            callback=req.callback,
            route=req.route,
            idempotency_key=req.idempotency_key,
            storage=req.storage,
        )
        job.task_id = created.task_id
        job.submitted = time.time()
        job.replayed = created.idempotent_replay
        job.request = replace(req, idempotency_key=created.idempotency_key)
        job.status = "submitted"
        job.sandbox = bool(self.client.is_sandbox)
        if self.store is not None:
            await self._record(self.store.created, job, created)
        job._notify()
        await self._follow(job)

    async def _follow(self, job: Job) -> None:
        assert job.task_id is not None

        async def on_update(task: Task) -> None:
            job.task = task
            # Every way a task ends without a result is "fail" to the job (the server's
            # word stays in job.task.status and in TaskFailed's message), so a server's
            # "timeout" is never taken for our "timeout" (we stopped waiting).
            job.status = "fail" if task.failed else task.status
            job.sandbox = bool(self.client.is_sandbox)
            if task.model and not job.request.model:
                job.request = replace(job.request, model=task.model)
            if self.store is not None:
                await self._record(self.store.status, job, task)
            if task.succeeded:
                await self._collect_outputs(job, task)
            job._notify()

        await self.client.tasks.wait(
            job.task_id,
            timeout=job.request.timeout,
            on_update=on_update,
            model=job.request.model or None,
            route=job.request.route,
            since=job.submitted,
        )

    async def _collect_outputs(self, job: Job, task: Task, kept: Iterable[OutputFile] = ()) -> None:
        """Save each output once (a local copy, or bytes in memory) before its URL expires;
        outputs in ``kept`` that already have their copy are left as they are."""
        files: list[OutputFile] = []
        have = {f.index: f for f in kept if not f.worth_fetching()}
        for index, output in enumerate(task.output):
            if index in have:
                files.append(have[index])
                continue
            file = OutputFile(index=index, output=output)
            path = self.store.output_path(job, index, output) if self.store else None
            try:
                # Each output within the task's own timeout, however slowly its host sends it.
                within = job.request.timeout
                if path is not None:
                    got = await self.client.download(
                        output.url, path, max_bytes=self.max_output_bytes, within=within
                    )
                    file.path, file.sha256, file.size = got.path, got.sha256, got.bytes
                    file.content_type = got.content_type
                else:
                    file.data, file.content_type = await self.client.fetch(
                        output.url, max_bytes=min(MEMORY_OUTPUT_LIMIT, self.max_output_bytes), within=within
                    )
                    file.size = len(file.data)
            except (HiAPIError, OSError) as exc:
                file.problem = str(exc) if not isinstance(exc, OutputExpiredError) else "expired"
                file.refused = isinstance(exc, OutputRefusedError)
                log.warning("hiapi-notebook could not keep output %s of %s: %s", index, job.task_id, exc)
            files.append(file)
        job.files = files


class StoreWriter:
    """Runs a store's hooks on the worker thread; calls made on the loop in the same
    moment (every job that one poll brought news for) go over as one batch."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches = 0  # figures for benchmarks
        self.calls = 0
        self._pending: list[tuple[Callable, tuple, asyncio.Future]] = []

    async def call(self, hook: Callable, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after the other jobs woken with this one
        self._pending.append((hook, args, done))
        return await done

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        self.batches += 1
        self.calls += len(batch)
        loop = asyncio.get_running_loop()
        ran = loop.run_in_executor(_loop.worker(), _run_batch, self.store, [(h, a) for h, a, _ in batch])

        def settle(ran: asyncio.Future) -> None:
            results = ran.result() if not ran.cancelled() and ran.exception() is None else None
            for index, (_hook, _args, done) in enumerate(batch):
                if done.done():
                    continue
                if results is None:
                    done.set_exception(ran.exception() or RuntimeError("the writer stopped"))
                else:
                    ok, value = results[index]
                    done.set_result(value) if ok else done.set_exception(value)

        ran.add_done_callback(settle)


def _run_batch(store: Store, calls: list[tuple[Callable, tuple]]) -> list[tuple[bool, Any]]:
    """On the worker thread: every call, inside the store's ``batch()`` when it has one."""

    def each() -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        for hook, args in calls:
            try:
                results.append((True, hook(*args)))
            except Exception as exc:
                results.append((False, exc))
        return results

    batch = getattr(store, "batch", None)
    if batch is None or len(calls) == 1:
        return each()
    try:
        with batch():
            return each()
    except Exception as exc:  # the batch could not begin or commit: say so, one by one
        log.warning("hiapi-notebook could not write a batch of %d changes together: %s", len(calls), exc)
        return each()
