"""HTTP client for HiAPI's task API: ``AsyncHiAPI`` and its sync facade ``HiAPI``.

``AsyncHiAPI`` is the implementation (httpx, one connection pool for hundreds
of concurrent waits). ``HiAPI`` runs the same coroutines on the package's one
background loop, so it works from a script and from inside a running notebook
cell, where ``asyncio.run`` would fail.

The retry policy (``retry``), output downloads (``downloads``), callback checks
(``webhooks``) and the one object holding the API key (``auth``) have modules of their
own; the public names of the first three are importable from here too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from . import _loop
from .auth import auth_for
from .budget import Learnt, RequestBudget, budget_for, check_rate
from .config import check_setting
from .downloads import MEDIA_CONCURRENCY as MEDIA_CONCURRENCY
from .downloads import MEDIA_TYPES, Downloads
from .downloads import Download as Download
from .errors import (
    APIConnectionError,
    HiAPIError,
    MissingAPIKeyError,
    PollTimeout,
    RateLimitError,
    RequestValidationError,
    TaskFailed,
    error_for,
)
from .models import (
    CreatedTask,
    Task,
    TaskPage,
    base_url_problem,
    idempotency_key_problem,
    json_problem,
    new_idempotency_key,
    number_problem,
    task_id_problem,
    wait_timeout_problem,
)
from .poller import Poller, watch
from .retry import MAX_RETRY_AFTER as MAX_RETRY_AFTER
from .retry import parse_retry_after as parse_retry_after
from .retry import retry_delay as retry_delay
from .retry import should_retry as should_retry
from .retry import twin_in_flight
from .timing import Pace, TimingModel
from .timing import poll_delay as poll_delay  # the schedule of a model never seen, as before
from .webhooks import WEBHOOK_TOLERANCE as WEBHOOK_TOLERANCE
from .webhooks import verify_webhook as verify_webhook

log = logging.getLogger("hiapi_notebook")

DEFAULT_BASE_URL = "https://api.hiapi.ai/v1"
API_CONCURRENCY = 8  # API calls at once: with one poller and a request budget, plenty
DEFAULT_BUDGET: float | None = None  # no ceiling: the key's rate is learnt from its answers
UpdateHook = Callable[[Task], Any]


def normalize_base_url(url: str) -> str:
    problem = base_url_problem(url)
    if problem:
        raise RequestValidationError(problem)
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _check_callback(callback: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if callback is None:
        return None
    if isinstance(callback, str):
        callback = {"url": callback}
    url = str(callback.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise RequestValidationError(
            f"callback url must be an http(s) URL (got {url!r}); e.g. https://example.com/hook"
        )
    out = {"when": "final", **callback}
    if out["when"] != "final":
        raise RequestValidationError("callback 'when' accepts only \"final\"")
    return out


class AsyncTasks:
    """``client.tasks``: create, retrieve, list, wait and run."""

    def __init__(self, client: AsyncHiAPI) -> None:
        self._client = client

    async def create(
        self,
        model: str,
        input: Mapping[str, Any],
        *,
        callback: Mapping[str, Any] | None = None,
        route: str | None = None,
        idempotency_key: str | None = None,
        storage: str | None = None,
    ) -> CreatedTask:
        if not model or not isinstance(model, str):
            raise RequestValidationError("model must be a non-empty string, e.g. 'gpt-image-2'")
        if not isinstance(input, Mapping):
            raise RequestValidationError("input must be a JSON object (a dict)")
        if route is not None and not isinstance(route, str):
            raise RequestValidationError(f"route must be a string, not {type(route).__name__}")
        if storage is not None and not isinstance(storage, str):
            raise RequestValidationError(f"storage must be a string, not {type(storage).__name__}")
        body: dict[str, Any] = {"model": model, "input": dict(input)}
        cb = _check_callback(callback)
        if cb:
            body["callback"] = cb
        if route:
            body["route"] = route
        if storage:
            body["storage"] = storage
        key = idempotency_key or new_idempotency_key()
        problem = idempotency_key_problem(key) or json_problem(body, "body")
        if problem:
            raise RequestValidationError(problem.removeprefix("body."))
        data, headers = await self._client._request("POST", "/tasks", json_body=body, idempotency_key=key)
        task_id = (data or {}).get("taskId") if isinstance(data, Mapping) else None
        if not task_id:
            raise APIConnectionError("HiAPI answered a create without a taskId")
        replay = headers.get("idempotent-replay", "").lower() == "true"
        return CreatedTask(task_id=task_id, idempotent_replay=replay, idempotency_key=key)

    async def retrieve(self, task_id: str) -> Task:
        problem = task_id_problem(task_id)
        if problem:
            raise RequestValidationError(problem)
        data, _ = await self._client._request("GET", f"/tasks/{task_id}")
        return Task.from_dict(data if isinstance(data, Mapping) else {})

    async def list(self, page: int = 1, size: int = 20) -> TaskPage:
        problem = number_problem("page", page, 1, 10**9, integer=True) or number_problem(
            "size", size, 1, 100, integer=True
        )
        if problem:
            raise RequestValidationError(problem)
        data, _ = await self._client._request("GET", "/tasks", params={"page": page, "size": size})
        return TaskPage.from_dict(data if isinstance(data, Mapping) else {})

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = 600,
        on_update: UpdateHook | None = None,
        model: str | None = None,
        route: str | None = None,
        since: float | None = None,
    ) -> Task:
        """Follow the task until it ends; ``on_update`` hears every status seen.

        The client's one poller asks, for every task in flight together, when the
        model's durations say an end is likely; ``model``, ``route`` and ``since``
        (the create's Unix time) let it plan from the start. An outage or a busy
        server never ends the wait, only ``timeout`` does. A task that ends without a
        result (``fail``, ``cancelled``, ``error``… in any case) raises ``TaskFailed``;
        running out of ``timeout`` raises ``PollTimeout`` (the task may still finish)."""
        problem = task_id_problem(task_id) or wait_timeout_problem(timeout)
        if problem:
            raise RequestValidationError(problem)
        if self._client._auth is None:
            raise MissingAPIKeyError()
        poller = self._client.poller
        entry = poller.follow(task_id, model=model, route=route, since=since)

        async def heard(task: Task) -> None:
            if on_update is not None:
                result = on_update(task)
                if inspect.isawaitable(result):
                    await result

        try:
            task = await watch(poller, entry, timeout=timeout, on_change=heard)
        except TimeoutError:
            raise PollTimeout(task_id, math.inf if timeout is None else timeout) from None
        if task.failed:
            raise TaskFailed(task)
        return task

    async def run(
        self,
        model: str,
        input: Mapping[str, Any],
        *,
        callback: Mapping[str, Any] | None = None,
        route: str | None = None,
        idempotency_key: str | None = None,
        storage: str | None = None,
        timeout: float | None = 600,
        on_update: UpdateHook | None = None,
    ) -> Task:
        problem = wait_timeout_problem(timeout)
        if problem:  # before the create: a wait that cannot work must not cost a task
            raise RequestValidationError(problem)
        created = await self.create(
            model, input, callback=callback, route=route, idempotency_key=idempotency_key, storage=storage
        )
        return await self.wait(
            created.task_id, timeout=timeout, on_update=on_update, model=model, route=route, since=time.time()
        )


class AsyncHiAPI:
    """The async client. One instance shares its pool, its poller and its
    concurrency limit across every task it carries; every client of a key in
    the process shares that key's request budget (creates and polls together: a
    rate learnt from the server's answers, ``request_budget`` requests a second at
    most when given; see ``budget``)."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        max_concurrency: int = API_CONCURRENCY,
        request_budget: float | None = DEFAULT_BUDGET,
        poll_mode: str = "list",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth, problem = auth_for(api_key)
        del api_key  # from here on only the auth object holds the key (see BearerAuth)
        problem = problem or _numbers_problem(
            timeout=timeout,
            max_retries=max_retries,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            max_concurrency=max_concurrency,
        )
        problem = problem or _budget_problem(request_budget)
        if problem:
            raise RequestValidationError(problem)
        request_budget = check_setting("request_budget", request_budget, "request_budget")
        check_setting("poll_mode", poll_mode, "poll_mode")
        # (the environment is read in a helper: a verbose traceback of a line that spelled
        # out os.environ would print all of it, HIAPI_API_KEY included)
        self.base_url = normalize_base_url(base_url or _env("HIAPI_BASE_URL") or DEFAULT_BASE_URL)
        self.timeout = timeout
        self.max_retries = max_retries
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.max_concurrency = max_concurrency
        self.request_budget = request_budget
        self.poll_mode = poll_mode
        # What the journal remembers of this key's rate, and who hears what it learns
        # (the session; the client layer knows no journal).
        self.learnt_rate: Learnt | None = None
        self.on_learn: Callable[[Learnt], None] | None = None
        # What this client learns of each model's durations (the session adds the journal's).
        self.timing = TimingModel(Pace.between(poll_interval, max_poll_interval))
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Semaphore | None = None  # API calls in flight
        self._downloads: Downloads | None = None  # output downloads, with slots of their own
        self._poller: Poller | None = None  # bound to the loop, like the pool
        self._poller_loop: asyncio.AbstractEventLoop | None = None
        self.is_sandbox: bool | None = None  # learnt from the X-HiAPI-Sandbox header
        self.tasks = AsyncTasks(self)

    def __repr__(self) -> str:
        # getattr: a client whose __init__ refused its arguments still shows in a traceback
        key = "set" if getattr(self, "_auth", None) is not None else "missing"
        return f"AsyncHiAPI(base_url={getattr(self, 'base_url', None)!r}, key={key})"

    @property
    def has_key(self) -> bool:
        return self._auth is not None

    @property
    def key_fingerprint(self) -> str | None:
        """A digest naming the key (its budget's, and its learnt rate's), never the key."""
        return self._auth.fingerprint if self._auth is not None else None

    def _ensure_http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            # httpx pools are bound to the loop that made them.
            self._http = httpx.AsyncClient(
                timeout=self.timeout,
                transport=self._transport,
                follow_redirects=True,
                limits=httpx.Limits(
                    max_connections=self.max_concurrency + MEDIA_CONCURRENCY,
                    max_keepalive_connections=self.max_concurrency,
                ),
            )
            self._http_loop = loop
            # Requests wait here, not in httpx's pool, whose bookkeeping grows with
            # every request queued in it; downloads get slots of their own so a long
            # video never holds up the polls.
            self._gate = asyncio.Semaphore(self.max_concurrency)
            self._downloads = Downloads(self._http, slots=MEDIA_CONCURRENCY)
        if self._poller is None or self._poller_loop is not loop:  # one per loop, even after a close
            self._poller = Poller(
                self._poll_page, self._poll_task, self.timing, mode=self.poll_mode, on_plan=self._expect_poll
            )
            self._poller_loop = loop
        return self._http

    @property
    def poller(self) -> Poller:
        """The one poller of this client on the running loop."""
        self._ensure_http()
        assert self._poller is not None
        return self._poller

    @property
    def budget(self) -> RequestBudget:
        """This key's request budget on the running loop."""
        if self._auth is None:
            raise MissingAPIKeyError()
        budget = budget_for(self.base_url, self._auth.fingerprint, self.request_budget, self.learnt_rate)
        if self.on_learn is not None:
            budget.on_learn = self.on_learn
        return budget

    def _expect_poll(self, at: float | None) -> None:
        if self._auth is not None:
            self.budget.expect(None if at is None else time.monotonic() + (at - time.time()))

    async def _poll_page(self, page: int, size: int) -> TaskPage:
        data, _ = await self._request("GET", "/tasks", params={"page": page, "size": size}, urgent=True)
        return TaskPage.from_dict(data if isinstance(data, Mapping) else {})

    async def _poll_task(self, task_id: str) -> Task:
        data, _ = await self._request("GET", f"/tasks/{task_id}", urgent=True)
        return Task.from_dict(data if isinstance(data, Mapping) else {})

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        urgent: bool = False,
    ) -> tuple[Any, httpx.Headers]:
        """One API call with its retries; every attempt waits for a turn of the key's
        budget (``urgent``: the poller's, which go first)."""
        if self._auth is None:
            raise MissingAPIKeyError()
        http = self._ensure_http()
        budget = self.budget
        headers = {"Accept": "application/json", "User-Agent": "hiapi-notebook"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        content: bytes | None = None
        if json_body is not None:
            # Strict JSON: NaN and Infinity were refused with the field's name before this.
            text = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            content = text.encode()
            headers["Content-Type"] = "application/json"
        url = self.base_url + path
        attempt = 0
        began = time.monotonic()
        while True:
            turn = await budget.acquire(urgent)
            status: int | None = None
            error_code: str | None = None
            retry_after: float | None = None
            failure: HiAPIError
            try:
                assert self._gate is not None
                async with self._gate:
                    resp = await http.request(
                        method, url, content=content, params=params, headers=headers, auth=self._auth
                    )
            except httpx.InvalidURL as exc:
                failure = RequestValidationError(f"cannot send to {url[:120]!r}: {exc}")
                status = 0  # not worth a retry: the URL is wrong, not the network
            except Exception as exc:
                # httpx errors, and whatever else the network stack throws at us (an
                # ExceptionGroup from a connect, an OverflowError for a bad port): one line,
                # built here and raised below, outside this block, so the exception carries
                # no chain back into httpcore's frames (which hold the request's headers).
                failure = APIConnectionError(
                    f"Could not reach HiAPI at {self.base_url} ({_network_reason(exc)}); "
                    "check your network and HIAPI_BASE_URL"
                )
            else:
                if "x-hiapi-sandbox" in resp.headers:
                    self.is_sandbox = True
                status = resp.status_code
                if status != 429:
                    budget.answered()  # the key was not limited: its rate may grow
                envelope = _decode(resp)
                if 200 <= status < 300 and envelope is not None:
                    return envelope.get("data"), resp.headers
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if envelope is None:
                    failure = (
                        error_for(status, None, f"unexpected non-JSON answer ({len(resp.content)} bytes)")
                        if status >= 300
                        else APIConnectionError(f"HiAPI answered {status} with a body that is not JSON")
                    )
                else:
                    error_code = envelope.get("error_code")
                    failure = error_for(status, error_code, str(envelope.get("message") or ""), retry_after)
                if status == 429 or (status == 503 and retry_after):
                    pause = None if retry_after is None else min(retry_after, MAX_RETRY_AFTER)
                    budget.penalize(pause, limited=status == 429, sent_at=turn)
            if (
                (
                    attempt >= self.max_retries
                    and not twin_in_flight(status, error_code, time.monotonic() - began)
                )
                or status == 0
                or not should_retry(method, status, error_code, idempotent_post=bool(idempotency_key))
            ):
                if isinstance(failure, RateLimitError) and attempt:
                    failure.message += f" [gave up after {attempt + 1} attempts]"
                    failure.args = (failure.message,)
                raise failure
            delay = retry_delay(min(attempt, self.max_retries), retry_after)
            log.debug("retrying %s %s after %s in %.2fs", method, path, status or "network error", delay)
            attempt += 1
            await asyncio.sleep(delay)

    async def fetch(
        self, url: str, *, max_bytes: int = 200 * 2**20, within: float | None = None
    ) -> tuple[bytes, str]:
        """An output's bytes and content type (no API key is sent to media hosts), in at most
        ``within`` seconds, every attempt together."""
        return await self._downloader().fetch(
            url, max_bytes=max_bytes, max_retries=self.max_retries, within=within
        )

    async def download(
        self,
        url: str,
        dest: Path | str,
        *,
        max_bytes: int = 2 * 2**30,
        accept: tuple[str, ...] = MEDIA_TYPES,
        within: float | None = None,
    ) -> Download:
        """Stream an output to ``dest`` (via a temporary file, never whole in memory).

        A dropped connection, a cut-short body, a 5xx or a 429 is tried again, with
        backoff, like an API call: one bad minute of a CDN must not lose a paid result.
        403, 404 and 410 are a real expiry (``OutputExpiredError``); a full disk or an
        unwritable folder is an ``OSError``, not worth an immediate retry. All of it takes
        at most ``within`` seconds (10 minutes when None)."""
        return await self._downloader().download(
            url, dest, max_bytes=max_bytes, accept=accept, max_retries=self.max_retries, within=within
        )

    def _downloader(self) -> Downloads:
        """This client's downloads on the running loop."""
        self._ensure_http()
        assert self._downloads is not None
        return self._downloads

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    close = aclose

    async def __aenter__(self) -> AsyncHiAPI:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _env(name: str) -> str | None:
    return os.environ.get(name)


def _network_reason(exc: BaseException) -> str:
    """The innermost exception's type: an ``ExceptionGroup`` from a connect names its cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__


def _numbers_problem(**values: Any) -> str | None:
    ranges = {
        "timeout": (0.001, 3600.0, False),
        "max_retries": (0, 20, True),
        "poll_interval": (0.01, 3600.0, False),
        "max_poll_interval": (0.01, 3600.0, False),
        "max_concurrency": (1, 1000, True),
    }
    for name, value in values.items():
        lo, hi, integer = ranges[name]
        problem = number_problem(name, value, lo, hi, integer=integer)
        if problem:
            return problem
    return None


def _budget_problem(request_budget: Any) -> str | None:
    """Why ``request_budget`` cannot be a ceiling (None: it can, or there is none)."""
    if request_budget is None:
        return None
    try:
        check_rate(request_budget)
    except ValueError as exc:
        return f"{exc} (or None: no ceiling)"
    return None


def _decode(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class _SyncTasks:
    def __init__(self, inner: AsyncTasks) -> None:
        self._inner = inner

    def create(self, model: str, input: Mapping[str, Any], **kw: Any) -> CreatedTask:
        return _loop.run_sync(self._inner.create(model, input, **kw))

    def retrieve(self, task_id: str) -> Task:
        return _loop.run_sync(self._inner.retrieve(task_id))

    def list(self, page: int = 1, size: int = 20) -> TaskPage:
        return _loop.run_sync(self._inner.list(page, size))

    def wait(self, task_id: str, **kw: Any) -> Task:
        return _loop.run_sync(self._inner.wait(task_id, **kw))

    def run(self, model: str, input: Mapping[str, Any], **kw: Any) -> Task:
        return _loop.run_sync(self._inner.run(model, input, **kw))


class HiAPI:
    """Blocking facade over ``AsyncHiAPI``; usable in scripts and notebook cells."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, **kw: Any) -> None:
        # Handed over in a box emptied as the call starts: this frame no longer holds the key
        # when ``AsyncHiAPI`` refuses an argument (a ``%xmode Verbose`` traceback prints every
        # frame's variables, this one's too).
        box = [api_key]
        del api_key
        self._async = AsyncHiAPI(box.pop(), base_url, **kw)
        self.tasks = _SyncTasks(self._async.tasks)

    def __repr__(self) -> str:
        inner = getattr(self, "_async", None)
        return repr(inner).replace("AsyncHiAPI", "HiAPI", 1) if inner is not None else "HiAPI(not set up)"

    @property
    def base_url(self) -> str:
        return self._async.base_url

    def close(self) -> None:
        _loop.run_sync(self._async.aclose())

    def __enter__(self) -> HiAPI:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
