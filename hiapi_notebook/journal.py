"""The journal: a local SQLite record of every submission, so notebooks are reproducible.

One row per submission, written *before* the create request is sent and after every
change. That is what lets a re-run cell reuse a recorded result instead of paying again,
re-attach to a task still running after a kernel restart, and re-send a create that never
got its answer with the same idempotency key (the server then replays the original task).

Several kernels may share one folder: every write is a short ``BEGIN IMMEDIATE``
transaction in WAL mode, so two processes claiming the same request get one row between
them. The journal never touches the network and never sees the API key: only model,
input, route, storage and task objects come in.

A journal that cannot be written (a read-only file or folder, say a shared results
folder) is opened read-only: recorded results are still served, so nothing is paid for
twice; new submissions go unrecorded, and each write says so in one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import catalog
from .errors import HiAPIError, RequestValidationError
from .media import content_key, input_refs
from .models import (
    FAILURE_STATUSES,
    Task,
    idempotency_key_problem,
    is_failure_status,
    is_terminal_status,
    json_problem,
    new_idempotency_key,
)

SCHEMA_VERSION = 1
JOURNAL_FILENAME = "journal.sqlite3"
DEFAULT_HOME = ".hiapi"
DEFAULT_OUTPUTS_DIR = "hiapi-outputs"
DEFAULT_TIMEOUT = 5.0

PENDING = "pending"  # row written, create not answered yet
SUBMITTED = "submitted"  # create answered with a task id, not polled yet

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_hash TEXT NOT NULL,
    variant INTEGER NOT NULL DEFAULT 0,
    model TEXT NOT NULL,
    route TEXT,
    storage TEXT,
    input TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    task_id TEXT,
    status TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '[]',
    outputs TEXT NOT NULL DEFAULT '[]',
    files TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created_at REAL NOT NULL,
    submitted_at REAL,
    completed_at REAL,
    cost_estimate REAL,
    label TEXT
);
CREATE INDEX IF NOT EXISTS submissions_request ON submissions (request_hash, variant);
CREATE INDEX IF NOT EXISTS submissions_task ON submissions (task_id);
"""

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


class JournalUnavailable(HiAPIError):
    """The journal file cannot be used; the notebook can still run without the cache."""


# Errors that mean "this file cannot be written" (as opposed to locked or corrupt):
# the journal is then opened read-only rather than not at all.
_UNWRITABLE = ("READONLY", "CANTOPEN", "PERM", "AUTH")
# SQL spelling of "a row that ended without a result" (the server's word, any case).
_FAILED_SQL = "lower(status) IN (" + ", ".join(f"'{s}'" for s in sorted(FAILURE_STATUSES)) + ")"


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
    canonical = _dumps(
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


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """``home`` if given, else ``HIAPI_HOME``, else ``.hiapi`` beside the notebook (cwd)."""
    chosen = home if home is not None else os.environ.get("HIAPI_HOME") or None
    return Path(chosen).expanduser() if chosen is not None else Path.cwd() / DEFAULT_HOME


def open_journal(home: str | os.PathLike | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Journal:
    """Open ``<home>/journal.sqlite3``, creating the folder if needed."""
    folder = resolve_home(home)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalUnavailable(
            f"hiapi journal unavailable: cannot create the folder {folder} "
            f"({exc.strerror or exc}): set HIAPI_HOME to a writable folder"
        ) from exc
    return Journal(folder / JOURNAL_FILENAME, timeout=timeout)


def local_output_path(
    outputs_dir: Path, task_id: str, index: int, type: str, content_type: str | None
) -> Path:
    """Where output ``index`` of a task is kept: the same name every run, inside ``outputs_dir``."""
    media = (content_type or "").split(";")[0].strip().lower()
    ext = _EXTENSIONS.get(media, "bin")
    return Path(outputs_dir) / _safe_name(task_id) / f"{int(index)}-{_safe_name(type)}.{ext}"


def _safe_name(text: str) -> str:
    """Server-provided ids and types go into paths: keep them to one harmless segment."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in str(text))
    return cleaned.lstrip(".") or "unknown"


@dataclass(frozen=True)
class Record:
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

    @property
    def is_terminal(self) -> bool:
        return is_terminal_status(self.status)

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "success"

    @property
    def failed(self) -> bool:
        """Ended without a result (``fail``, ``cancelled``…): a re-run submits anew."""
        return is_failure_status(self.status)

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
    def _from_row(cls, row: sqlite3.Row) -> Record:
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
        )


class Journal:
    """The journal file of one folder. Thread-safe; each process opens its own."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.read_only = False  # True when the file can be read but not written
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._in_batch = False
        try:
            with self._guard():
                # isolation_level=None: we issue BEGIN ourselves, so transactions stay short.
                self._conn = sqlite3.connect(
                    self.path, timeout=timeout, isolation_level=None, check_same_thread=False
                )
                self._conn.row_factory = sqlite3.Row
                self._enable_wal()
                self._setup_schema()
        except JournalUnavailable as exc:
            self.close()
            cause = exc.__cause__
            name = getattr(cause, "sqlite_errorname", None) or ""
            if not name.removeprefix("SQLITE_").startswith(_UNWRITABLE) or not self._open_read_only():
                raise
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}{', read-only' if self.read_only else ''})"

    def _open_read_only(self) -> bool:
        """Open an existing journal that cannot be written, for reading; False if that fails too.

        A WAL journal needs its ``-shm`` file to be read; in a folder that cannot be
        written that file cannot be made, and SQLite reads the file as it stands only
        when told it is immutable (nobody can write it here either)."""
        if not self.path.is_file():
            return False
        uri = self.path.resolve().as_uri()
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(
                    f"{uri}?{flags}", uri=True, timeout=self.timeout, check_same_thread=False
                )
            except sqlite3.Error:
                continue
            try:
                conn.row_factory = sqlite3.Row
                found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                conn.execute("SELECT 1 FROM submissions LIMIT 1").fetchall()
            except sqlite3.Error:
                conn.close()
                continue
            if found is None or int(found[0]) > SCHEMA_VERSION:
                conn.close()
                return False
            self._conn = conn
            self.read_only = True
            return True
        return False

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- claiming -------------------------------------------------------------------------

    def claim(
        self,
        model: str,
        input: dict,
        *,
        route: str | None = None,
        storage: str | None = None,
        variant: int = 0,
        idempotency_key: str | None = None,
        fresh: bool = False,
        cost: float | None = None,
        label: str | None = None,
        server: str | None = None,
        callback: dict | None = None,
    ) -> tuple[Record, bool]:
        """The call made before sending a create: ``(record, True)`` means "send it".

        ``(record, False)`` is a row to reuse: a success (cached result) or a task not yet
        terminal (re-attach if it has a task id, else re-send with its idempotency key).
        Failed rows are never reused; ``fresh`` always makes a new row.
        """
        problem = json_problem(input, "input") or json_problem(callback, "callback")
        if idempotency_key is not None:
            problem = problem or idempotency_key_problem(idempotency_key)
        if problem:  # refused before a row is written, so no row waits on a request never sent
            raise RequestValidationError(problem)
        digest = request_hash(model, input, route, storage, server, callback)
        if self.read_only:
            row = None if fresh else self._reusable(digest, variant)
            if row is None:
                raise self._read_only_error()
            return Record._from_row(row), False
        with self._write() as conn:
            if not fresh:
                row = self._reusable(digest, variant, conn)
                if row is not None:
                    return Record._from_row(row), False
            cursor = conn.execute(
                "INSERT INTO submissions (request_hash, variant, model, route, storage, input, "
                "idempotency_key, status, created_at, cost_estimate, label) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    variant,
                    model,
                    route,
                    storage,
                    _dumps(input),
                    idempotency_key or new_idempotency_key(),
                    PENDING,
                    time.time(),
                    cost,
                    label,
                ),
            )
            return self._fetch(conn, cursor.lastrowid), True

    def _reusable(self, digest: str, variant: int, conn: sqlite3.Connection | None = None):
        """The newest row for this request that did not end in failure (a re-run of a failed
        task, ``cancelled`` or ``error`` included, submits anew)."""
        sql = (
            "SELECT * FROM submissions WHERE request_hash = ? AND variant = ? "
            f"AND NOT {_FAILED_SQL} ORDER BY id DESC LIMIT 1"
        )
        if conn is not None:
            return conn.execute(sql, (digest, variant)).fetchone()
        return self._query_one(sql, (digest, variant))

    def _read_only_error(self) -> JournalUnavailable:
        return JournalUnavailable(
            f"hiapi journal is read-only ({self.path}): recorded results are reused, new ones are "
            "not recorded; make it writable, or set HIAPI_HOME to a writable folder"
        )

    # -- recording changes ----------------------------------------------------------------

    def set_task_id(self, rec_id: int, task_id: str) -> Record:
        """The create answered: remember the task, so a restart can re-attach to it."""
        now = time.time()
        with self._write() as conn:
            rec = self._fetch(conn, rec_id)
            if rec.task_id == task_id:
                return rec
            conn.execute(
                "UPDATE submissions SET task_id = ?, submitted_at = ? WHERE id = ?", (task_id, now, rec_id)
            )
            self._append_status(conn, rec, SUBMITTED, now)
            return self._fetch(conn, rec_id)

    def record_status(self, rec_id: int, status: str, *, at: float | None = None) -> Record:
        """Append a status change; repeats are ignored and a terminal row stays terminal."""
        with self._write() as conn:
            self._append_status(conn, self._fetch(conn, rec_id), status, time.time() if at is None else at)
            return self._fetch(conn, rec_id)

    def record_result(self, rec_id: int, task: Task) -> Record:
        """Store a final task: outputs, error, completion time and status (not ``raw``)."""
        completed = float(task.completed_at) if task.completed_at else time.time()
        error = {"code": task.error.code, "message": task.error.message} if task.error is not None else None
        with self._write() as conn:
            rec = self._fetch(conn, rec_id)
            if rec.task_id is None and task.task_id:
                conn.execute("UPDATE submissions SET task_id = ? WHERE id = ?", (task.task_id, rec_id))
            conn.execute(
                "UPDATE submissions SET outputs = ?, error = ?, completed_at = ? WHERE id = ?",
                (
                    _dumps([o.to_dict() for o in task.output]),
                    _dumps(error) if error else None,
                    completed if task.is_terminal else None,
                    rec_id,
                ),
            )
            self._append_status(conn, rec, task.status, completed)
            return self._fetch(conn, rec_id)

    def record_error(self, rec_id: int, code: str | None, message: str) -> Record:
        """A create the server refused (e.g. 400): mark it failed so it is never re-sent."""
        now = time.time()
        with self._write() as conn:
            rec = self._fetch(conn, rec_id)
            conn.execute(
                "UPDATE submissions SET error = ?, completed_at = ? WHERE id = ?",
                (_dumps({"code": code, "message": message}), now, rec_id),
            )
            self._append_status(conn, rec, "fail", now)
            return self._fetch(conn, rec_id)

    def record_files(self, rec_id: int, files: list[dict]) -> Record:
        """Remember local copies; an entry replaces an earlier one with the same ``index``."""
        with self._write() as conn:
            rec = self._fetch(conn, rec_id)
            merged = {f.get("index"): f for f in rec.files}
            merged.update({f.get("index"): dict(f) for f in files})
            ordered = sorted(merged.values(), key=lambda f: (f.get("index") is None, f.get("index") or 0))
            conn.execute("UPDATE submissions SET files = ? WHERE id = ?", (_dumps(ordered), rec_id))
            return self._fetch(conn, rec_id)

    # -- reading --------------------------------------------------------------------------

    def get(self, rec_id: int) -> Record | None:
        row = self._query_one("SELECT * FROM submissions WHERE id = ?", (rec_id,))
        return Record._from_row(row) if row else None

    def find_task(self, task_id: str) -> Record | None:
        row = self._query_one(
            "SELECT * FROM submissions WHERE task_id = ? ORDER BY id DESC LIMIT 1", (task_id,)
        )
        return Record._from_row(row) if row else None

    def history(self, limit: int = 20, *, text: str = "", model: str = "", status: str = "") -> list[Record]:
        """Newest first; ``text`` is found in the inputs (the prompt), ``model`` in the model's
        name (both ignoring case), ``status`` is matched whole."""
        where, params = [], []
        if text:
            where.append("input LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(text)}%")
        if model:
            where.append("model LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(model)}%")
        if status:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = f"SELECT * FROM submissions {clause}ORDER BY id DESC LIMIT ?"
        return [Record._from_row(r) for r in self._query(sql, (*params, limit))]

    def records(self) -> list[Record]:
        """Every submission, oldest first (the order a notebook made them)."""
        return [Record._from_row(r) for r in self._query("SELECT * FROM submissions ORDER BY id")]

    def rows(self) -> list[dict]:
        """One flat dict per submission, oldest first: ``pandas.DataFrame(journal.rows())``.

        Times are Unix seconds (``pd.to_datetime(df.created_at, unit="s")``); each input
        field gets an ``input.<name>`` column, nested values as JSON text.
        """
        return [_flat_row(rec) for rec in self.records()]

    def export(self, path: str | os.PathLike, records: Iterable[Record] | None = None) -> Path:
        """Write a JSON manifest of results (request, task, outputs, files, hashes) for a report.

        Strict JSON: a NaN or infinity recorded by an older version is written as the
        string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``. Missing folders are made; a
        path that names a folder, or a file that cannot be written, is one clear error
        and leaves nothing behind."""
        text = os.fspath(path)
        target = Path(text)
        if not target.name or text.endswith(("/", os.sep)) or target.is_dir():
            raise RequestValidationError(
                f"cannot export to {text!r}: it is a folder; give a file name, e.g. "
                f"{(target / 'hiapi-manifest.json').as_posix()!r}"
            )
        chosen = self.records() if records is None else list(records)
        manifest = {
            "generated_at": _iso(time.time()),
            "journal": _relative_to(self.path, target.parent),
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

    # -- plumbing -------------------------------------------------------------------------

    def _enable_wal(self) -> None:
        """WAL lets kernels read while another writes. Switching to it can answer "locked"
        without waiting (SQLite skips the busy handler there) when kernels open a new file
        together, so wait out the timeout here."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._connection().execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = (getattr(exc, "sqlite_errorname", None) or "").startswith("SQLITE_BUSY")
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _setup_schema(self) -> None:
        with self._write() as conn:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            found = (
                has_meta and conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            )
            if found and int(found[0]) > SCHEMA_VERSION:
                raise JournalUnavailable(
                    f"hiapi journal unavailable: {self.path} was written by a newer hiapi-notebook "
                    f"(schema {found[0]}, this one knows {SCHEMA_VERSION}): upgrade the package "
                    "(pip install -U hiapi-notebook), or set HIAPI_HOME to use another folder"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Many writes as one transaction (one sync to disk, say every status one poll
        brought); each write inside is a savepoint, so one that fails is undone alone."""
        if self.read_only:
            raise self._read_only_error()
        with self._guard():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            self._in_batch = True
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._in_batch = False
            conn.execute("COMMIT")

    def durations(self, limit: int = 2000) -> list[tuple[str, str | None, float, float]]:
        """``(model, route, submitted_at, completed_at)`` of recent successes, oldest
        first: how long each model took (the poller plans its asks from them)."""
        rows = self._query(
            "SELECT model, route, submitted_at, completed_at FROM submissions WHERE status = 'success' "
            "AND submitted_at IS NOT NULL AND completed_at IS NOT NULL ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(r["model"], r["route"], r["submitted_at"], r["completed_at"]) for r in reversed(rows)]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; IMMEDIATE takes the write lock up front, so a
        read-then-insert (claim) cannot interleave with another process's. Inside a
        ``batch`` it is a savepoint of the batch's transaction."""
        if self.read_only:
            raise self._read_only_error()
        with self._guard():
            conn = self._connection()
            if self._in_batch:
                conn.execute("SAVEPOINT write")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    raise
                conn.execute("RELEASE write")
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._guard():
            return self._connection().execute(sql, params).fetchall()

    def _query_one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"{self!r} is closed")
        return self._conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise threads and turn SQLite failures into one clear JournalUnavailable."""
        with self._lock:
            try:
                yield
            except sqlite3.ProgrammingError:
                raise
            except sqlite3.Error as exc:
                raise JournalUnavailable(self._explain(exc)) from exc

    def _explain(self, exc: sqlite3.Error) -> str:
        name = getattr(exc, "sqlite_errorname", None) or ""
        kind = name.removeprefix("SQLITE_").split("_")[0]  # SQLITE_BUSY_SNAPSHOT -> BUSY
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        head = "hiapi journal unavailable:"
        if kind in ("BUSY", "LOCKED"):
            return (
                f"{head} {self.path} is locked by another process (waited {self.timeout:g} s): "
                "close the other kernel using it, or set HIAPI_HOME to use another folder"
            )
        if kind in ("NOTADB", "CORRUPT"):
            return (
                f"{head} {self.path} is not a readable journal ({reason}): "
                "delete it, or set HIAPI_HOME to use another folder"
            )
        if kind in ("CANTOPEN", "READONLY", "PERM", "IOERR", "FULL", "AUTH"):
            return (
                f"{head} cannot write {self.path} ({reason}): make it writable, "
                "or set HIAPI_HOME to a writable folder"
            )
        return (
            f"{head} {self.path} cannot be used ({reason}): "
            "delete it, or set HIAPI_HOME to use another folder"
        )

    @staticmethod
    def _fetch(conn: sqlite3.Connection, rec_id: int) -> Record:
        row = conn.execute("SELECT * FROM submissions WHERE id = ?", (rec_id,)).fetchone()
        if row is None:
            raise KeyError(f"no journal record {rec_id}")
        return Record._from_row(row)

    @staticmethod
    def _append_status(conn: sqlite3.Connection, rec: Record, status: str, at: float) -> None:
        # A late poll must not pull a finished task back to "handling".
        if status == rec.status or (rec.is_terminal and not is_terminal_status(status)):
            return
        events = [*rec.events, (at, status)]
        conn.execute(
            "UPDATE submissions SET status = ?, events = ? WHERE id = ?", (status, _dumps(events), rec.id)
        )


def _like(text: str) -> str:
    """``text`` as itself inside a LIKE pattern (``%`` and ``_`` are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Strict JSON (no NaN, no Infinity), as every file the package writes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys)


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
    return value if value is None or isinstance(value, (str, int, float, bool)) else _dumps(value)


def _flat_row(rec: Record) -> dict:
    row = {
        "id": rec.id,
        "label": rec.label,
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
