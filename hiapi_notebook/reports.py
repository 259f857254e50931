"""The journal seen from outside: a JSON manifest of results, and flat rows for a table.

Apart from the journal because a report only reads records: it never touches SQLite, and
what it shows (ISO times, relative paths, input references, timings) can change without
touching how the journal stores things.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import catalog
from .errors import HiAPIError, RequestValidationError
from .media import input_refs
from .records import Record, strict_json


def write_manifest(
    path: str | os.PathLike,
    read: Callable[[], Iterable[Record]],
    *,
    journal: Path,
    notebook: str | None = None,
) -> Path:
    """Write the manifest of the records ``read()`` gives to ``path``; ``journal`` is named
    relative to it, so the manifest travels with a report; ``notebook``: whose results they
    are (None: the folder's).

    ``read`` is called once ``path`` is known to name a file. Strict JSON: a NaN or an
    infinity recorded by an older version is written as the string ``"NaN"``,
    ``"Infinity"`` or ``"-Infinity"``. Missing folders are made; a path that names a
    folder, or a file that cannot be written, is one clear error and leaves nothing behind."""
    text = os.fspath(path)
    target = Path(text)
    if not target.name or text.endswith(("/", os.sep)) or target.is_dir():
        raise RequestValidationError(
            f"cannot export to {text!r}: it is a folder; give a file name, e.g. "
            f"{(target / 'hiapi-manifest.json').as_posix()!r}"
        )
    chosen = list(read())
    manifest = {
        "generated_at": _iso(time.time()),
        "journal": _relative_to(journal, target.parent),
        "notebook": notebook,
        "results": [_manifest_entry(rec) for rec in chosen],
    }
    body = json.dumps(_finite(manifest), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(body, encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        raise HiAPIError(
            f"cannot write {text!r} ({exc.strerror or type(exc).__name__}): "
            "choose a file in a folder you can write"
        ) from None
    return target


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats spelled as strings, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _relative_to(path: Path, folder: Path) -> str:
    """Manifests travel with a report: name the journal relative to them, not by absolute path."""
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.name


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else strict_json(value)


def flat_row(rec: Record) -> dict:
    """One submission as one flat dict: a row of ``Journal.rows()``."""
    row = {
        "id": rec.id,
        "label": rec.label,
        "notebook": rec.notebook,
        "model": rec.model,
        "route": rec.route,
        "storage": rec.storage,
        "variant": rec.variant,
        "status": rec.status,
        "task_id": rec.task_id,
        "created_at": rec.created_at,
        "submitted_at": rec.submitted_at,
        "completed_at": rec.completed_at,
        "elapsed": rec.elapsed,
        "cost_estimate": rec.cost_estimate,
        "n_outputs": len(rec.outputs),
        "output_urls": [o.get("url") for o in rec.outputs],
        "local_files": [f.get("path") for f in rec.files],
        "error_code": (rec.error or {}).get("code"),
        "error_message": (rec.error or {}).get("message"),
        "idempotency_key": rec.idempotency_key,
        "request_hash": rec.request_hash,
    }
    row.update({f"input.{k}": _scalar(v) for k, v in rec.input.items()})
    return row


def _timings(rec: Record) -> dict:
    """Seconds spent in each status (from the events), and in total."""
    spent: dict[str, float] = {}
    for (start, status), (end, _next) in zip(rec.events, rec.events[1:]):
        spent[status] = round(spent.get(status, 0.0) + max(0.0, end - start), 3)
    total = rec.elapsed if rec.is_terminal else None
    return {"total_s": None if total is None else round(total, 3), "in_status_s": spent}


def _manifest_entry(rec: Record) -> dict:
    return {
        "request": {
            "model": rec.model,
            "route": rec.route,
            "storage": rec.storage,
            "input": rec.input,
            "hash": rec.request_hash,
            "variant": rec.variant,
        },
        "inputs": input_refs(rec.input, lambda name: catalog.media_field(rec.model, name) is not None),
        "label": rec.label,
        "notebook": rec.notebook,
        "idempotency_key": rec.idempotency_key,
        "task_id": rec.task_id,
        "status": rec.status,
        "created_at": _iso(rec.created_at),
        "submitted_at": _iso(rec.submitted_at),
        "completed_at": _iso(rec.completed_at),
        "outputs": rec.outputs,
        "files": [
            {
                "index": f.get("index"),
                "path": f.get("path"),
                "sha256": f.get("sha256"),
                "bytes": f.get("bytes"),
            }
            for f in rec.files
        ],
        "error": rec.error,
        "timings": _timings(rec),
    }
