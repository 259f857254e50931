"""Wire types of the HiAPI task API, parsed tolerantly.

The server is allowed to grow: unknown fields are kept in ``raw``, unknown
statuses stay plain strings (and are polled on), and output items that are not
objects are skipped rather than failing a whole task.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"success", "fail"})


def new_idempotency_key() -> str:
    """One key per logical submission, reused by every resend of it (at most 255 bytes)."""
    return f"hnb-{uuid.uuid4().hex}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Output:
    """One result file of a task; ``type`` is open-ended (image, video, first_frame…)."""

    url: str
    type: str = "unknown"
    expire_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Output:
        return cls(
            url=str(data.get("url") or ""),
            type=str(data.get("type") or "unknown"),
            expire_at=_int_or_none(data.get("expireAt")),
            raw=dict(data),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "type": self.type, "expireAt": self.expire_at}


@dataclass(frozen=True)
class TaskError:
    code: str | None = None
    message: str | None = None

    @classmethod
    def from_value(cls, data: Any) -> TaskError | None:
        if isinstance(data, Mapping):
            return cls(code=data.get("code"), message=data.get("message"))
        if isinstance(data, str) and data:
            return cls(code=None, message=data)
        return None


@dataclass(frozen=True)
class Task:
    """A task as the detail and list calls report it."""

    task_id: str
    model: str | None = None
    status: str = "queued"
    created_at: int | None = None
    completed_at: int | None = None  # None while the wire says 0
    output: tuple[Output, ...] = ()
    error: TaskError | None = None
    route: str | None = None
    storage: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        outputs = data.get("output") or []
        if not isinstance(outputs, list):
            outputs = []
        completed = _int_or_none(data.get("completed"))
        return cls(
            task_id=str(data.get("taskId") or data.get("task_id") or ""),
            model=data.get("model"),
            status=str(data.get("status") or "queued"),
            created_at=_int_or_none(data.get("created")),
            completed_at=completed or None,
            output=tuple(Output.from_dict(o) for o in outputs if isinstance(o, Mapping)),
            error=TaskError.from_value(data.get("error")),
            route=data.get("route"),
            storage=data.get("storage"),
            raw=dict(data),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        """The wire form, e.g. for the journal; unknown fields survive."""
        return (
            dict(self.raw)
            if self.raw
            else {
                "taskId": self.task_id,
                "model": self.model,
                "status": self.status,
                "created": self.created_at or 0,
                "completed": self.completed_at or 0,
                "output": [o.to_dict() for o in self.output],
            }
        )


@dataclass(frozen=True)
class Request:
    """What to generate: the create call's body, plus how long to wait for it.

    ``idempotency_key`` makes a resend replay the first task instead of billing twice.
    ``media`` holds, for each field with media sent inline, the references the journal
    keeps in place of their bytes (see ``media.py``).
    """

    model: str
    input: Mapping[str, Any]
    route: str | None = None
    storage: str | None = None
    callback: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    timeout: float | None = 600
    media: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def recorded_input(self) -> dict[str, Any]:
        """The input as the journal keeps it: inline media as references, never their bytes."""
        return {**self.input, **self.media}

    @property
    def prompt(self) -> str:
        value = self.input.get("prompt") or self.input.get("text") or ""
        return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class CreatedTask:
    task_id: str
    idempotent_replay: bool = False
    idempotency_key: str | None = None


@dataclass(frozen=True)
class TaskPage:
    items: tuple[Task, ...]
    page: int
    size: int
    total: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskPage:
        tasks = data.get("tasks") or data.get("items") or []
        return cls(
            items=tuple(Task.from_dict(t) for t in tasks if isinstance(t, Mapping)),
            page=_int_or_none(data.get("page")) or 1,
            size=_int_or_none(data.get("size")) or len(tasks),
            total=_int_or_none(data.get("total")) or 0,
        )

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
