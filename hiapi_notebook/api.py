"""The Python API beside the magic: ``generate`` waits, ``submit`` returns at
once; both show live status in a notebook and text elsewhere."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .catalog import CatalogError, estimate_cost, get_model, model_names, validate_input
from .errors import RequestValidationError
from .generation import Generation
from .runtime import Request
from .session import get_session
from .views import show_job


def build_request(
    model: str | None = None,
    prompt: str | None = None,
    *,
    input: Mapping[str, Any] | None = None,
    route: str | None = None,
    storage: str | None = None,
    callback: Any = None,
    timeout: float | None = None,
    force: bool = False,
    **fields: Any,
) -> Request:
    """A checked request: fields merge over ``input``; the catalogue catches
    what it can before anything is sent (the server stays the authority).
    ``force`` sends a model or field the catalogue would call a typo."""
    session = get_session()
    model = model or session.settings.default_model
    if not model:
        raise RequestValidationError(
            "no model given: pass model='gpt-image-2/text-to-image' (or %hiapi config default_model=...)"
        )
    merged: dict[str, Any] = dict(input or {})
    merged.update(fields)
    if prompt is not None:
        merged["prompt"] = prompt
    if not force:
        check_model_name(model)
        try:
            validate_input(model, merged)
        except CatalogError as exc:
            raise RequestValidationError(
                f"{exc} (--force sends it anyway)" if "did you mean" in str(exc) else str(exc)
            ) from None
    if isinstance(callback, str):
        callback = {"url": callback, "when": "final"}
    return Request(
        model=model,
        input=merged,
        route=route,
        storage=storage,
        callback=callback,
        timeout=timeout or session.settings.timeout,
    )


def check_model_name(model: str) -> None:
    """A name the catalogue does not know but that is one typo from a known one is
    refused before anything is paid for; a name unlike any known one (a model newer
    than the catalogue) is sent, and the server decides."""
    if get_model(model) is not None:
        return
    base = model.partition("@")[0]
    near = difflib.get_close_matches(base, model_names(), n=1, cutoff=0.85)
    if near:
        raise RequestValidationError(
            f"unknown model {model!r}: did you mean {near[0]}? (--force, or force=True, sends it as written)"
        )


def start(request: Request, *, variant: int = 0, fresh: bool = False, show: bool = True) -> Generation:
    """Submit (or reuse, via the journal) and show a live view in this cell."""
    session = get_session()
    job = session.submit(
        request, variant=variant, fresh=fresh, cost=estimate_cost(request.model, dict(request.input))
    )
    if show:
        show_job(job, embed_limit=session.settings.embed_limit)
    return Generation(job)


def submit(
    prompt: str | None = None,
    *,
    model: str | None = None,
    fresh: bool = False,
    variant: int = 0,
    show: bool = True,
    **fields: Any,
) -> Generation:
    """Start a task and return its awaitable ``Generation`` at once."""
    return start(build_request(model, prompt, **fields), variant=variant, fresh=fresh, show=show)


def generate(
    prompt: str | None = None,
    *,
    model: str | None = None,
    fresh: bool = False,
    variant: int = 0,
    show: bool = True,
    **fields: Any,
) -> Generation:
    """Generate and wait (live status meanwhile); raises ``TaskFailed`` on failure."""
    return submit(prompt, model=model, fresh=fresh, variant=variant, show=show, **fields).wait()


def generate_many(
    requests: Iterable[Mapping[str, Any] | Request],
    concurrency: int = 8,
    *,
    fresh: bool = False,
    show: bool = True,
    wait: bool = True,
    title: str | None = None,
) -> list[Generation]:
    """Submit many requests, at most ``concurrency`` tasks in flight, and return their
    ``Generation``s in order (a list that displays as a gallery).

    ``requests`` are dicts of ``build_request`` arguments (``grid(...)`` makes them)
    or ``Request``s; all are checked before any is sent. Identical requests get
    distinct variants, so the journal keeps each result. A notebook shows a grid
    labelled by the values that differ; a failure stays in its cell and does not
    stop the others. ``wait=False`` returns at once (the feeder keeps going).
    """
    import json

    from .batch import Batch
    from .views.gallery import GenerationList
    from .views.grid import ComparisonGrid, show_grid

    items = [r if isinstance(r, Request) else dict(r) for r in requests]
    built = [r if isinstance(r, Request) else build_request(**r) for r in items]
    shown = [{"model": r.model, **dict(r.input)} if isinstance(r, Request) else r for r in items]
    seen: dict[str, int] = {}
    variants = []
    for req in built:  # the n-th identical request is variant n
        key = json.dumps([req.model, dict(req.input), req.route, req.storage], sort_keys=True, default=str)
        variants.append(seen.get(key, 0))
        seen[key] = variants[-1] + 1
    if built:
        get_session().require_key()
    batch = Batch(built, variants, concurrency=concurrency, fresh=fresh)
    gens = GenerationList(batch.generations)
    if show and gens:
        show_grid(ComparisonGrid.from_requests(gens, shown, title=title))
    batch.start()
    if wait:
        try:
            for gen in gens:
                try:
                    gen.wait()
                except Exception:
                    pass  # the failure is on its own item (``.error``, its grid cell)
        except KeyboardInterrupt:
            batch.stop("not submitted: interrupted")
            raise
    return gens


def grid(**sweeps: Any) -> list[dict[str, Any]]:
    """The cross product of ``sweeps`` as request dicts for ``generate_many``: list values
    are swept (in argument order), others fixed. A list-valued field that should stay
    fixed goes in another list: ``image_urls=[["a.png", "b.png"]]``.

    ``grid(model="m", prompt="p", aspect_ratio=["1:1", "16:9"])`` gives two dicts.
    """
    import itertools

    names = list(sweeps)
    axes = [value if isinstance(value, list) else [value] for value in sweeps.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*axes)]
