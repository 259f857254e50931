"""The endpoints: create, detail and list tasks as the contract says, and serve output files."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from ..catalog import (
    CatalogError,
    ModelSpec,
    estimate_cost,
    get_model,
    media_field,
    suggest_model,
    validate_input,
)
from .callbacks import CallbackSender
from .derive import derive, reduced
from .detail import detail_problem
from .faults import FaultPlan
from .inputs import SandboxInputs
from .kept import Bodies, kept_input
from .media import CONTENT_TYPES, EXTENSIONS, OUTPUTS, MediaCache, draw, prompt_text, unavailable
from .state import PHASES, Ledger, TaskRecord
from .wire import ApiError, Call, Response, canonical_json, invalid, new_task_id, ok

UNKNOWN_COST = 0.05  # charged against a balance when the catalogue has no price
FAIL_TAG = "#fail"
# "#end:cancelled" in a prompt ends the task in that status: HiAPI's tools know more ways
# for a task to end without a result than the documented "fail", and clients must stop on each.
END_TAG = re.compile(r"#end:(fail|failed|error|cancelled|canceled|timeout)\b", re.IGNORECASE)
MAX_DEPTH = 64  # a task body is a few levels deep; deeper is refused, as a strict server would
FAIL_ERROR = {
    "code": "TASK_FAILED",
    "message": "upstream rejected the prompt (sandbox: the prompt asked to fail)",
}
RANDOM_FAIL_ERROR = {
    "code": "TASK_FAILED",
    "message": "upstream rejected the prompt (sandbox: random failure)",
}
DEFAULT_PAGE_SIZE = 10
_FILE = re.compile(r"^/files/([^/]+)/(\d+)\.(\w+)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # a surrogate's escape: a lone one is no text


class SandboxApi:
    """What the sandbox does with a request, HTTP and faults aside: requests in, answers out."""

    def __init__(
        self,
        *,
        key: str | None,
        speed: float,
        webhook_secret: str | None,
        balance: float | None,
        url_ttl: float,
        plan: FaultPlan,
        detail: str = "full",
        fetch_remote: bool = False,
        jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        if not (isinstance(url_ttl, (int, float)) and math.isfinite(url_ttl) and url_ttl >= 0):
            raise ValueError(f"url_ttl must be a number of seconds, 0 or more, not {url_ttl!r}")
        if balance is not None and not (math.isfinite(balance) and balance >= 0):
            raise ValueError(f"balance must be 0 or more USD, not {balance!r}")
        if detail_problem(detail):
            raise ValueError(detail_problem(detail))
        if not (isinstance(jitter, (int, float)) and 0 <= jitter < 1):
            raise ValueError(f"jitter takes a fraction from 0 to below 1, not {jitter!r}")
        self.key = key
        self.speed = speed
        self.jitter = jitter
        self._durations = random.Random(seed)  # jitter draws: the same run with the same seed
        self.url_ttl = url_ttl
        self.plan = plan
        self.ledger = Ledger(balance)
        self.media_detail = detail
        self.media = MediaCache(256 * 2**20 if detail == "full" else 64 * 2**20)
        self.callbacks = CallbackSender(self._callback_payload, webhook_secret)
        self.file_root = ""  # where output URLs point; set once the server has its port
        self.bodies = Bodies()  # create bodies, for tests: the newest as sent, older ones reduced
        self.inputs = SandboxInputs(self._own_file, fetch_remote=fetch_remote)

    @property
    def last_inputs(self) -> list[dict]:
        return self.bodies.items

    def handle(self, req: Call) -> Response:
        if req.path == "/v1/tasks":
            allowed = "GET, POST"
            if req.method == "POST":
                return self.create(req)
            if req.method == "GET":
                return self.list(req)
        elif req.path.startswith("/v1/tasks/"):
            allowed = "GET"
            if req.method == "GET":
                return self.detail(req, unquote(req.path.removeprefix("/v1/tasks/")))
        elif req.path.startswith("/files/"):
            allowed = "GET, HEAD"
            if req.method in ("GET", "HEAD"):
                return self.file(req)
        else:
            raise ApiError(404, f"no such endpoint: {req.path[:200]}")
        raise ApiError(405, f"{req.method} is not allowed on {req.path[:200]}", headers={"Allow": allowed})

    # -- the API ---------------------------------------------------------------------------

    def owner(self, req: Call) -> str:
        """The account behind the request's key (a digest: the key itself is not kept)."""
        scheme, _, key = (req.headers.get("Authorization") or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'")
        if self.key is not None and not hmac.compare_digest(key.encode(), self.key.encode()):
            raise ApiError(401, "invalid API key")
        if key.startswith("suspended"):
            raise ApiError(403, "account suspended (sandbox: keys that start with 'suspended' get 403)")
        return hashlib.sha256(key.encode()).hexdigest()

    def create(self, req: Call) -> Response:
        owner = self.owner(req)
        media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            raise ApiError(415, f"Content-Type must be application/json, not {media_type[:80]!r}")
        try:
            body = json.loads(req.body or b"null", parse_constant=_refuse_constant)
        except RecursionError:
            raise invalid(f"the request body nests deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:  # not JSON, not UTF-8, or NaN / Infinity (not JSON either)
            detail = f" ({exc.args[0]})" if isinstance(exc, _NotJson) else ""
            raise invalid(f"the request body is not valid JSON{detail}") from None
        if _depth_over(body, MAX_DEPTH):
            raise invalid(f"the request body nests deeper than {MAX_DEPTH} levels")
        if _SURROGATE.search(req.body or b"") and not _unicode(body):  # it would draw no file
            raise invalid("the request body has text that is not Unicode: a lone surrogate such as \\ud800")
        if not isinstance(body, dict):
            raise invalid('the request body must be a JSON object: {"model": ..., "input": {...}}')
        key = req.headers.get("Idempotency-Key") or None
        if key is not None:
            if len(key.encode("latin-1", "replace")) > 255:  # headers arrive decoded as latin-1
                raise invalid("Idempotency-Key is longer than 255 bytes")
            replayed = self.ledger.claim_key(owner, key, _digest(canonical_json(body)))
            if replayed:
                return ok({"taskId": replayed}, {"Idempotent-Replay": "true"})
        try:
            req.pause()  # a slow create holds its key, so a twin request meanwhile gets 409
            task, cost = self._new_task(owner, body)
            self.ledger.add(task, cost, key)
        except Exception:  # a refused (or broken) create must not hold its key forever
            if key is not None:
                self.ledger.release_key(owner, key)
            raise
        self.bodies.add(body, len(req.body or b""))
        if self.media_detail == "full" and task.error is None:  # big files are ready when asked for
            self.media.draw_ahead(*self._drawing(task))
        if task.callback:
            self.callbacks.schedule(task.finished, task.task_id)
        return ok({"taskId": task.task_id})

    def detail(self, req: Call, task_id: str) -> Response:
        task = self.ledger.get(task_id, self.owner(req))
        if task is None:
            raise ApiError(404, f"task not found: {task_id}")
        return ok(task.wire(time.time(), self.file_root))

    def list(self, req: Call) -> Response:
        owner = self.owner(req)
        page = _int(req.query.get("page"), 1, 1, 10**9)
        size = _int(req.query.get("size"), DEFAULT_PAGE_SIZE, 1, 100)
        total, tasks = self.ledger.page(owner, page, size)
        now = time.time()
        return ok(
            {
                "page": page,
                "size": size,
                "total": total,
                "tasks": [t.wire(now, self.file_root) for t in tasks],
            }
        )

    def file(self, req: Call) -> Response:
        """An output file: public like a CDN URL, drawn on first request, gone after expireAt."""
        match = _FILE.match(req.path)
        if match is None:
            raise ApiError(404, "no such file")
        task = self.ledger.get(match[1])
        now = time.time()
        index, extension = int(match[2]), match[3]
        if (
            match is None
            or task is None
            or task.status(now) != "success"
            or index >= len(task.outputs)
            or EXTENSIONS[task.outputs[index]] != extension
        ):
            raise ApiError(404, "no such file")
        if now >= task.expire_at:
            raise ApiError(410, "this output URL has expired; download outputs before expireAt")
        data = self._files(task)[task.outputs[index]]
        headers = {
            "Cache-Control": "public, max-age=3600",
            "Accept-Ranges": "bytes",
            "Access-Control-Allow-Origin": "*",
        }
        content_type = CONTENT_TYPES[extension]
        wanted = _RANGE.match(req.headers.get("Range") or "")
        if wanted and (wanted[1] or wanted[2]):  # browsers ask for ranges of video
            start, end = _byte_range(wanted[1], wanted[2], len(data))
            if start > end:
                raise ApiError(
                    416, "range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"}
                )
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(206, data[start : end + 1], content_type, headers)
        return Response(200, data, content_type, headers)

    # -- parts -----------------------------------------------------------------------------

    def _files(self, task: TaskRecord) -> dict[str, bytes]:
        """A task's output files, drawn once (from its media inputs when it has any)."""
        return self.media.get(*self._drawing(task))

    def _drawing(self, task: TaskRecord) -> tuple[str, Callable[[], dict[str, bytes]]]:
        """The key of a task's files in ``media`` and how to draw them."""
        return task.drawing_key, lambda: self._draw(task)

    def _draw(self, task: TaskRecord) -> dict[str, bytes]:
        if task.media:
            try:
                derived = derive(task.kind, task.model, task.input, task.media, detail=self.media_detail)
            except ImportError:  # no Pillow: the plain synthetic files
                derived = None
            if derived is not None:
                return derived
        return draw(task.kind, task.model, task.input, detail=self.media_detail)

    def _own_file(self, url: str) -> bytes | None:
        """This server's output behind ``url``, read from memory (an input that is the
        result of an earlier task); None when it is not one, or not served any more."""
        root = f"{self.file_root}/files/"
        match = _FILE.match("/files/" + url[len(root) :]) if url.startswith(root) else None
        task = self.ledger.get(match[1]) if match else None
        index = int(match[2]) if match else 0
        now = time.time()
        if (
            match is None
            or task is None
            or task.status(now) != "success"
            or now >= task.expire_at
            or index >= len(task.outputs)
            or EXTENSIONS[task.outputs[index]] != match[3]
        ):
            return None
        return self._files(task)[task.outputs[index]]

    def _new_task(self, owner: str, body: dict) -> tuple[TaskRecord, float]:
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            raise invalid('model is required, e.g. "gpt-image-2/text-to-image"')
        input = body.get("input")
        if not isinstance(input, dict):
            raise invalid('input is required: an object of the model\'s fields, e.g. {"prompt": "..."}')
        callback = _callback(body.get("callback"))
        storage = body.get("storage", "temp")
        if storage not in ("temp", "persistent"):
            raise invalid(f"invalid storage {storage!r}: allowed values are temp, persistent")
        spec, shown_model, route = _resolve(model, body.get("route"))
        try:
            validate_input(spec.name, input)
        except CatalogError as exc:
            raise invalid(str(exc)) from None
        problem = unavailable(spec.kind)  # refused now, not a success whose file cannot be drawn
        if problem:
            raise ApiError(503, problem, "MODEL_UNAVAILABLE")
        # URL fields: http(s) URLs (fetched) or data: URIs only; kept as drawing needs them
        media = reduced(self.inputs.check(spec, input))
        error: dict | None
        prompt = prompt_text(input)
        ending = END_TAG.search(prompt)
        end_status = ending[1] if ending else "fail"
        if ending:
            error = {
                "code": "TASK_" + ending[1].upper(),
                "message": f"the task ended {ending[1]} (sandbox: the prompt asked for it)",
            }
        elif FAIL_TAG in prompt:
            error = FAIL_ERROR
        else:
            error = RANDOM_FAIL_ERROR if self.plan.task_fails() else None
        started = time.time()
        queued, handling, archiving = PHASES[spec.kind]
        task = TaskRecord(
            task_id=new_task_id(),
            owner=owner,
            model=shown_model,
            route=route,
            kind=spec.kind,
            input=kept_input(with_defaults(spec, input)),
            storage=storage,
            callback=callback,
            started=started,
            phases=self._phases(spec.kind),
            error=error,
            end_status=end_status,
            outputs=OUTPUTS[spec.kind],
            expire_at=math.ceil(started + self.url_ttl),
            media=media,
        )
        task.drawing_key = _digest(f"{task.model}\n{canonical_json(task.input)}")
        cost = estimate_cost(spec.name, input)
        return task, UNKNOWN_COST if cost is None else cost

    def _phases(self, kind: str) -> tuple[float, float, float]:
        """Seconds queued, handling and archiving: the kind's, divided by the speed, all
        stretched by one factor from 1 - jitter to 1 + jitter (a task runs long or short
        as a whole, as a busy upstream makes it)."""
        factor = 1.0 + self.jitter * (2 * self._durations.random() - 1) if self.jitter else 1.0
        queued, handling, archiving = (s / self.speed * factor for s in PHASES[kind])
        return queued, handling, archiving

    def _callback_payload(self, task_id: str) -> tuple[str, dict] | None:
        task = self.ledger.get(task_id)
        if task is None or not task.callback:
            return None
        return task.callback["url"], task.wire(max(time.time(), task.finished), self.file_root)


def _unicode(value: object) -> bool:
    try:
        canonical_json(value).encode()
    except UnicodeEncodeError:
        return False
    return True


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _resolve(model: str, route: object) -> tuple[ModelSpec, str, str | None]:
    """The catalogue entry, the model name the task shows (``name@route``) and the echoed route."""
    if route is not None and not isinstance(route, str):
        raise invalid("route must be a string")
    route = route or None  # "" means no route, as in HiAPI's SDKs
    spec = get_model(model)
    if spec is None and route:  # model="x", route="pro" spells the catalogue's "x@pro"
        spec = get_model(f"{model}@{route}")
        if spec is not None:
            return spec, spec.name, route
    if spec is None:
        hint = suggest_model(model)
        raise invalid(f"unknown model '{model}'" + (f"; did you mean '{hint}'?" if hint else ""))
    suffix = model.rpartition("@")[2] if model != spec.name else None
    if suffix and route and suffix != route:
        raise invalid(f"the route is given twice: '{model}' and route '{route}'")
    for name in (suffix, route):
        if name and name != "default" and name not in spec.routes:
            raise invalid(
                f"unknown route '{name}' for {spec.name}: available routes are " + ", ".join(spec.routes)
            )
    shown = f"{spec.name}@{route}" if route and route != "default" else model
    return spec, shown, route


def with_defaults(spec: ModelSpec, input: dict) -> dict:
    """What the model works from: omitted fields take its documented defaults, as the real
    models do; but a picture given as input sets the shape, so no default aspect is forced."""
    pictured = any(media_field(spec.name, name) is not None and input.get(name) for name in input)
    defaults = {
        f.name: f.default
        for f in spec.fields.values()
        if f.default is not None and not (pictured and f.name in ("aspect_ratio", "size"))
    }
    return {**defaults, **input}


def _callback(callback: object) -> dict | None:
    if callback is None:
        return None
    wrong = invalid('callback must be {"url": "https://...", "when": "final"} with an http(s) url')
    if not isinstance(callback, dict):
        raise wrong
    url = callback.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
        raise wrong
    if callback.get("when", "final") != "final":
        raise invalid("invalid callback.when: the only allowed value is final")
    return {"url": url, "when": "final"}


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> None:
    raise _NotJson(f"{name} is not a JSON number")


def _depth_over(value: object, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _int(value: str | None, default: int, low: int, high: int) -> int:
    """A query number; a missing, malformed or out-of-range one falls back to the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if low <= number <= high else default


def _byte_range(first: str, last: str, size: int) -> tuple[int, int]:
    if not first:  # "bytes=-N": the last N bytes
        return max(0, size - int(last)), size - 1
    return int(first), min(int(last), size - 1) if last else size - 1
