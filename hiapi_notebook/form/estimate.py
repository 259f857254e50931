"""The form's estimate beside Generate: what the next click would cost, before it is
clicked, in the same words as a batch's estimate (``costs``). A model with no
published price says "price unknown" and why, never $0."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..costs import Estimate, price_note, unknown_reason, usd


def estimate_text(model: str, data: Mapping[str, Any] | None, *, tasks: int = 1) -> str:
    """``≈ $0.050 per task (HiAPI's published list prices as of …)``, or why there is no price.
    ``data`` None: the settings are not complete yet, so nothing is estimated."""
    if data is None or not model:
        return ""
    estimate = Estimate.of([(model, data, False)] * max(1, tasks))
    if not estimate.priced:
        return f"price unknown: {unknown_reason(model, data) or 'no price'}"
    amount = usd(estimate.total)
    each = f"≈ {amount} per task" if tasks <= 1 else f"≈ {amount} for {tasks} tasks"
    return f"{each} ({price_note([model])})"


def form_estimate(form: Any) -> str:
    """The estimate of what ``form`` would send now ("" while its settings have errors).
    A form whose click sends several tasks says how many in ``variants`` (a whole number)."""
    try:
        data, errors = form._collect()
    except Exception:  # a control mid-edit: the estimate waits for a valid value
        return ""
    tasks = getattr(form, "variants", 1)
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1:
        tasks = 1
    return estimate_text(form.model, None if errors else data, tasks=tasks)


def submitted_text(generations: Iterable[Any]) -> str:
    """What this form has sent so far, estimated: results reused from the journal are free,
    and those of unknown price are counted apart ("" before anything was sent)."""
    sent = [(g.model, g.request.input, bool(g.cached)) for g in generations]
    estimate = Estimate.of(sent)
    if not estimate.tasks:
        return ""
    if not estimate.priced:
        return f"{estimate.tasks} submitted, price unknown"
    return f"{estimate.amount()} submitted"


__all__ = ["estimate_text", "form_estimate", "submitted_text"]
