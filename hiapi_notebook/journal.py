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

What a record is (``records``) and what is made from records for a report (``reports``)
live beside this module; their public names are importable from here too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import HiAPIError, RequestValidationError
from .models import (
    FAILURE_STATUSES,
    Task,
    idempotency_key_problem,
    is_terminal_status,
    json_problem,
    new_idempotency_key,
)
from .records import Record as Record
from .records import local_output_path as local_output_path
from .records import request_hash as request_hash
from .records import strict_json
from .reports import flat_row, write_manifest

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
# Nullable columns added since schema 1: older versions name their columns, so they read and write on.
_ADDED_COLUMNS = (("notebook", "TEXT"),)


class JournalUnavailable(HiAPIError):
    """The journal file cannot be used; the notebook can still run without the cache."""


# Errors that mean "this file cannot be written" (as opposed to locked or corrupt):
# the journal is then opened read-only rather than not at all.
_UNWRITABLE = ("READONLY", "CANTOPEN", "PERM", "AUTH")
# SQL spelling of "a row that ended without a result" (the server's word, any case).
_FAILED_SQL = "lower(status) IN (" + ", ".join(f"'{s}'" for s in sorted(FAILURE_STATUSES)) + ")"


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


class Journal:
    """The journal file of one folder. Thread-safe; each process opens its own."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.read_only = False  # True when the file can be read but not written
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._in_batch = False
        self.notebooks = True  # False: an older read-only file that does not say which notebook
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
            self.notebooks = "notebook" in {r["name"] for r in conn.execute("PRAGMA table_info(submissions)")}
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
        notebook: str | None = None,
    ) -> tuple[Record, bool]:
        """The call made before sending a create: ``(record, True)`` means "send it".

        ``(record, False)`` is a row to reuse: a success (cached result) or a task not yet
        terminal (re-attach if it has a task id, else re-send with its idempotency key).
        Failed rows are never reused; ``fresh`` always makes a new row. ``notebook`` is not part
        of the request: a row reused by a notebook is its own when no notebook had claimed it.
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
            return Record.from_row(row), False
        with self._write() as conn:
            if not fresh:
                row = self._reusable(digest, variant, conn)
                if row is not None:
                    if notebook and row["notebook"] is None:
                        conn.execute(
                            "UPDATE submissions SET notebook = ? WHERE id = ?", (notebook, row["id"])
                        )
                    return self._fetch(conn, row["id"]), False
            cursor = conn.execute(
                "INSERT INTO submissions (request_hash, variant, model, route, storage, input, "
                "idempotency_key, status, created_at, cost_estimate, label, notebook) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    variant,
                    model,
                    route,
                    storage,
                    strict_json(input),
                    idempotency_key or new_idempotency_key(),
                    PENDING,
                    time.time(),
                    cost,
                    label,
                    notebook,
                ),
            )
            assert cursor.lastrowid is not None  # an INSERT gives the row it made
            return self._fetch(conn, cursor.lastrowid), True

    def reusable(
        self,
        model: str,
        input: dict,
        *,
        route: str | None = None,
        storage: str | None = None,
        variant: int = 0,
        server: str | None = None,
        callback: dict | None = None,
    ) -> Record | None:
        """The row ``claim`` would reuse for this request, without claiming anything: what an
        estimate asks before a batch is sent (a reused result costs nothing)."""
        row = self._reusable(request_hash(model, input, route, storage, server, callback), variant)
        return Record.from_row(row) if row else None

    def _reusable(
        self, digest: str, variant: int, conn: sqlite3.Connection | None = None
    ) -> sqlite3.Row | None:
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
                    strict_json([o.to_dict() for o in task.output]),
                    strict_json(error) if error else None,
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
                (strict_json({"code": code, "message": message}), now, rec_id),
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
            conn.execute("UPDATE submissions SET files = ? WHERE id = ?", (strict_json(ordered), rec_id))
            return self._fetch(conn, rec_id)

    # -- reading --------------------------------------------------------------------------

    def get(self, rec_id: int) -> Record | None:
        row = self._query_one("SELECT * FROM submissions WHERE id = ?", (rec_id,))
        return Record.from_row(row) if row else None

    def find_task(self, task_id: str) -> Record | None:
        row = self._query_one(
            "SELECT * FROM submissions WHERE task_id = ? ORDER BY id DESC LIMIT 1", (task_id,)
        )
        return Record.from_row(row) if row else None

    def history(
        self,
        limit: int = 20,
        *,
        text: str = "",
        model: str = "",
        status: str = "",
        notebook: str | None = None,
    ) -> list[Record]:
        """Newest first (``limit`` -1: all); ``text`` is found in the inputs (the prompt) and
        ``model`` in the name, ignoring case; ``status`` and ``notebook`` are matched whole."""
        if notebook is not None and not self.notebooks:
            return []  # an older read-only file: no row says which notebook made it
        wanted = {
            "notebook = ?": notebook,
            "input LIKE ? ESCAPE '\\'": f"%{_like(text)}%" if text else None,
            "model LIKE ? ESCAPE '\\'": f"%{_like(model)}%" if model else None,
            "status = ?": status or None,
        }
        where = {sql: value for sql, value in wanted.items() if value is not None}
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = f"SELECT * FROM submissions {clause}ORDER BY id DESC LIMIT ?"
        return [Record.from_row(r) for r in self._query(sql, (*where.values(), limit))]

    def records(self, notebook: str | None = None) -> list[Record]:
        """Every submission (``notebook``: that notebook's), oldest first, as they were made."""
        return self.history(-1, notebook=notebook)[::-1]

    def rows(self) -> list[dict]:
        """One flat dict per submission, oldest first: ``pandas.DataFrame(journal.rows())``.

        Times are Unix seconds (``pd.to_datetime(df.created_at, unit="s")``); each input
        field gets an ``input.<name>`` column, nested values as JSON text.
        """
        return [flat_row(rec) for rec in self.records()]

    def export(self, path: str | os.PathLike, records: Iterable[Record] | None = None) -> Path:
        """Write a JSON manifest of ``records`` (default: all) for a report: request, task,
        outputs, files, hashes; strict JSON, all or nothing (``reports.write_manifest``)."""
        chosen = self.records if records is None else (lambda: records)
        return write_manifest(path, chosen, journal=self.path)

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
            have = {r["name"] for r in conn.execute("PRAGMA table_info(submissions)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE submissions ADD COLUMN {name} {kind}")
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

    def sent(self) -> list[tuple[float, str, float | None]]:
        """``(created_at, model, cost_estimate)`` of every task whose create was answered,
        oldest first: what was sent from this folder (a reused result adds no row)."""
        rows = self._query(
            "SELECT created_at, model, cost_estimate FROM submissions WHERE task_id IS NOT NULL ORDER BY id"
        )
        return [(r["created_at"], r["model"], r["cost_estimate"]) for r in rows]

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
        elsewhere = "set HIAPI_HOME to use another folder"
        if kind in ("BUSY", "LOCKED"):
            problem = f"{self.path} is locked by another process (waited {self.timeout:g} s)"
            fix = f"close the other kernel using it, or {elsewhere}"
        elif kind in ("NOTADB", "CORRUPT"):
            problem, fix = f"{self.path} is not a readable journal ({reason})", f"delete it, or {elsewhere}"
        elif kind in ("CANTOPEN", "READONLY", "PERM", "IOERR", "FULL", "AUTH"):
            problem = f"cannot write {self.path} ({reason})"
            fix = "make it writable, or set HIAPI_HOME to a writable folder"
        else:
            problem, fix = f"{self.path} cannot be used ({reason})", f"delete it, or {elsewhere}"
        return f"hiapi journal unavailable: {problem}: {fix}"

    @staticmethod
    def _fetch(conn: sqlite3.Connection, rec_id: int) -> Record:
        row = conn.execute("SELECT * FROM submissions WHERE id = ?", (rec_id,)).fetchone()
        if row is None:
            raise KeyError(f"no journal record {rec_id}")
        return Record.from_row(row)

    @staticmethod
    def _append_status(conn: sqlite3.Connection, rec: Record, status: str, at: float) -> None:
        # A late poll must not pull a finished task back to "handling".
        if status == rec.status or (rec.is_terminal and not is_terminal_status(status)):
            return
        events = [*rec.events, (at, status)]
        conn.execute(
            "UPDATE submissions SET status = ?, events = ? WHERE id = ?",
            (status, strict_json(events), rec.id),
        )


def _like(text: str) -> str:
    """``text`` as itself inside a LIKE pattern (``%`` and ``_`` are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
