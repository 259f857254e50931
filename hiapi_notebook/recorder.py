"""Keeps the journal in step with the runtime: the ``Store`` hooks write every
change of a job to its row, and records turn back into requests, tasks and
local files when a re-run reuses them."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlparse

from .errors import APIError, NotFoundError
from .journal import DEFAULT_OUTPUTS_DIR, Journal, Record, local_output_path
from .models import CreatedTask, Output, Request, Task
from .records import inside
from .runtime import Job, OutputFile

log = logging.getLogger("hiapi_notebook")
_TYPE_GUESS = {
    "image": "image/png",
    "first_frame": "image/png",
    "last_frame": "image/png",
    "thumbnail": "image/png",
    "video": "video/mp4",
    "audio": "audio/wav",
}


class JournalStore:
    """Runtime ``Store`` backed by the journal and a folder of local copies."""

    def __init__(self, journal: Journal, outputs_dir: Path) -> None:
        self.journal = journal
        self.outputs_dir = Path(outputs_dir)

    def batch(self) -> AbstractContextManager[None]:
        """The runtime writes a batch of changes as one journal transaction."""
        return self.journal.batch()

    def _safely(self, what: str, fn: Callable[..., object], *args: Any) -> None:
        """A journal hiccup must not stop a paid task from being followed."""
        try:
            fn(*args)
        except Exception as exc:
            log.warning("hiapi journal could not record %s: %s", what, exc)

    def created(self, job: Job, created: CreatedTask) -> None:
        if job.record_id is not None:
            self._safely("the task id", self.journal.set_task_id, job.record_id, created.task_id)

    def status(self, job: Job, task: Task) -> None:
        # A terminal status is written by ``finished`` together with its outputs and
        # local copies: a row must never say "success" before its files are kept,
        # or a restart in between would leave a cached result with nothing to show.
        if job.record_id is not None and not task.is_terminal:
            self._safely("a status", self.journal.record_status, job.record_id, task.status)

    def finished(self, job: Job) -> None:
        if job.record_id is None:
            return
        if job.task is not None and job.task.is_terminal:
            self._safely("the result", self.journal.record_result, job.record_id, job.task)
            if job.files:
                self._safely(
                    "local copies",
                    self.journal.record_files,
                    job.record_id,
                    [_file_entry(f) for f in job.files],
                )
        elif _definitive(job.error) and (job.task_id is None or isinstance(job.error, NotFoundError)):
            # The server refused the create, or the task is unknown to it: close the row
            # so a re-run submits anew instead of re-sending or re-attaching forever.
            self._safely(
                "the refusal",
                self.journal.record_error,
                job.record_id,
                job.error.error_code or str(job.error.status),
                job.error.server_message,
            )
        # Anything else (5xx, 429, 409, network errors, an interrupted wait) leaves the
        # row open: the create may have landed, so a re-run re-attaches (task id known)
        # or re-sends with the same idempotency key, which replays instead of billing.

    def output_path(self, job: Job, index: int, output: Output) -> Path | None:
        guess = mimetypes.guess_type(urlparse(output.url).path)[0] or _TYPE_GUESS.get(output.type)
        path = local_output_path(self.outputs_dir, job.task_id or "unknown", index, output.type, guess)
        if inside(self.outputs_dir, path.parent) is None:  # a linked task folder leads elsewhere
            log.warning("hiapi: %s's folder leads out of %s; kept in memory", job.task_id, self.outputs_dir)
            return None
        return path


def _definitive(error: BaseException | None) -> TypeGuard[APIError]:
    """A refusal that resending the same request cannot change (400, 401, 402, 403, 404, 422)."""
    return (
        isinstance(error, APIError)
        and error.status is not None
        and 400 <= error.status < 500
        and error.status not in (409, 429)
    )


def _file_entry(f: OutputFile) -> dict:
    return {
        "index": f.index,
        "url": f.url,
        "type": f.type,
        "path": str(f.path) if f.path else None,
        "sha256": f.sha256,
        "bytes": f.size,
        "content_type": f.content_type,
        "problem": f.problem,
        "refused": f.refused or None,
    }


def task_from_record(rec: Record) -> Task:
    return Task.from_dict(
        {
            "taskId": rec.task_id,
            "model": rec.model,
            "status": rec.status,
            "created": int(rec.submitted_at or rec.created_at),
            "completed": int(rec.completed_at or 0),
            "output": rec.outputs,
            "error": rec.error,
            "route": rec.route,
            "storage": rec.storage,
        }
    )


def files_from_record(rec: Record, outputs_dir: Path | str = DEFAULT_OUTPUTS_DIR) -> list[OutputFile]:
    """The outputs of a row with their local copies; an output never copied (or whose
    copy is gone) keeps its URL and expiry, so it can be fetched again while it lives.

    A journal may come from elsewhere (a cloned repository): a copy is used only when it
    lies inside ``outputs_dir``, the folder local copies are kept in; any other path the row
    names is never read."""
    entries = {int(e.get("index") or 0): e for e in rec.files if isinstance(e, dict)}
    outputs = [o for o in rec.outputs if isinstance(o, dict)]
    count = max(len(outputs), max(entries, default=-1) + 1)
    files = []
    for index in range(count):
        wire = dict(outputs[index]) if index < len(outputs) else {}
        entry = entries.get(index, {})
        wire.setdefault("url", entry.get("url", ""))
        wire.setdefault("type", entry.get("type", "unknown"))
        path = Path(entry["path"]) if isinstance(entry.get("path"), str) and entry["path"] else None
        problem: str | None
        if not entry:
            problem = "no local copy"
        elif path is None:
            problem = str(entry.get("problem") or "no local copy")
        elif inside(outputs_dir, path) is None:
            path, problem = None, f"local copy outside {outputs_dir}: not used"
        else:
            problem = None if path.is_file() else "local copy missing"
        files.append(
            OutputFile(
                index=index,
                output=Output.from_dict(wire),
                path=path,
                content_type=entry.get("content_type"),
                sha256=entry.get("sha256"),
                size=entry.get("bytes"),
                problem=problem,
                refused=bool(entry.get("refused")),
            )
        )
    return files


def request_from_record(rec: Record, request: Request | None) -> Request:
    """The request to (re)send for a row: its own idempotency key, so a resend replays."""
    base = request or Request(model=rec.model, input=rec.input, route=rec.route, storage=rec.storage)
    return replace(base, idempotency_key=rec.idempotency_key)
