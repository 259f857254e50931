"""The Python API, and the one way in for everything that submits.

``start`` submits one request and ``start_many`` many (variants, concurrency,
the comparison grid, waiting or not); ``generate``, ``submit``,
``generate_many``, the ``%%hiapi`` magic (``run_cell``) and the prompt form all
go through them, so a request is checked in one place (``build_request``) and a
grid runs in one place. Each shows live status in a notebook and text elsewhere.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _loop, catalog, costs, inputs
from .catalog import CatalogError, estimate_cost, validate_input
from .config import Settings
from .costs import Estimate
from .errors import TOP_UP, HiAPIError, PaymentRequiredError, RequestValidationError, TaskFailed
from .generation import Generation
from .grammar import CellArgs
from .journal import JournalUnavailable
from .models import Request, json_problem
from .runtime import Gate
from .session import Session, get_session
from .views import late, show_job
from .views.gallery import GenerationList
from .views.grid import ComparisonGrid, show_grid
from .views.spend import show_estimate

log = logging.getLogger("hiapi_notebook")
DEFAULT_CONCURRENCY = 8


def settings() -> Settings:
    """The session's settings (read-only: ``%hiapi config`` or ``configure`` change them)."""
    return get_session().settings


def require_key() -> None:
    """Raise ``MissingAPIKeyError`` now, before anything is built or shown."""
    get_session().require_key()


# --- checking -------------------------------------------------------------------------------


def build_request(
    model: str | None = None,
    prompt: str | None = None,
    *,
    input: Mapping[str, Any] | None = None,
    route: str | None = None,
    storage: str | None = None,
    callback: str | Mapping[str, Any] | None = None,
    timeout: float | None = None,
    force: bool = False,
    **fields: Any,
) -> Request:
    """A checked request: fields merge over ``input``; the catalogue catches what it
    can before anything is sent (the server stays the authority). ``force`` sends a
    model or field the catalogue would call a typo."""
    model = settings().default_model if model is None else model
    if not model:
        raise RequestValidationError(
            "no model given: pass model='gpt-image-2/text-to-image' (or %hiapi config default_model=...)"
        )
    if not isinstance(model, str) or not model.strip() or not model.isprintable():
        raise RequestValidationError(
            f"model must be a model's name, e.g. 'gpt-image-2/text-to-image', not {model!r}"
        )
    if input is not None and not isinstance(input, Mapping):
        raise RequestValidationError(
            "input must be a dict of the model's fields, e.g. {'aspect_ratio': '16:9'}, "
            f"not {type(input).__name__}"
        )
    if prompt is not None and not isinstance(prompt, str):
        raise RequestValidationError(f"the prompt must be text, not {type(prompt).__name__}")
    merged: dict[str, Any] = dict(input or {})
    merged.update(fields)
    if prompt is not None:
        merged["prompt"] = prompt
    if not force:
        try:
            catalog.check_model_name(model)
        except CatalogError as exc:
            raise RequestValidationError(f"{exc} (--force, or force=True, sends it as written)") from None
    # Media values (results, files, images, ...) become what is sent, and references for the journal.
    merged, media = inputs.prepare(model, merged, force=force)
    problem = json_problem(merged, "input")  # what is sent: NaN, infinities, lone surrogates, nesting
    if problem:
        raise RequestValidationError(problem)
    if not force:
        try:
            validate_input(model, merged)
        except CatalogError as exc:
            hint = " (--force, or force=True, sends it as written)" if "did you mean" in str(exc) else ""
            raise RequestValidationError(f"{exc}{hint}") from None
    if isinstance(callback, str):
        callback = {"url": callback, "when": "final"}
    return Request(
        model=model,
        input=merged,
        route=route,
        storage=storage,
        callback=callback,
        timeout=settings().timeout if timeout is None else timeout,  # 0 is refused, not the default
        media=media,
    )


class Variants:
    """The n-th identical request is variant n, so the journal keeps each result
    instead of handing back the first. A form keeps one across its clicks."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    @staticmethod
    def key(request: Request) -> str:
        """What makes two requests the same one (model, input, route, storage)."""
        return json.dumps(
            [request.model, request.recorded_input(), request.route, request.storage],
            sort_keys=True,
            default=str,
        )

    def peek(self, request: Request) -> int:
        return self._seen.get(self.key(request), 0)

    def take(self, request: Request) -> int:
        """The next variant of ``request``, counted."""
        variant = self.peek(request)
        self._seen[self.key(request)] = variant + 1
        return variant


# --- the one way in ---------------------------------------------------------------------------


def start(
    request: Request,
    *,
    variant: int = 0,
    fresh: bool = False,
    show: bool = True,
    wait: bool = False,
    yes: bool = False,
) -> Generation:
    """Submit one request (or reuse its recorded result) and show a live view in this
    cell; ``wait`` blocks until it ends (its failure stays on ``.error``). One that would
    take the session past its ``spend_limit`` is refused unless ``yes``."""
    session = get_session()
    session.check_spend(estimate(session, [(request, variant)], fresh=fresh), yes=yes)
    job = session.submit(
        request, variant=variant, fresh=fresh, cost=estimate_cost(request.model, dict(request.input))
    )
    if show:
        show_job(job, embed_limit=int(session.settings.embed_limit), embed=session.settings.embed)
    generation = Generation(job)
    if wait:
        settle([generation])
    return generation


def start_many(
    requests: Sequence[Request],
    *,
    n: int = 1,
    concurrency: int = DEFAULT_CONCURRENCY,
    fresh: bool = False,
    show: bool = True,
    wait: bool = False,
    layout: Mapping[str, Any] | None = None,
    shown: Sequence[Mapping[str, Any]] | None = None,
    title: str | None = None,
    yes: bool = False,
) -> GenerationList[Generation]:
    """Submit every request ``n`` times with at most ``concurrency`` tasks in flight,
    and return their ``Generation``s in order at once (the rest wait for a slot).

    Identical requests get distinct variants. A notebook shows one comparison grid:
    laid out by ``layout`` (``models`` and ``sweeps``, as the magic names them), else
    by the values that differ between ``shown`` (dicts of ``build_request``
    arguments; the requests themselves by default). A failure stays in its cell and
    does not stop the others, but a 402 (the balance cannot cover a task) stops the
    rest of the batch; ``wait`` blocks until all have ended.

    The estimate (``.estimate`` of the list) is shown before anything is sent; a batch
    that would take the session past its ``spend_limit`` is refused unless ``yes``.
    """
    concurrency = _whole("concurrency", concurrency)
    if not requests:
        return GenerationList()
    session = get_session()
    session.require_key()
    gate = Gate(concurrency)
    variants = Variants()
    plan = [(request, variants.take(request)) for request in requests for _ in range(n)]
    cost = estimate(session, plan, fresh=fresh)
    session.check_spend(cost, yes=yes)
    if show:
        show_estimate(cost)
    generations: GenerationList[Generation] = GenerationList()
    generations.gate = gate
    generations.estimate = cost
    for request, variant in plan:
        try:
            job = session.submit(
                request,
                variant=variant,
                fresh=fresh,
                cost=estimate_cost(request.model, dict(request.input)),
                gate=gate,
            )
        except Exception as exc:  # this one fails alone; the others go on
            job = session.runtime.refused(request, exc)
        generations.append(Generation(job))
    if show:
        embed_limit = int(session.settings.embed_limit)
        if layout is not None:
            grid = ComparisonGrid.from_sweep(generations, n=n, embed_limit=embed_limit, title=title, **layout)
        else:
            rows = shown or [{"model": r.model, **dict(r.input)} for r in requests for _ in range(n)]
            grid = ComparisonGrid.from_requests(generations, rows, embed_limit=embed_limit, title=title)
        grid.estimate = cost.text()
        show_grid(grid)
    if wait:
        settle(generations)
    return generations


def estimate(session: Session, plan: Iterable[tuple[Request, int]], *, fresh: bool = False) -> Estimate:
    """What sending ``(request, variant)`` pairs would cost: a result the journal
    already holds (or a task already sent) costs nothing."""
    return Estimate.of(
        (r.model, r.input, session.reuses(r, variant=variant, fresh=fresh)) for r, variant in plan
    )


def settle(generations: Sequence[Generation]) -> list[BaseException]:
    """Wait for every generation to end; returns the errors other than a failed task
    (each failure also stays on its item). An interrupt stops what has not been sent."""
    problems: list[BaseException] = []
    try:
        for generation in generations:
            try:
                generation.wait()
            except TaskFailed:
                continue  # its bar says so, in red, with the server's reason
            except HiAPIError as exc:
                problems.append(exc)
    except KeyboardInterrupt:
        if isinstance(generations, GenerationList):
            generations.stop("not submitted: the cell was interrupted")
        for generation in generations:
            if not generation.done:  # nothing is cancelled: each bar says so, and ends as the task does
                generation.job.note("you stopped waiting; it runs on and ends here")
        raise
    return problems


def wait() -> list[Generation]:
    """Wait for every task of this kernel still in flight (``--no-wait`` cells,
    ``submit``) and return them; failures stay on each. In a run no front end watches
    (papermill, ``jupyter execute``), the results that ended after their cell are sent
    again from here, so the saved notebook has each one in the cell that made it."""
    generations = running()
    settle(generations)
    late.resend_ended()
    return generations


def running() -> list[Generation]:
    """The tasks of this kernel still in flight."""
    return [Generation(job) for job in get_session().in_flight()]


def watch(task_id: str) -> Generation:
    """Follow any task of this key by id, live in this cell (``%hiapi status``). It is
    asked for once first, so a wrong id is one clear line rather than a red bar."""
    session = get_session()
    session.require_key()
    _loop.run_sync(session.client.tasks.retrieve(task_id))
    job = session.attach(task_id)
    show_job(job, embed_limit=int(session.settings.embed_limit), embed=session.settings.embed)
    return Generation(job)


# --- the Python API -------------------------------------------------------------------------


def submit(
    prompt: str | None = None,
    *,
    model: str | None = None,
    fresh: bool = False,
    variant: int = 0,
    show: bool = True,
    yes: bool = False,
    **fields: Any,
) -> Generation:
    """Start a task and return its awaitable ``Generation`` at once (``yes``: past the
    session's ``spend_limit`` too)."""
    generation = start(
        build_request(model, prompt, **fields), variant=variant, fresh=fresh, show=show, yes=yes
    )
    if show and not generation.done:
        late.note_late()
    return generation


def generate(
    prompt: str | None = None,
    *,
    model: str | None = None,
    fresh: bool = False,
    variant: int = 0,
    show: bool = True,
    yes: bool = False,
    **fields: Any,
) -> Generation:
    """Generate and wait (live status meanwhile); raises ``TaskFailed`` on failure."""
    return start(
        build_request(model, prompt, **fields), variant=variant, fresh=fresh, show=show, yes=yes
    ).wait()


def generate_many(
    requests: Iterable[Mapping[str, Any] | Request],
    concurrency: int = DEFAULT_CONCURRENCY,
    *,
    fresh: bool = False,
    show: bool = True,
    wait: bool = True,
    title: str | None = None,
    yes: bool = False,
) -> GenerationList[Generation]:
    """Submit many requests, at most ``concurrency`` tasks in flight, and return their
    ``Generation``s in order (a list that displays as a gallery).

    ``requests`` are dicts of ``build_request`` arguments (``grid(...)`` makes them)
    or ``Request``s; all are checked before any is sent. A notebook shows a grid
    labelled by the values that differ; ``wait=False`` returns at once. The estimate
    shows first; past the session's ``spend_limit`` nothing is sent unless ``yes``.
    """
    items = [r if isinstance(r, Request) else dict(r) for r in requests]
    built = [r if isinstance(r, Request) else build_request(**r) for r in items]
    shown = [
        _labelled({"model": r.model, **r.recorded_input()} if isinstance(r, Request) else r) for r in items
    ]
    return start_many(
        built, concurrency=concurrency, fresh=fresh, show=show, wait=wait, shown=shown, title=title, yes=yes
    )


def spend() -> list[dict[str, Any]]:
    """Estimated spend, one row per scope, day and model: ``this session`` (what this kernel
    sent) and ``this folder`` (every task the journal here recorded as created). Each row
    has ``tasks``, ``priced``, ``unknown`` (no published price: never counted as $0) and
    ``usd`` (the priced ones, at HiAPI's published list prices). ``pandas.DataFrame(spend())``."""
    session = get_session()
    rows = costs.spend_rows("this session", ((c.at, c.model, c.cost) for c in session.spend.charges))
    journal = session.journal
    if journal is not None:
        try:
            rows += costs.spend_rows("this folder", journal.sent())
        except JournalUnavailable as exc:
            log.warning("hiapi spend: the journal cannot be read (%s)", exc)
    return rows


def cross(sweeps: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values of ``sweeps``, in argument order."""
    names = list(sweeps)
    return [dict(zip(names, combo)) for combo in itertools.product(*sweeps.values())]


def grid(**sweeps: Any) -> list[dict[str, Any]]:
    """The cross product of ``sweeps`` as request dicts for ``generate_many``: list values
    are swept (in argument order), others fixed. A list-valued field that should stay
    fixed goes in another list: ``image_urls=[["a.png", "b.png"]]``.

    ``grid(model="m", prompt="p", aspect_ratio=["1:1", "16:9"])`` gives two dicts.
    """
    return cross({name: value if isinstance(value, list) else [value] for name, value in sweeps.items()})


# --- the magic's cell -------------------------------------------------------------------------


def run_cell(
    args: CellArgs,
    prompt: str | None,
    *,
    bind: Callable[[Generation | GenerationList[Generation]], None] | None = None,
    resolve: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> Generation | GenerationList[Generation]:
    """What one ``%%hiapi`` cell asks for: one task, or models × sweeps × ``-n`` as a
    grid. ``bind`` hears the result as soon as it exists (``-o VAR``), before any
    waiting; ``resolve(model, input)`` turns the line's words for media fields into
    values (notebook variables, files). Errors other than a failed task (shown in its
    bar) raise after the wait."""
    models = args.models or [args.model or settings().default_model or ""]
    if not models[0]:
        raise RequestValidationError(
            "no model: name one (%%hiapi gpt-image-2/text-to-image) or set a default "
            "with %hiapi config default_model=NAME"
        )
    base = {**args.input, **args.fields}
    requests = [
        build_request(
            model,
            prompt,
            input=resolve(model, {**base, **combo}) if resolve else {**base, **combo},
            route=args.route,
            storage=args.storage,
            callback=args.callback,
            timeout=args.timeout,
            force=args.force,
        )
        for model in models
        for combo in cross(args.sweeps)
    ]
    require_key()
    if args.save:
        writable_folder(args.save)  # checked before anything is paid for
    result: Generation | GenerationList[Generation]
    if len(requests) == 1 and args.n == 1:
        result = start(requests[0], fresh=args.fresh, yes=args.yes)
        generations: Sequence[Generation] = [result]
    else:
        layout = {"models": models if len(models) > 1 else (), "sweeps": args.sweeps}
        result = generations = start_many(
            requests, n=args.n, concurrency=args.concurrency, fresh=args.fresh, layout=layout, yes=args.yes
        )
    if bind is not None:
        bind(result)
    if not args.wait:
        if args.save:
            for generation in generations:
                _save_when_done(generation, args.save)
        if not all(generation.done for generation in generations):
            late.note_late()
        return result
    problems = settle(generations)
    if args.save:
        for generation in generations:
            if generation.job.succeeded:
                generation.save(args.save)
    if problems:
        unpaid = next((p for p in problems if isinstance(p, PaymentRequiredError)), None)
        if unpaid is not None and len(generations) == 1:
            raise unpaid
        if unpaid is not None:
            raise HiAPIError(payment_line(unpaid, generations), status=402)
        lines = sorted({" ".join(str(p).split()) for p in problems})
        raise HiAPIError("; ".join(lines))
    return result


def payment_line(error: PaymentRequiredError, generations: Sequence[Generation]) -> str:
    """The one line of a batch a 402 stopped: how many were sent, the balance the server
    reported, and where to top up (each grid cell says why it was not sent)."""
    sent = sum(1 for g in generations if g.task_id)
    unsent = len(generations) - sent
    return (
        f"HiAPI 402: {error.balance_text()}; {sent} of {len(generations)} sent, the other "
        f"{unsent} not sent; {TOP_UP}"
    )


def writable_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder``, made if missing, once it is known that files can be written there."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequestValidationError(
            f"--save {folder}: cannot make that folder ({exc.strerror}); pick another"
        ) from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise RequestValidationError(
            f"--save {folder}: cannot write in that folder; pick one you can write to"
        )
    return path


def _labelled(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """build_request arguments as a grid labels them: media values by a short name."""
    return {name: inputs.label(value) for name, value in arguments.items()}  # references by name too


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestValidationError(f"{name} must be a whole number, at least 1, not {value!r}")
    return value


def _save_when_done(generation: Generation, folder: str) -> None:
    """--no-wait --save: copy the outputs once the task ends, off the polling loop."""

    def ended(_future: concurrent.futures.Future[Any]) -> None:
        _loop.worker().submit(_save_quietly, generation, folder)

    generation.job.future.add_done_callback(ended)


def _save_quietly(generation: Generation, folder: str) -> None:
    """--no-wait --save: the cell has returned, so a failure can only be logged."""
    try:
        if generation.job.succeeded:
            generation.save(folder)
    except Exception as exc:
        log.warning("hiapi: could not save %s into %s: %s", generation.task_id, folder, exc)


__all__ = [
    "build_request",
    "cross",
    "generate",
    "generate_many",
    "grid",
    "run_cell",
    "running",
    "settle",
    "spend",
    "start",
    "start_many",
    "submit",
    "wait",
    "watch",
]
