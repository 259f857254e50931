"""The sandbox's memory: tasks and their lifecycle, idempotency keys and the balance.

A task's status is computed from its creation time (queued, then handling, then archiving,
then success or fail), so no thread or timer runs per task and a task advances whether or not
anyone polls it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .inputs import Media
from .media import EXTENSIONS
from .wire import ApiError

# seconds queued, handling, archiving at speed 1
PHASES = {"image": (1.0, 4.0, 1.0), "video": (2.0, 20.0, 3.0), "audio": (1.0, 8.0, 1.0)}
IDEMPOTENCY_WINDOW = 24 * 3600
TERMINAL = ("success", "fail")


@dataclass
class TaskRecord:
    task_id: str
    owner: str  # a digest of the API key that created it
    model: str  # as the task shows it: the name, or name@route
    route: str | None  # echoed only when the request named one
    kind: str
    input: dict  # as kept (``kept.kept_input``): data: URIs and long strings as digests
    storage: str
    callback: dict | None
    started: float  # Unix time of creation
    phases: tuple[float, float, float]
    error: dict | None  # set when the task is bound to fail
    end_status: str  # the status it then ends in: "fail", or another word ("cancelled"…)
    outputs: tuple[str, ...]  # output types, in order
    expire_at: int  # when its output URLs stop answering
    media: dict[str, list[Media]] = field(default_factory=dict)  # its media inputs, reduced
    drawing_key: str = ""  # its files' key in the media cache: the same request, the same files

    @property
    def finished(self) -> float:
        """When the task turns terminal: a failing one fails at the end of handling."""
        queued, handling, archiving = self.phases
        return self.started + queued + handling + (0 if self.error else archiving)

    def status(self, now: float) -> str:
        queued, handling, _ = self.phases
        elapsed = now - self.started
        if elapsed < queued:
            return "queued"
        if elapsed < queued + handling:
            return "handling"
        if self.error:
            return self.end_status
        return "success" if now >= self.finished else "archiving"

    def wire(self, now: float, file_root: str) -> dict:
        """The task object of the contract, as a detail call, a list or a callback shows it."""
        status = self.status(now)
        task = {
            "taskId": self.task_id,
            "model": self.model,
            "status": status,
            "created": int(self.started),
            "completed": int(self.finished) if status in TERMINAL or status == self.end_status else 0,
            "storage": self.storage,
        }
        if self.route is not None:
            task["route"] = self.route
        if status == "success":
            task["output"] = [
                {
                    "url": f"{file_root}/files/{self.task_id}/{n}.{EXTENSIONS[kind]}",
                    "type": kind,
                    "expireAt": self.expire_at,
                }
                for n, kind in enumerate(self.outputs)
            ]
        elif self.error and status == self.end_status:
            task["error"] = self.error
        return task


@dataclass
class _KeyUse:
    digest: str  # a digest of the canonical body the key was first used with
    task_id: str | None  # None while that first request is in flight
    at: float


class Ledger:
    """The sandbox's books: every task, idempotency key and the balance, behind one lock
    (a name of its own: the client's runtime has a ``Store``, the hooks its journal is kept by)."""

    def __init__(self, balance: float | None) -> None:
        self.balance = balance
        self._tasks: dict[str, TaskRecord] = {}  # in creation order
        self._by_owner: dict[str, list[TaskRecord]] = {}  # each account's, in creation order
        self._keys: dict[tuple[str, str], _KeyUse] = {}
        self._lock = threading.Lock()

    @property
    def task_count(self) -> int:
        return len(self._tasks)

    def claim_key(self, owner: str, key: str, digest: str) -> str | None:
        """The task to replay for this key, or None once the key is held for this request."""
        now = time.time()
        with self._lock:
            use = self._keys.get((owner, key))
            if use and now - use.at < IDEMPOTENCY_WINDOW:
                if use.digest != digest:
                    raise ApiError(
                        422,
                        "this Idempotency-Key was already used with a different "
                        "request body; use a new key for a new request",
                        "IDEMPOTENCY_KEY_MISMATCH",
                    )
                if use.task_id is None:
                    raise ApiError(
                        409,
                        "the first request with this Idempotency-Key is still "
                        "being processed; retry after Retry-After",
                        "IDEMPOTENCY_KEY_PROCESSING",
                        {"Retry-After": "1"},
                    )
                return use.task_id
            self._keys[(owner, key)] = _KeyUse(digest, None, now)
            return None

    def release_key(self, owner: str, key: str) -> None:
        """The request holding the key was refused: the key is free for a corrected one."""
        with self._lock:
            self._keys.pop((owner, key), None)

    def add(self, task: TaskRecord, cost: float, key: str | None) -> None:
        """Charge the task's estimate and keep it; refuses with 402 when the balance is short."""
        with self._lock:
            if self.balance is not None:
                if cost > self.balance + 1e-9:
                    raise ApiError(
                        402,
                        f"insufficient balance: this task is estimated at "
                        f"${cost:.4f} and the balance is ${self.balance:.4f}; "
                        "top up your account",
                    )
                self.balance -= cost
            self._tasks[task.task_id] = task
            self._by_owner.setdefault(task.owner, []).append(task)
            if key is not None:
                self._keys[(task.owner, key)].task_id = task.task_id

    def get(self, task_id: str, owner: str | None = None) -> TaskRecord | None:
        """A task by id; with ``owner``, only if that account created it."""
        task = self._tasks.get(task_id)
        return task if task and owner in (None, task.owner) else None

    def snapshot(self, now: float, file_root: str) -> list[dict]:
        with self._lock:
            tasks = list(self._tasks.values())
        return [{**t.wire(now, file_root), "input": t.input} for t in tasks]

    def timeline(self) -> list[tuple[str, float, float]]:
        """``(task_id, started, finished)`` of every task, in creation order."""
        with self._lock:
            return [(t.task_id, t.started, t.finished) for t in self._tasks.values()]

    def page(self, owner: str, page: int, size: int) -> tuple[int, list[TaskRecord]]:
        """The total of the account's tasks and one page of them, newest first (a page
        costs its size, however many tasks the account has)."""
        with self._lock:
            mine = self._by_owner.get(owner, [])
            total = len(mine)
            end = total - (page - 1) * size  # newest first: page 1 ends at the newest
            chosen = mine[max(0, end - size) : max(0, end)]
        return total, chosen[::-1]
