"""The Python API beside the magic: ``generate`` waits, ``submit`` returns at
once; both show live status in a notebook and text elsewhere."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .catalog import CatalogError, estimate_cost, validate_input
from .errors import RequestValidationError
from .generation import Generation
from .runtime import Request
from .session import get_session
from .views import show_job


def build_request(model: str | None = None, prompt: str | None = None, *,
                  input: Mapping[str, Any] | None = None, route: str | None = None,
                  storage: str | None = None, callback: Any = None,
                  timeout: float | None = None, **fields: Any) -> Request:
    """A checked request: fields merge over ``input``; the catalogue catches
    what it can before anything is sent (the server stays the authority)."""
    session = get_session()
    model = model or session.settings.default_model
    if not model:
        raise RequestValidationError(
            "no model given: pass model='gpt-image-2' (or %hiapi config default_model=...)")
    merged: dict[str, Any] = dict(input or {})
    merged.update(fields)
    if prompt is not None:
        merged["prompt"] = prompt
    try:
        validate_input(model, merged)
    except CatalogError as exc:
        raise RequestValidationError(str(exc)) from None
    if isinstance(callback, str):
        callback = {"url": callback, "when": "final"}
    return Request(model=model, input=merged, route=route, storage=storage,
                   callback=callback, timeout=timeout or session.settings.timeout)


def start(request: Request, *, variant: int = 0, fresh: bool = False,
          show: bool = True) -> Generation:
    """Submit (or reuse, via the journal) and show a live view in this cell."""
    session = get_session()
    job = session.submit(request, variant=variant, fresh=fresh,
                         cost=estimate_cost(request.model, dict(request.input)))
    if show:
        show_job(job, embed_limit=session.settings.embed_limit)
    return Generation(job)


def submit(prompt: str | None = None, *, model: str | None = None, fresh: bool = False,
           variant: int = 0, show: bool = True, **fields: Any) -> Generation:
    """Start a task and return its awaitable ``Generation`` at once."""
    return start(build_request(model, prompt, **fields), variant=variant, fresh=fresh, show=show)


def generate(prompt: str | None = None, *, model: str | None = None, fresh: bool = False,
             variant: int = 0, show: bool = True, **fields: Any) -> Generation:
    """Generate and wait (live status meanwhile); raises ``TaskFailed`` on failure."""
    return submit(prompt, model=model, fresh=fresh, variant=variant, show=show, **fields).wait()


def generate_many(requests: Iterable[Mapping[str, Any]], *, fresh: bool = False,
                  show: bool = True, wait: bool = True) -> list[Generation]:
    """Submit many requests (dicts of ``build_request`` arguments) and return
    their ``Generation``s in order; a failure stays with its own item."""
    requests = [dict(r) for r in requests]
    built = [build_request(**r) for r in requests]  # every request checked before any is sent
    gens = [start(req, fresh=fresh, show=show) for req in built]
    if wait:
        for gen in gens:
            try:
                gen.wait()
            except Exception:
                pass  # the failure is on its own item (``.error``, red bar)
    return gens
