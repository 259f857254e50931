"""The kernel's one session: settings, client, runtime and journal, and the
rule that decides, for each request, whether to reuse a recorded result,
re-attach to a task still running, re-send an unanswered create, or submit.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import _loop, learnt_rates
from .budget import Learnt
from .client import AsyncHiAPI
from .config import Settings, hide_key
from .costs import Estimate, SessionSpend, refusal
from .downloads import remove_stale_parts
from .errors import HiAPIError, MissingAPIKeyError, SpendLimitError, in_ipython
from .journal import DEFAULT_HOME, Journal, JournalUnavailable, open_journal, resolve_home
from .models import Request
from .recorder import JournalStore, files_from_record, request_from_record, task_from_record
from .records import Record
from .runtime import Gate, Job, OutputFile, Runtime
from .timing import recorded_durations
from .views import frontend

if TYPE_CHECKING:
    from .sandbox import SandboxServer

log = logging.getLogger("hiapi_notebook")


JOURNAL_RETRY = 1.0  # seconds between tries to open a journal that could not be opened
# What the journal keys a sandbox's results by, instead of its URL (its port changes each run).
SANDBOX_SERVER = "hiapi-sandbox"
MAX_REMEMBERED = 200  # jobs a form's picker of earlier results can offer
THIS_NOTEBOOK = "this notebook"  # ``recorded``'s default: the results of the notebook asking


_RUNTIME_SETTINGS = frozenset(
    {
        "api_key",
        "base_url",
        "poll_interval",
        "max_poll_interval",
        "request_budget",
        "poll_mode",
        "max_output_mb",
        "outputs_dir",
        "journal",
        "home",
    }
)


class Session:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        # "auto" at the start leaves the choice to HIAPI_FRONTEND (read live), then detection;
        # `%hiapi config frontend=` forces one, "auto" included.
        frontend.force(None if self.settings.frontend == "auto" else self.settings.frontend)
        self._lock = threading.RLock()
        self._runtime: Runtime | None = None
        self._journal: Journal | None = None
        self._journal_problem: str | None = None
        self._journal_retry_at = 0.0  # monotonic time of the next try to open an unusable journal
        self._said_at = -JOURNAL_RETRY  # when the last line about it was printed
        # Jobs in flight by journal row, so a re-run joins its running task. Weakly: the
        # runtime holds a job until it ends; ``_seen`` and the user's names keep it after.
        self._by_record: weakref.WeakValueDictionary[tuple[str, int], Job] = weakref.WeakValueDictionary()
        # The latest results, for the form's picker. A job whose outputs are files (a journal
        # row) is small and kept outright, so a result no name holds (a plain %%hiapi cell)
        # is still offered; one holding its bytes in memory (journal off) only weakly.
        self._seen: collections.deque[Job | weakref.ref[Job]] = collections.deque(maxlen=MAX_REMEMBERED)
        self.sandbox: SandboxServer | None = None  # started by %hiapi sandbox
        self.spend = SessionSpend()  # what this kernel session sent, estimated
        self._before_sandbox: _Saved | None = None  # what entering the sandbox replaced

    # --- configuration ---
    def _configure(self, **changes: Any) -> Settings:
        with self._lock:
            self.settings = self.settings.with_changes(**changes)
            if _RUNTIME_SETTINGS & changes.keys():
                # A new client and store; jobs in flight keep the runtime they started with.
                # Other settings (default model, timeout, embed limit) are read per use, so
                # the one client, its pool and its shared rate-limit pause stay.
                self._runtime = None
            if {"home", "journal"} & changes.keys():
                self._close_journal()
            if "frontend" in changes:
                frontend.force(self.settings.frontend)
            return self.settings

    @property
    def client(self) -> AsyncHiAPI:
        return self.runtime.client

    @property
    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                s = self.settings
                client = AsyncHiAPI(
                    api_key=s.api_key,
                    base_url=s.base_url,
                    poll_interval=s.poll_interval,
                    max_poll_interval=s.max_poll_interval,
                    request_budget=s.request_budget,
                    poll_mode=s.poll_mode,
                )
                journal = self.journal
                store = JournalStore(journal, self.outputs_dir) if journal is not None else None
                if journal is not None:  # how long each model took before: the poller plans with it
                    try:
                        client.timing.learn_all(recorded_durations(journal.durations()))
                    except JournalUnavailable as exc:
                        log.warning("hiapi journal: no past durations (%s)", exc)
                    _keep_rates(client, journal, self._server_name(client.base_url))
                if store is not None:  # what a killed kernel's downloads left behind
                    _loop.worker().submit(remove_stale_parts, store.outputs_dir)
                self._runtime = Runtime(client, store, max_output_bytes=int(s.max_output_mb * 2**20))
            return self._runtime

    @property
    def outputs_dir(self) -> Path:
        """Local copies go beside the notebook: ``outputs_dir`` is relative to its folder."""
        folder = Path(self.settings.outputs_dir)
        beside = notebook_folder()
        return beside / folder if beside is not None and not folder.is_absolute() else folder

    def _home(self) -> str | Path | None:
        """The journal's folder: ``home`` or HIAPI_HOME if set, else ``.hiapi`` beside the notebook."""
        if self.settings.home is not None or os.environ.get("HIAPI_HOME"):
            return self.settings.home
        beside = notebook_folder()
        return beside / DEFAULT_HOME if beside is not None else None

    @property
    def journal(self) -> Journal | None:
        """The journal, or None when turned off or unusable. An unusable one (a full disk,
        a folder not yet writable) is tried again, at most once every ``JOURNAL_RETRY``
        seconds, and each failed try says so: paid tasks are never silently unrecorded."""
        with self._lock:
            if not self.settings.journal:
                return None
            if self._journal is None and time.monotonic() >= self._journal_retry_at:
                try:
                    self._journal = open_journal(self._home())
                except JournalUnavailable as exc:
                    self._journal_problem = str(exc)
                    self._journal_retry_at = time.monotonic() + JOURNAL_RETRY
                    self._say(f"{exc} (carrying on without the cache: tasks are not recorded until it opens)")
                else:
                    if self._journal_problem is not None:
                        self._say("hiapi journal open again: tasks are recorded from here on")
                        self._runtime = None  # the next submissions get a runtime that records them
                    self._journal_problem = None
            return self._journal

    def _say(self, line: str) -> None:
        """One line for the notebook: the user must know when results are not kept."""
        self._said_at = time.monotonic()
        print(line, file=sys.stderr)

    @property
    def journal_problem(self) -> str | None:
        return self._journal_problem

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self._journal = None
        self._journal_problem = None
        self._journal_retry_at = 0.0

    @property
    def notebook(self) -> str | None:
        """The notebook this kernel runs, as the journal names it: its path relative to the
        folder the journal serves (the one holding ``.hiapi``), or None where the front end
        names none (Colab, nbclient, a terminal, a script)."""
        from .views.frontend import notebook_file  # the one place that knows the front end

        return notebook_name(notebook_file(), resolve_home(self._home()).parent)

    def learnt_rate(self) -> str | None:
        """The key's rate and where it came from, for ``%hiapi config`` (None: no key)."""
        client = self.client
        if not client.has_key:
            return None

        async def read() -> str:
            budget = client.budget
            return budget.control.learnt().describe(budget.ceiling)

        return _loop.run_sync(read())

    def require_key(self) -> None:
        if not (self.settings.api_key or os.environ.get("HIAPI_API_KEY")):
            raise MissingAPIKeyError()

    # --- submitting ---
    @property
    def jobs(self) -> list[Job]:
        """The jobs of this kernel, oldest first (the latest ``MAX_REMEMBERED``): what a
        form offers as earlier results to use as inputs."""
        with self._lock:
            alive = (_held(entry) for entry in self._seen)
            return [job for job in alive if job is not None]

    def in_flight(self) -> list[Job]:
        """The jobs of this kernel that have not ended yet, oldest first."""
        with self._lock:
            runtime = self._runtime
            seen = [job for job in (_held(entry) for entry in self._seen) if job is not None]
        running = runtime.active if runtime is not None else []
        return [job for job in dict.fromkeys([*seen, *running]) if not job.done]

    def _remember(self, job: Job) -> Job:
        with self._lock:
            if all(_held(entry) is not job for entry in self._seen):
                self._seen.append(job if job.record_id is not None else weakref.ref(job))
        return job

    def submit(
        self,
        request: Request,
        *,
        variant: int = 0,
        fresh: bool = False,
        cost: float | None = None,
        gate: Gate | None = None,
    ) -> Job:
        """Start (or reuse) one job for ``request``; returns at once. Behind ``gate``
        the job waits for a slot before anything is sent; a recorded result needs none."""
        return self._remember(self._submit(request, variant=variant, fresh=fresh, cost=cost, gate=gate))

    def _submit(
        self, request: Request, *, variant: int, fresh: bool, cost: float | None, gate: Gate | None
    ) -> Job:
        journal = self.journal  # first: a journal open again gives a runtime that records
        runtime = self.runtime
        if journal is None:
            self.require_key()
            if self._journal_problem is not None and time.monotonic() - self._said_at >= JOURNAL_RETRY:
                self._say(f"{self._journal_problem} (this task is not recorded)")
            return self._charged(runtime.submit(request, gate=gate), cost)
        try:
            rec, new = journal.claim(
                request.model,
                request.recorded_input(),  # inline media as references: keyed on content
                route=request.route,
                storage=request.storage,
                variant=variant,
                idempotency_key=request.idempotency_key,
                fresh=fresh,
                cost=cost,
                server=self.cache_server,
                callback=dict(request.callback) if request.callback else None,
                notebook=self.notebook,
            )
        except JournalUnavailable as exc:
            self._journal_problem = str(exc)
            print(f"{exc} (this task is not recorded)", file=sys.stderr)
            self.require_key()
            return self._charged(runtime.submit(request, gate=gate), cost)
        key = (str(journal.path), rec.id)
        with self._lock:
            running = self._by_record.get(key)
            if running is not None and not running.done:
                return running  # the same cell run again while its task is in flight
        if not new and rec.succeeded:
            return self._restore(rec, request)
        self.require_key()
        req = request_from_record(rec, request)
        if not new and rec.task_id:
            job = runtime.attach(rec.task_id, req, record_id=rec.id, gate=gate)
        else:  # new, or a create that never got its answer: same key, so the server replays
            job = self._charged(runtime.submit(req, record_id=rec.id, gate=gate), cost)
        with self._lock:
            self._by_record[key] = job
        return job

    def _charged(self, job: Job, cost: float | None) -> Job:
        """Count ``job`` in this session's spend until it turns out it was never created."""
        charge = self.spend.charge(job.request.model, cost)

        def ended(_future: Any) -> None:
            if job.task_id is None:  # refused (a 402, say) or stopped before its turn: not billed
                self.spend.drop(charge)

        job.future.add_done_callback(ended)
        return job

    def reuses(self, request: Request, *, variant: int, fresh: bool) -> bool:
        """Would ``submit`` serve this from the journal or a task already sent (nothing to pay)?
        Asked before anything is sent, for the estimate; a journal that cannot say means no."""
        journal = self.journal
        if journal is None or fresh:
            return False
        try:
            rec = journal.reusable(
                request.model,
                request.recorded_input(),
                route=request.route,
                storage=request.storage,
                variant=variant,
                server=self.runtime.client.base_url,
                callback=dict(request.callback) if request.callback else None,
            )
        except (JournalUnavailable, ValueError):
            return False
        if rec is None:
            return False
        with self._lock:
            running = self._by_record.get((str(journal.path), rec.id))
        return rec.succeeded or rec.task_id is not None or (running is not None and not running.done)

    def check_spend(self, estimate: Estimate, *, yes: bool = False) -> None:
        """Refuse (``SpendLimitError``, one line) a submission that would take this session past
        its ``spend_limit``; ``yes`` sends it anyway. Nothing has been sent when this raises."""
        limit = self.settings.spend_limit
        if yes or limit is None:
            return
        line = refusal(estimate, self.spend.total, limit, in_notebook=in_ipython())
        if line is not None:
            raise SpendLimitError(line)

    def recorded(
        self, limit: int, skip: Collection[str] = (), *, notebook: str | None = THIS_NOTEBOOK
    ) -> list[Job]:
        """The journal's latest successes whose local copies are all still here, newest first,
        as finished jobs (nothing is sent), leaving out the task ids in ``skip``: what the
        form's picker offers beyond this kernel's own results, after a restart say.

        ``notebook``: whose results; by default this notebook's (``Session.notebook``; the
        whole folder's where the front end names no notebook), ``None`` the whole folder's,
        or a notebook as ``Session.notebook`` names it."""
        journal = self.journal
        if journal is None or limit <= 0:
            return []
        if notebook == THIS_NOTEBOOK:
            notebook = self.notebook
        try:
            records = journal.history(limit + len(skip), status="success", notebook=notebook)
        except JournalUnavailable:
            return []
        jobs = []
        for rec in records:
            files = files_from_record(rec, self.outputs_dir)
            if rec.task_id in skip or not files or any(f.problem is not None for f in files):
                continue  # a copy is missing (``problem`` says so): not offered
            jobs.append(self._restore(rec, None, files))
            if len(jobs) >= limit:
                break
        return jobs

    def _restore(self, rec: Record, request: Request | None, files: list[OutputFile] | None = None) -> Job:
        """A recorded success as a finished job: nothing is sent (a missing local copy is
        fetched again while its URL lives). ``files``: the record's, when already read."""
        job = self.runtime.restore(
            request_from_record(rec, request),
            task_from_record(rec),
            files if files is not None else files_from_record(rec, self.outputs_dir),
            record_id=rec.id,
            started=rec.created_at,
            finished=rec.completed_at,
        )
        if self.cache_server == SANDBOX_SERVER and not _served_by(job, job.server):
            job.server = None  # made by an earlier sandbox: its URLs died with it, send the copies
        return job

    def attach(self, task_id: str) -> Job:
        """Watch any task by id; journal rows are kept up to date when it has one."""
        return self._remember(self._attach(task_id))

    def _attach(self, task_id: str) -> Job:
        self.require_key()
        journal = self.journal
        rec = journal.find_task(task_id) if journal is not None else None
        if rec is not None and rec.succeeded:
            job = self._restore(rec, None)
            job.looked_up = True  # shown by id: no cell to re-run, no --fresh to offer
            return job
        with self._lock:  # already followed here (say a --no-wait cell): show that job
            running = next((j for j in self._by_record.values() if j.task_id == task_id and not j.done), None)
        if running is not None:
            return running
        req = request_from_record(rec, None) if rec is not None else None
        job = self.runtime.attach(task_id, req, record_id=rec.id if rec else None)
        if rec is not None and journal is not None:
            with self._lock:
                self._by_record[(str(journal.path), rec.id)] = job
        return job

    # --- the built-in sandbox ---
    def start_sandbox(self, speed: float = 1.0, port: int = 0, balance: float | None = None) -> str:
        """Start (once) and use the in-kernel sandbox. The environment points at it
        too, so a plain ``HiAPI()`` made in this kernel reaches the same server.
        ``balance``: USD it bills each task's estimate against (402 once spent)."""
        from .sandbox import SandboxServer

        if self.sandbox is None:
            self.sandbox = SandboxServer(port=port, speed=speed, balance=balance).start()
        if not self.using_builtin_sandbox:  # entering: remember what to give back on leaving
            self._before_sandbox = _Saved(
                {name: os.environ.get(name) for name in _sandbox_env(self.sandbox.url)},
                self.settings.base_url,
                self.settings.api_key,
            )
        os.environ.update(_sandbox_env(self.sandbox.url))
        self.configure(base_url=self.sandbox.url, api_key="sandbox")
        return self.sandbox.url

    @property
    def using_builtin_sandbox(self) -> bool:
        return self.sandbox is not None and self.settings.base_url == self.sandbox.url

    @property
    def cache_server(self) -> str:
        """The server a recorded result belongs to, as the journal keys it: the base URL,
        except for a sandbox on this machine, which is one server whatever port it got
        (each kernel, terminal or headless run starts its own on a free port)."""
        return self._server_name(self.runtime.client.base_url)

    def _server_name(self, base_url: str) -> str:
        if self.using_builtin_sandbox or (os.environ.get("HIAPI_SANDBOX") == "1" and _on_loopback(base_url)):
            return SANDBOX_SERVER
        return base_url

    def configure(self, **changes: Any) -> Settings:
        """Change settings; leaving the built-in sandbox (another base_url, or a login)
        gives back the environment and the key that were there before it, so a real
        key is neither lost nor replaced by the sandbox's."""
        if "api_key" in changes:
            changes["api_key"] = hide_key(changes["api_key"])
        sandbox = self.sandbox if self.using_builtin_sandbox else None
        if sandbox is None or "base_url" not in changes or changes["base_url"] == sandbox.url:
            return self._configure(**changes)  # not leaving the built-in sandbox
        saved = self._before_sandbox or _Saved({}, None, None)
        if "api_key" not in changes:
            changes["api_key"] = saved.api_key
        if changes["base_url"] is None:  # "not the sandbox": back to the server used before it
            changes["base_url"] = saved.base_url
        settings = self._configure(**changes)  # first: a refused change leaves the sandbox on
        for name, value in _sandbox_env(sandbox.url).items():
            if os.environ.get(name) == value:  # untouched since: give back what was there
                if saved.env.get(name) is None:
                    del os.environ[name]
                else:
                    os.environ[name] = saved.env[name]
        self._before_sandbox = None
        return settings


def notebook_folder() -> Path | None:
    """The folder of the notebook this kernel runs, when the front end names it by an
    absolute path that is not the working folder (where everything goes otherwise).
    papermill and nbclient name none: their kernel works in the folder given by ``--cwd``."""
    from .views.frontend import notebook_file  # the one place that knows the front end

    named = notebook_file()
    if not named or not Path(named).is_absolute():  # a server's relative path: the kernel starts beside it
        return None
    try:
        folder = Path(named).parent.resolve()
        if not folder.is_dir() or folder == Path.cwd().resolve():
            return None
    except OSError:
        return None
    return folder


def _served_by(job: Job, base_url: str | None) -> bool:
    """Whether every output URL of ``job`` is on the server at ``base_url``."""
    origin = urlsplit(base_url or "")
    outputs = job.task.output if job.task is not None else []
    return all(urlsplit(o.url)[:2] == origin[:2] for o in outputs)


def _on_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _keep_rates(client: AsyncHiAPI, journal: Journal, server: str) -> None:
    """The key's rate on ``server`` (as the journal names it: one sandbox whatever its
    port) starts where an earlier kernel left it, and what this one learns is kept
    (written on the worker thread, off the loop)."""
    fingerprint = client.key_fingerprint
    if fingerprint is None:
        return
    key = learnt_rates.key_id(fingerprint)
    client.learnt_rate = learnt_rates.recall(journal, server, key)

    def keep(learnt: Learnt) -> None:
        _loop.worker().submit(learnt_rates.remember, journal, server, key, learnt)

    client.on_learn = keep


def _sandbox_env(url: str) -> dict[str, str]:
    return {"HIAPI_BASE_URL": url, "HIAPI_API_KEY": "sandbox"}


class _Saved:
    """The environment and settings entering the sandbox replaced (the key shows as hidden)."""

    def __init__(self, env: dict[str, str | None], base_url: str | None, api_key: str | None) -> None:
        self.env = {name: hide_key(value) for name, value in env.items()}
        self.base_url = base_url
        self.api_key = hide_key(api_key)

    def __repr__(self) -> str:
        return f"<settings before the sandbox: base_url={self.base_url!r}>"


_session: Session | None = None
_session_lock = threading.Lock()


def get_session() -> Session:
    global _session
    with _session_lock:
        if _session is None:
            _session = Session()
        return _session


def reset_session(settings: Settings | None = None) -> Session:
    """A fresh session (tests, or a clean slate in a notebook)."""
    global _session
    with _session_lock:
        _session = Session(settings)
        return _session


def notebook_name(path: str | None, folder: Path) -> str | None:
    """A notebook's path as the journal keeps it: relative to ``folder`` when inside it, so
    the names stay when the folder moves; as given otherwise (a path the front end gave
    relative to its own root stays the same for every kernel of that notebook)."""
    if not path:
        return None
    given = Path(path)
    if given.is_absolute():
        try:
            return given.resolve().relative_to(folder.resolve()).as_posix()
        except (ValueError, OSError):
            return given.as_posix()
    return given.as_posix()


def _held(entry: Job | weakref.ref[Job]) -> Job | None:
    return entry() if isinstance(entry, weakref.ref) else entry


__all__ = ["HiAPIError", "Session", "get_session", "reset_session"]
