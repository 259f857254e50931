"""HTTP client for HiAPI's task API: ``AsyncHiAPI`` and its sync facade ``HiAPI``.

``AsyncHiAPI`` is the implementation (httpx, one connection pool for hundreds
of concurrent waits). ``HiAPI`` runs the same coroutines on the package's one
background loop, so it works from a script and from inside a running notebook
cell, where ``asyncio.run`` would fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from . import _loop
from .budget import RequestBudget, budget_for
from .errors import (
    APIConnectionError,
    HiAPIError,
    MissingAPIKeyError,
    OutputExpiredError,
    OutputRefusedError,
    PollTimeout,
    RateLimitError,
    RequestValidationError,
    TaskFailed,
    WebhookVerificationError,
    error_for,
)
from .models import (
    CreatedTask,
    Task,
    TaskPage,
    api_key_problem,
    base_url_problem,
    idempotency_key_problem,
    json_problem,
    new_idempotency_key,
    number_problem,
    task_id_problem,
    wait_timeout_problem,
)
from .poller import Poller, watch
from .timing import Pace, TimingModel
from .timing import poll_delay as poll_delay  # the schedule of a model never seen, as before

log = logging.getLogger("hiapi_notebook")

DEFAULT_BASE_URL = "https://api.hiapi.ai/v1"
MAX_RETRY_AFTER = 60.0  # as HiAPI's own SDK: never sleep longer on a server's word
MEDIA_CONCURRENCY = 8  # output downloads at once, beside the API calls
API_CONCURRENCY = 8  # API calls at once: with one poller and a request budget, plenty
DEFAULT_BUDGET = 2.0  # requests a second per key, creates and polls together
WEBHOOK_TOLERANCE = 300
UpdateHook = Callable[[Task], Any]


# --- retry policy: small pure functions, testable with no network and no sleep ---


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` given in seconds or as an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def should_retry(method: str, status: int | None, error_code: str | None, idempotent_post: bool) -> bool:
    """Whether a failed attempt may be sent again.

    429, 503 and 409 IDEMPOTENCY_KEY_PROCESSING mean the server did nothing yet.
    Other 5xx and network errors (``status is None``) leave a POST in an unknown
    state: it is only safe to resend with an idempotency key, which replays the
    first task instead of billing twice.
    """
    if error_code == "MODEL_UNAVAILABLE":
        return False  # retrying won't help soon; the user should hear it
    if status in (429, 503) or (status == 409 and error_code == "IDEMPOTENCY_KEY_PROCESSING"):
        return True
    if status is None or status >= 500:
        return method == "GET" or idempotent_post
    return False


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float = 0.5,
    cap: float = 8.0,
    rng: random.Random | None = None,
) -> float:
    """The server's ``Retry-After`` (capped) when given, else exponential backoff
    with jitter, so many waiting tasks do not retry in lockstep."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    exp = min(cap, base * (2**attempt))
    return exp * (0.5 + 0.5 * (rng or random).random())


def normalize_base_url(url: str) -> str:
    problem = base_url_problem(url)
    if problem:
        raise RequestValidationError(problem)
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>`` to each request as it leaves.

    The header is put together here, once, from a key already checked to be plain
    ASCII, so adding it cannot fail. No frame of the request path holds the key in
    a local (only this object does, and it shows as hidden): a traceback printed with
    every frame's variables (``%xmode Verbose``) therefore cannot reveal it.
    """

    def __init__(self, header: str) -> None:
        self._header = header
        # names this key (its request budget is shared by every client using it) without holding it
        self.fingerprint = hashlib.sha256(header.encode()).hexdigest()

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "<HiAPI key hidden>"


def _auth_for(api_key: str | None) -> tuple[_BearerAuth | None, str | None]:
    """The auth for ``api_key`` (else ``HIAPI_API_KEY``), or why the key is malformed.

    Returns instead of raising, so the key is out of every frame by the time the
    caller raises the one-line error."""
    key = api_key if api_key is not None else os.environ.get("HIAPI_API_KEY")
    if not key:
        return None, None
    problem = api_key_problem(key)
    if problem:
        return None, problem if api_key is not None else f"HIAPI_API_KEY: {problem}"
    return _BearerAuth("Bearer " + str.__str__(key)), None


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


@dataclass(frozen=True)
class Download:
    path: Path
    sha256: str
    bytes: int
    content_type: str


class AsyncTasks:
    """``client.tasks``: create, retrieve, list, wait and run."""

    def __init__(self, client: AsyncHiAPI) -> None:
        self._client = client

    async def create(
        self,
        model: str,
        input: Mapping[str, Any],
        *,
        callback=None,
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
            raise PollTimeout(task_id, timeout) from None
        if task.failed:
            raise TaskFailed(task)
        return task

    async def run(
        self,
        model: str,
        input: Mapping[str, Any],
        *,
        callback=None,
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
    the process shares that key's request budget (``request_budget`` requests a
    second, creates and polls together; a 429 pauses all and lowers it)."""

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
        request_budget: float = DEFAULT_BUDGET,
        poll_mode: str = "list",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth, problem = _auth_for(api_key)
        del api_key  # from here on only the auth object holds the key (see _BearerAuth)
        problem = problem or _numbers_problem(
            timeout=timeout,
            max_retries=max_retries,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            max_concurrency=max_concurrency,
        )
        if problem:
            raise RequestValidationError(problem)
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
        # What this client learns of each model's durations (the session adds the journal's).
        self.timing = TimingModel(Pace.between(poll_interval, max_poll_interval))
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Semaphore | None = None  # API calls in flight
        self._media_gate: asyncio.Semaphore | None = None  # downloads in flight
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
            self._media_gate = asyncio.Semaphore(MEDIA_CONCURRENCY)
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
        return budget_for(self.base_url, self._auth.fingerprint, self.request_budget)

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
        content = None
        if json_body is not None:
            # Strict JSON: NaN and Infinity were refused with the field's name before this.
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            content = content.encode()
            headers["Content-Type"] = "application/json"
        url = self.base_url + path
        attempt = 0
        while True:
            await budget.acquire(urgent)
            status: int | None = None
            error_code: str | None = None
            retry_after: float | None = None
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
                failure: HiAPIError = APIConnectionError(
                    f"Could not reach HiAPI at {self.base_url} ({_network_reason(exc)}); "
                    "check your network and HIAPI_BASE_URL"
                )
            else:
                if "x-hiapi-sandbox" in resp.headers:
                    self.is_sandbox = True
                status = resp.status_code
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
                    budget.penalize(pause, limited=status == 429)
            if (
                attempt >= self.max_retries
                or status == 0
                or not should_retry(method, status, error_code, idempotent_post=bool(idempotency_key))
            ):
                if isinstance(failure, RateLimitError) and attempt:
                    failure.message += f" [gave up after {attempt + 1} attempts]"
                    failure.args = (failure.message,)
                raise failure
            delay = retry_delay(attempt, retry_after)
            log.debug("retrying %s %s after %s in %.2fs", method, path, status or "network error", delay)
            attempt += 1
            await asyncio.sleep(delay)

    async def fetch(self, url: str, *, max_bytes: int = 200 * 2**20) -> tuple[bytes, str]:
        """An output's bytes and content type (no API key is sent to media hosts)."""

        async def once() -> tuple[bytes, str]:
            chunks: list[bytes] = []
            ctype = ""
            async with aclosing(self._stream(url, max_bytes)) as stream:
                async for ctype, chunk in stream:  # noqa: B007 (ctype: the last is kept)
                    chunks.append(chunk)
            return b"".join(chunks), ctype

        return await self._retrying(once)

    async def download(
        self,
        url: str,
        dest: Path | str,
        *,
        max_bytes: int = 2 * 2**30,
        accept: tuple[str, ...] = ("image/", "video/", "audio/", "application/octet-stream"),
    ) -> Download:
        """Stream an output to ``dest`` (via a temporary file, never whole in memory).

        A dropped connection, a cut-short body, a 5xx or a 429 is tried again, with
        backoff, like an API call: one bad minute of a CDN must not lose a paid result.
        403, 404 and 410 are a real expiry (``OutputExpiredError``); a full disk or an
        unwritable folder is an ``OSError``, not worth an immediate retry."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)

        async def once() -> Download:
            # A name of its own: two kernels (or jobs) keeping the same output never
            # write into one temporary file; the rename at the end is atomic.
            tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
            digest = hashlib.sha256()
            size = 0
            ctype = ""
            try:
                with open(tmp, "wb") as fh:
                    async with aclosing(self._stream(url, max_bytes, accept)) as stream:
                        async for ctype, chunk in stream:  # noqa: B007 (as above)
                            fh.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            return Download(dest, digest.hexdigest(), size, ctype)

        return await self._retrying(once)

    async def _retrying(self, once):
        """Run one download attempt, again after a transient failure, up to ``max_retries``."""
        attempt = 0
        while True:
            try:
                return await once()
            except _TransientDownload as exc:
                if attempt >= self.max_retries:
                    raise APIConnectionError(
                        f"{exc.message} [gave up after {attempt + 1} attempts]", status=exc.status
                    ) from None
                delay = retry_delay(attempt, exc.retry_after)
                log.debug("download failed (%s); trying again in %.2fs", exc.message, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _stream(self, url: str, max_bytes: int, accept: tuple[str, ...] | None = None):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise RequestValidationError(f"refusing to fetch a non-http(s) URL: {str(url)[:80]!r}")
        http = self._ensure_http()
        assert self._media_gate is not None
        problem: HiAPIError | None = None
        try:
            async with (
                self._media_gate,
                http.stream("GET", url, headers={"User-Agent": "hiapi-notebook"}) as resp,
            ):
                status = resp.status_code
                if status in (403, 404, 410):
                    raise OutputExpiredError(url, status)
                if status >= 500 or status in (408, 429):
                    raise _TransientDownload(
                        f"could not download the output (HTTP {status})",
                        status=status,
                        retry_after=parse_retry_after(resp.headers.get("retry-after")),
                    )
                if status >= 300:
                    raise APIConnectionError(f"could not download the output (HTTP {status})", status=status)
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if accept is not None and not ctype.startswith(accept):
                    raise OutputRefusedError(f"output is {ctype or 'of no type'}, not media; not saved")
                declared = int(resp.headers.get("content-length") or 0)
                if declared > max_bytes:
                    raise OutputRefusedError(f"output is {declared} bytes, over the {max_bytes}-byte limit")
                seen = 0
                async for chunk in resp.aiter_bytes():
                    seen += len(chunk)
                    if seen > max_bytes:
                        raise OutputRefusedError(f"output exceeds the {max_bytes}-byte limit")
                    yield ctype, chunk
        except httpx.HTTPError as exc:  # refused, reset, cut short, timed out: worth another try
            problem = _TransientDownload(f"could not download the output ({type(exc).__name__})")
        except ValueError:  # a Content-Length that is not a number
            problem = _TransientDownload("could not download the output (a malformed answer)")
        if problem is not None:
            raise problem

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    close = aclose

    async def __aenter__(self) -> AsyncHiAPI:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class _TransientDownload(APIConnectionError):
    """A download attempt that may work if tried again (network, 5xx, 429)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


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


def _decode(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class _SyncTasks:
    def __init__(self, inner: AsyncTasks) -> None:
        self._inner = inner

    def create(self, model, input, **kw) -> CreatedTask:
        return _loop.run_sync(self._inner.create(model, input, **kw))

    def retrieve(self, task_id: str) -> Task:
        return _loop.run_sync(self._inner.retrieve(task_id))

    def list(self, page: int = 1, size: int = 20) -> TaskPage:
        return _loop.run_sync(self._inner.list(page, size))

    def wait(self, task_id: str, **kw) -> Task:
        return _loop.run_sync(self._inner.wait(task_id, **kw))

    def run(self, model, input, **kw) -> Task:
        return _loop.run_sync(self._inner.run(model, input, **kw))


class HiAPI:
    """Blocking facade over ``AsyncHiAPI``; usable in scripts and notebook cells."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, **kw: Any) -> None:
        self._async = AsyncHiAPI(api_key, base_url, **kw)
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


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = WEBHOOK_TOLERANCE,
    now: float | None = None,
) -> Task:
    """Check a callback's ``X-HiAPI-Signature`` over the raw body and return its task.

    Verify the exact bytes received (re-serialising JSON changes them), compare
    in constant time, and refuse timestamps outside ``tolerance`` (replays). Any
    callback that does not verify, however malformed, raises ``WebhookVerificationError``.
    """
    try:
        return _verify_webhook(body, headers, secret, tolerance, now)
    except WebhookVerificationError:
        raise
    except Exception as exc:  # whatever shape a forged callback takes: it is not verified
        raise WebhookVerificationError(f"callback could not be verified ({type(exc).__name__})") from None


def _verify_webhook(body, headers, secret, tolerance, now) -> Task:
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes) or not secret:
        raise WebhookVerificationError("no webhook secret given: pass the signing secret set for callbacks")
    if isinstance(body, str):
        try:
            raw = body.encode()
        except UnicodeEncodeError:
            raise WebhookVerificationError("callback body is not valid text") from None
    elif isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
    else:
        raise WebhookVerificationError(f"callback body must be the raw bytes, not {type(body).__name__}")
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lower = {_header_text(k).lower(): _header_text(v) for k, v in pairs}
    ts, sig = lower.get("x-hiapi-timestamp"), lower.get("x-hiapi-signature")
    if not ts or not sig:
        raise WebhookVerificationError("callback lacks X-HiAPI-Timestamp or X-HiAPI-Signature")
    ts = ts.strip()
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise WebhookVerificationError("callback timestamp is not Unix seconds")
    if tolerance and abs((time.time() if now is None else now) - int(ts)) > tolerance:
        raise WebhookVerificationError("callback timestamp is outside the tolerance (a replay?)")
    sig = sig.strip().lower()
    if not (sig.isascii() and len(sig) == 64 and all(c in "0123456789abcdef" for c in sig)):
        raise WebhookVerificationError("callback signature is not a hex SHA-256 digest")
    expected = hmac.new(secret, ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise WebhookVerificationError("callback signature does not match; check the secret")
    try:
        data = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("callback body is not JSON") from None
    if not isinstance(data, Mapping):
        raise WebhookVerificationError("callback body is not a task object")
    return Task.from_dict(data)


def _header_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if not isinstance(value, str):
        raise WebhookVerificationError("callback headers must be text")
    return value
