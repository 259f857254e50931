"""Wire types of the HiAPI task API, parsed tolerantly.

The server is allowed to grow: unknown fields are kept in ``raw``, unknown
statuses stay plain strings (and are polled on), and output items that are not
objects are skipped rather than failing a whole task.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import RequestValidationError

# The documented ends are ``success`` and ``fail``; HiAPI's own published tools also
# end a task on these other words, so a client must too, whatever their case.
FAILURE_STATUSES = frozenset({"fail", "failed", "error", "cancelled", "canceled", "timeout"})
TERMINAL_STATUSES = FAILURE_STATUSES | {"success"}
MAX_IDEMPOTENCY_KEY_BYTES = 255
MAX_TASK_ID_LENGTH = 200  # ids are 35 characters today; room to grow, not room to abuse
MAX_WAIT_SECONDS = 30 * 86400  # a wait for one task; tasks take minutes, URLs last 7 days
MAX_JSON_DEPTH = 64  # task inputs are flat objects with a few lists; deeper is a mistake


def is_terminal_status(status: str | None) -> bool:
    return str(status or "").lower() in TERMINAL_STATUSES


def is_failure_status(status: str | None) -> bool:
    """``fail`` and the other words a task can end in without a result, in any case."""
    return str(status or "").lower() in FAILURE_STATUSES


def new_idempotency_key() -> str:
    """One key per logical submission, reused by every resend of it (at most 255 bytes)."""
    return f"hnb-{uuid.uuid4().hex}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


TYPE_CHARS = 64  # an output type is a word (image, first_frame): a longer one is cut, with a mark


def _word(value: Any) -> str:
    """An output's type as shown and named: text, one line, at most ``TYPE_CHARS`` long."""
    text = " ".join(str(value or "unknown").split()) or "unknown"
    return text if len(text) <= TYPE_CHARS else text[: TYPE_CHARS - 1] + "…"


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
            type=_word(data.get("type")),
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


class Ended:
    """How a ``status`` the server named reads: ended, succeeded, failed. Shared by the
    wire's ``Task`` and the journal's ``Record``, which both keep the server's word."""

    status: str

    @property
    def is_terminal(self) -> bool:
        return is_terminal_status(self.status)

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "success"

    @property
    def failed(self) -> bool:
        """Ended without a result: ``fail``, or another failure word (``cancelled``…)."""
        return is_failure_status(self.status)


@dataclass(frozen=True)
class Task(Ended):
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

    def __post_init__(self) -> None:
        # Checked here, where every request is made, so a bad wait is refused before the
        # task is created and paid for (not after, when the wait begins).
        problem = wait_timeout_problem(self.timeout)
        if problem:
            raise RequestValidationError(problem)

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

    def __iter__(self) -> Iterator[Task]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# --- checks made before anything is sent: pure, they return a problem or None ---


MAX_KEY_CHARS = 4096  # HTTP servers refuse header lines much past 8 KB


def api_key_problem(key: Any) -> str | None:
    """Why ``key`` cannot be sent as ``Authorization: Bearer <key>``, or None.

    The answer never quotes the key. It is a plain return, not an exception, so the
    frame holding the key is gone before any caller raises (a verbose traceback
    prints the locals of every frame it passes through).
    """
    if not isinstance(key, str):
        return f"the HiAPI key is malformed: it must be text, not {type(key).__name__}"
    if len(key) > MAX_KEY_CHARS:  # a server would answer "431 header too large", naming nothing
        return (
            f"the HiAPI key is malformed: it is {len(key):,} characters long, far more than a key "
            f"(at most {MAX_KEY_CHARS:,}); copy the key again from your HiAPI dashboard"
        )
    for position, char in enumerate(key, 1):
        if "!" <= char <= "~":
            continue
        if char in "\r\n":
            kind = "a line break"
        elif char in " \t" or char.isspace():
            kind = "a space"
        elif not char.isascii():
            kind = "a non-ASCII character"
        else:
            kind = "a control character"
        where = "at its end" if position == len(key) else f"at position {position}"
        return (
            f"the HiAPI key is malformed: it has {kind} {where}, which cannot go in an HTTP header; "
            "copy the key again from your HiAPI dashboard"
        )
    return None


def idempotency_key_problem(key: Any) -> str | None:
    """Why ``key`` cannot be an ``Idempotency-Key`` header, or None."""
    if not isinstance(key, str) or not key:
        return f"idempotency_key must be a non-empty string, not {_short(key)}"
    if len(key) > MAX_IDEMPOTENCY_KEY_BYTES:
        return f"idempotency_key is {len(key)} characters; at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
    if not all("!" <= c <= "~" for c in key):
        return (
            f"idempotency_key {_short(key)} must be printable ASCII with no spaces "
            f"(letters, digits, - _ . : and the like), at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
        )
    return None


def task_id_problem(task_id: Any) -> str | None:
    """Why ``task_id`` cannot be a task id in a URL, or None (the server judges the rest)."""
    if not isinstance(task_id, str) or not task_id:
        return f"not a task id: {_short(task_id)} (ids look like tk-hiapi-01HZTQ8BX2N3GM3YFK4Z9D7VQR)"
    allowed = all(c.isascii() and (c.isalnum() or c in "-_.~") for c in task_id)
    if len(task_id) > MAX_TASK_ID_LENGTH or not allowed:
        return (
            f"not a task id: {_short(task_id)} ({len(task_id)} characters); ids look like "
            "tk-hiapi-01HZTQ8BX2N3GM3YFK4Z9D7VQR (letters, digits and dashes, 35 characters)"
        )
    return None


def number_problem(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> str | None:
    """Why ``value`` is not a number from ``lo`` to ``hi`` (a whole one if ``integer``), or None.

    NaN, infinities and booleans are refused: ``nan`` as a poll interval once made
    thousands of requests for one task."""
    wanted = f"{name} must be {'a whole number' if integer else 'a number'} from {_num(lo)} to {_num(hi)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{wanted}, not {_short(value)}"
    if integer and not isinstance(value, int) and not (math.isfinite(value) and value == int(value)):
        return f"{wanted}, not {_short(value)}"
    if not (math.isfinite(value) and lo <= value <= hi):
        return f"{wanted}, not {_short(value)}"
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def wait_timeout_problem(timeout: Any) -> str | None:
    """Why ``timeout`` cannot bound a wait for a task (None waits without limit), or None."""
    if timeout is None:
        return None
    problem = number_problem("timeout", timeout, 0.001, MAX_WAIT_SECONDS)
    return problem and problem + " (or None, to wait without limit)"


def json_problem(value: Any, name: str) -> str | None:
    """Why ``value`` cannot be sent as strict JSON, naming the field, or None.

    Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which strict parsers
    (HiAPI's among them) refuse; text must be valid Unicode; keys must be strings.
    Walked without recursion, so a deeply nested value is an answer, not a crash.
    """
    stack: list[tuple[Any, str, int]] = [(value, name, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{name} nests deeper than {MAX_JSON_DEPTH} levels (at {where[:80]}…)"
        if item is None or isinstance(item, (bool, int)):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{where} is {item!r}: NaN and Infinity are not valid JSON; give a finite number"
        elif isinstance(item, str):
            if not _is_unicode(item):
                return f"{where} contains a lone surrogate (not valid Unicode text); remove it"
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"{where} has a key {_short(key)} that is not a string"
                if not _is_unicode(key):
                    return f"{where} has a key that is not valid Unicode text"
                stack.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        else:
            kind = type(item).__name__
            return f"{where} is a {kind}, which JSON cannot hold; give text, a number, a list or a dict"
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: Any, limit: int = 40) -> str:
    """A value for a one-line message: repr'd, and cut when long."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def base_url_problem(url: object) -> str | None:
    """Why ``url`` cannot be HiAPI's base URL, or None: caught here, it is one line
    instead of a connection error (or an ``ExceptionGroup``) after the retries."""
    if not isinstance(url, str):
        return f"HIAPI_BASE_URL must be text, not {type(url).__name__}"
    shown = url if len(url) <= 80 else url[:79] + "…"
    if not url.strip().startswith(("http://", "https://")):
        return f"HIAPI_BASE_URL must start with http:// or https:// (got {shown!r})"
    if any(c.isspace() or not c.isprintable() for c in url.strip()):
        return f"HIAPI_BASE_URL must not contain spaces or control characters (got {shown!r})"
    parts = urlsplit(url.strip())
    host_port = parts.netloc.rpartition("@")[2]
    port_text = host_port.rpartition(":")[2] if not host_port.endswith("]") else ""
    if port_text.isdigit() and not 1 <= int(port_text) <= 65535:
        return f"HIAPI_BASE_URL has port {int(port_text)}, outside 1 to 65535 (got {shown!r})"
    try:
        port = parts.port
    except ValueError as exc:
        return f"HIAPI_BASE_URL is not a valid URL ({exc}) (got {shown!r}): e.g. https://api.hiapi.ai/v1"
    if not parts.hostname:
        return f"HIAPI_BASE_URL names no host (got {shown!r}): e.g. https://api.hiapi.ai/v1"
    if port is not None and not 1 <= port <= 65535:
        return f"HIAPI_BASE_URL has port {port}, outside 1 to 65535 (got {shown!r})"
    return None
