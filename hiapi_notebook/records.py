"""A submission as the journal keeps it: its row (``Record``), the key that finds it again
(``request_hash``), where its local copies go (``local_output_path``) and the strict JSON
it is stored in.

Apart from the journal so that what only reads or names records (the reports, the history
views, the recorder) needs neither SQLite nor the journal's locks to know their shape.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .media import content_key
from .models import Ended

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/m4a": "m4a",
}


def strict_json(value: Any, *, sort_keys: bool = False) -> str:
    """Strict JSON (no NaN, no Infinity), as every file the package writes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys)


def request_hash(
    model: str,
    input: dict,
    route: str | None = None,
    storage: str | None = None,
    server: str | None = None,
    callback: dict | None = None,
) -> str:
    """A stable key for "the same request", whatever the key order of ``input``.

    ``server`` (the API base URL) keeps a sandbox's synthetic result from being
    reused as a real one, and a task id from being looked up on the wrong server.
    ``callback`` is part of the body the idempotency key covers: a changed one is
    another request (resending the old key with it would be refused with a 422).
    Media sent inline count by their content hash (a changed file is a new request),
    not by their name or the folder they came from.
    """
    canonical = strict_json(
        {
            "model": model,
            "input": content_key(input),
            "route": route,
            "storage": storage,
            "server": server,
            "callback": callback,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def local_output_path(
    outputs_dir: Path, task_id: str, index: int, type: str, content_type: str | None
) -> Path:
    """Where output ``index`` of a task is kept: the same name every run, inside ``outputs_dir``."""
    media = (content_type or "").split(";")[0].strip().lower()
    ext = _EXTENSIONS.get(media, "bin")
    return Path(outputs_dir) / task_folder(task_id) / f"{int(index)}-{safe_name(type)}.{ext}"


NAME_CHARS = 48  # a server-chosen word in a file name: enough to read, far below any system's limit


def safe_name(text: object, limit: int = NAME_CHARS) -> str:
    """A server-provided word (an output type, a task id) as one harmless path segment: ASCII
    letters, digits, ``-``, ``_`` and ``.``, no leading dot, at most ``limit`` characters."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in str(text))
    return cleaned.lstrip(".")[:limit] or "unknown"


def task_folder(task_id: object) -> str:
    """The folder of a task's local copies, one per id: an id that is already a safe name is
    its own folder; any other (``..``, ``abc~``, 5,000 characters) gets its safe prefix and a
    hash of the whole id, so two ids never share a folder (``abc~`` and ``abc_`` differ)."""
    text = str(task_id)
    cleaned = safe_name(text, limit=10**6)
    if cleaned == text and len(text) <= 2 * NAME_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe_name(text)}~{digest}"


def inside(folder: Path | str, path: Path | str) -> Path | None:
    """``path`` resolved (links followed), when it lies inside ``folder``; else None. What a
    journal or a server names is used only where it belongs."""
    try:
        root = Path(folder).resolve()
        resolved = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL in the name
        return None
    return resolved if resolved != root and resolved.is_relative_to(root) else None


@dataclass(frozen=True)
class Record(Ended):
    """One submission as the journal holds it."""

    id: int
    request_hash: str
    variant: int
    model: str
    route: str | None
    storage: str | None
    input: dict
    idempotency_key: str
    task_id: str | None
    status: str
    events: list = field(default_factory=list)  # [(unix_time, status), ...]
    outputs: list = field(default_factory=list)  # [{"url", "type", "expireAt"}, ...]
    files: list = field(default_factory=list)  # [{"index", "url", "path", "sha256", ...}]
    error: dict | None = None
    created_at: float = 0.0
    submitted_at: float | None = None
    completed_at: float | None = None
    cost_estimate: float | None = None
    label: str | None = None
    notebook: str | None = None  # the notebook that made it, where its front end said

    @property
    def elapsed(self) -> float | None:
        """Seconds from the create's answer to completion (or now); None before the answer."""
        if self.submitted_at is None:
            return None
        end = self.completed_at if self.completed_at is not None else time.time()
        return max(0.0, end - self.submitted_at)

    @property
    def prompt(self) -> str | None:
        value = self.input.get("prompt")
        return value if isinstance(value, str) else None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Record:
        """A row of the journal's ``submissions`` table, its JSON columns read back."""
        return cls(
            id=row["id"],
            request_hash=row["request_hash"],
            variant=row["variant"],
            model=row["model"],
            route=row["route"],
            storage=row["storage"],
            input=json.loads(row["input"]),
            idempotency_key=row["idempotency_key"],
            task_id=row["task_id"],
            status=row["status"],
            events=[(t, s) for t, s in json.loads(row["events"])],
            outputs=json.loads(row["outputs"]),
            files=json.loads(row["files"]),
            error=json.loads(row["error"]) if row["error"] else None,
            created_at=row["created_at"],
            submitted_at=row["submitted_at"],
            completed_at=row["completed_at"],
            cost_estimate=row["cost_estimate"],
            label=row["label"],
            notebook=row["notebook"] if "notebook" in row.keys() else None,  # an older journal has none
        )
