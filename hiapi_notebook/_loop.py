"""One background asyncio loop per process, on one daemon thread, and one worker.

A notebook cell is synchronous and the kernel's own loop is blocked while a
cell runs, so work that must keep going (polling, status updates, the sync
client) runs here instead: one thread for everything, never one per task.
Work too slow for the loop (journal writes, re-rendering a gallery, copying a
result into a folder) goes to the one worker thread, in order: two threads of
ours in all, however many tasks a kernel follows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use (and again after a fork)."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="hiapi-notebook-loop", daemon=True)
            _thread.start()
        return _loop


_worker: concurrent.futures.ThreadPoolExecutor | None = None


def worker() -> concurrent.futures.ThreadPoolExecutor:
    """The process's one worker thread for side work off the loop (started on first use)."""
    global _worker
    with _lock:
        if _worker is None:
            _worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hiapi-notebook-worker")
        return _worker


def in_background_loop() -> bool:
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def spawn(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the background loop and return at once."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


def wait_future(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """Block the calling thread on ``future`` in short slices, so Ctrl-C and a
    kernel interrupt (SIGINT) get through promptly."""
    if in_background_loop():
        raise RuntimeError("cannot block the background loop on itself")
    deadline = None if timeout is None else _now() + timeout
    while True:
        remaining = 0.2 if deadline is None else min(0.2, max(0.0, deadline - _now()))
        try:
            return future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            if deadline is not None and _now() >= deadline:
                raise


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and wait; an interrupt cancels it."""
    future = spawn(coro)
    try:
        return wait_future(future, timeout)
    except BaseException:
        future.cancel()
        raise


def _now() -> float:
    import time

    return time.monotonic()
