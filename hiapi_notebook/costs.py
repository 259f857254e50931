"""What things cost: estimates before anything is sent, the session's spend, and the words for both.

Every figure is an *estimate* from HiAPI's published list prices as the catalogue
records them (``catalog.estimate_cost``), dated by the catalogue. A task whose price
the catalogue cannot compute is "price unknown", never $0: it is counted apart in
every estimate and every report, and the reason is kept (``unknown_reason``).

The spend limit compares what has a price: a batch is refused when its priced
estimate would take the session's spend past the limit. Results reused from the
journal cost nothing and count nothing. No I/O here: the session keeps the books,
the views and the magics say them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalog import _PRICE_UNITS, _quantity, all_models, estimate_cost, get_model
from .config import DEFAULT_SPEND_LIMIT as DEFAULT_SPEND_LIMIT
from .config import limit_problem as limit_problem

_DATE = re.compile(r"\b(20\d\d-[01]\d(?:-[0-3]\d)?)\b")


def unknown_reason(model: str, input: Mapping[str, Any]) -> str | None:
    """Why no price can be given for ``model`` with ``input`` (None: it has one)."""
    if estimate_cost(model, dict(input)) is not None:
        return None
    spec = get_model(model)
    if spec is None:
        return "the catalogue does not know this model"
    price = spec.price or {}
    units = [key for key in _PRICE_UNITS if key in price]
    if not units:
        return "the catalogue has no published price for this model"
    unit = _PRICE_UNITS[units[0]]
    if _quantity(unit, spec, dict(input)) is None:
        return {
            "second": "its price is per second and no duration is given",
            "kchar": "its price is per 1000 characters and no text is given",
        }.get(unit, "the catalogue cannot read its price")
    return "its price depends on a setting (such as the resolution) the catalogue has no price for"


def prices_as_of(models: Iterable[str] = ()) -> str:
    """The latest date the catalogue read a price of ``models`` (all priced models if
    none are given), or words saying the catalogue has no date."""
    names = list(models)
    specs = [get_model(name) for name in names] if names else list(all_models())
    dates = [
        found
        for spec in specs
        if spec is not None and spec.price
        for found in _DATE.findall(str(spec.price.get("as_of", "")))
    ]
    return max(dates) if dates else "an undated catalogue snapshot"


def price_note(models: Iterable[str] = ()) -> str:
    return f"HiAPI's published list prices as of {prices_as_of(models)}"


def usd(amount: float) -> str:
    """Dollars to three places (a cheap image is $0.002), never ``-$0.000``."""
    return f"${max(0.0, amount):.3f}" if amount < 1000 else f"${amount:,.2f}"


@dataclass(frozen=True)
class Estimate:
    """What a submission would send: ``tasks`` new tasks (``reused`` more come from
    the journal, free), ``total`` USD for the ``priced`` ones, ``unknown`` of no price."""

    tasks: int = 0
    priced: int = 0
    total: float = 0.0
    reused: int = 0
    models: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # why some have no price, each said once

    @property
    def unknown(self) -> int:
        return self.tasks - self.priced

    @classmethod
    def of(cls, items: Iterable[tuple[str, Mapping[str, Any], bool]]) -> Estimate:
        """From ``(model, input, reused)`` triples: a reused result costs nothing."""
        tasks = priced = reused = 0
        total = 0.0
        models: list[str] = []
        reasons: list[str] = []
        for model, input, from_journal in items:
            if from_journal:
                reused += 1
                continue
            tasks += 1
            if model not in models:
                models.append(model)
            cost = estimate_cost(model, dict(input))
            if cost is None:
                reason = unknown_reason(model, input) or "no price"
                if f"{model}: {reason}" not in reasons:
                    reasons.append(f"{model}: {reason}")
                continue
            priced += 1
            total += cost
        return cls(tasks, priced, round(total, 6), reused, tuple(models), tuple(reasons))

    def amount(self) -> str:
        """``≈ $0.600`` and what has no price, in words; never "$0" for an unknown."""
        if self.tasks == 0:
            return "nothing to pay"
        if self.priced == 0:
            return "price unknown"
        text = f"≈ {usd(self.total)}"
        if self.unknown:
            text += f" + {self.unknown} of unknown price"
        return text

    def text(self) -> str:
        """One line: how many tasks, the estimated total, the unknowns, and the prices' date."""
        count = f"{self.tasks} task{'s' if self.tasks != 1 else ''}"
        parts = [f"estimate: {count}, {self.amount()}"]
        if self.reused:
            parts.append(f"{self.reused} reused from the journal (free)")
        if self.priced:
            parts.append(price_note(self.models))
        elif self.reasons:
            parts.append(self.reasons[0])
        return " · ".join(parts)


def refusal(estimate: Estimate, spent: float, limit: float, *, in_notebook: bool) -> str | None:
    """The one line refusing ``estimate`` when it takes the session past ``limit``; None if it fits."""
    if estimate.priced == 0 or spent + estimate.total <= limit + 1e-9:
        return None
    raise_it = (
        f"%hiapi config spend_limit={_raised(spent + estimate.total)}"
        if in_notebook
        else f"configure(spend_limit={_raised(spent + estimate.total)}) or HIAPI_SPEND_LIMIT"
    )
    unknown = f" + {estimate.unknown} of unknown price" if estimate.unknown else ""
    return (
        f"Not sent: {estimate.tasks} task{'s' if estimate.tasks != 1 else ''} estimated at "
        f"{usd(estimate.total)}{unknown} ({price_note(estimate.models)}); this session has sent "
        f"≈ {usd(spent)} and its spend_limit is {usd(limit)}. Send it anyway with "
        f"{'--yes (yes=True)' if in_notebook else 'yes=True'}, or raise the limit: {raise_it}"
    )


def _raised(amount: float) -> str:
    """A round limit just above ``amount``."""
    for step in (1, 5, 10, 50, 100, 500, 1000):
        if amount < step * 10 or step == 1000:
            return f"{(int(amount // step) + 1) * step:g}"
    return f"{amount:.0f}"  # pragma: no cover


# --- the session's books ---------------------------------------------------------------------


@dataclass
class Charge:
    """One task this session sent: its estimate (None: unknown price) until it turns out
    it was never created (refused, stopped), when it is dropped."""

    model: str
    cost: float | None
    at: float = field(default_factory=time.time)
    dropped: bool = False


class SessionSpend:
    """What this kernel session has sent, estimated; thread-safe (jobs end on the loop)."""

    def __init__(self) -> None:
        self._charges: list[Charge] = []
        self._lock = threading.Lock()

    def charge(self, model: str, cost: float | None) -> Charge:
        made = Charge(model, cost)
        with self._lock:
            self._charges.append(made)
        return made

    def drop(self, charge: Charge) -> None:
        """It was never created: nothing was billed."""
        with self._lock:
            charge.dropped = True

    @property
    def charges(self) -> list[Charge]:
        with self._lock:
            return [c for c in self._charges if not c.dropped]

    @property
    def total(self) -> float:
        return round(sum(c.cost for c in self.charges if c.cost is not None), 6)


# --- the spend report -----------------------------------------------------------------------


def spend_rows(scope: str, entries: Iterable[tuple[float, str, float | None]]) -> list[dict[str, Any]]:
    """``(unix_time, model, cost or None)`` as one row per day and model, oldest day
    first: tasks, priced, unknown, usd (of the priced ones)."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for at, model, cost in entries:
        day = time.strftime("%Y-%m-%d", time.localtime(at))
        row = grouped.setdefault(
            (day, model),
            {"scope": scope, "day": day, "model": model, "tasks": 0, "priced": 0, "unknown": 0, "usd": 0.0},
        )
        row["tasks"] += 1
        if cost is None:
            row["unknown"] += 1
        else:
            row["priced"] += 1
            row["usd"] = round(row["usd"] + cost, 6)
    return [grouped[k] for k in sorted(grouped)]


def totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sums of ``rows``, with the share of tasks whose price is unknown."""
    tasks = sum(int(r["tasks"]) for r in rows)
    unknown = sum(int(r["unknown"]) for r in rows)
    return {
        "tasks": tasks,
        "priced": tasks - unknown,
        "unknown": unknown,
        "usd": round(sum(float(r["usd"]) for r in rows), 6),
        "unknown_share": unknown / tasks if tasks else 0.0,
    }


__all__ = [
    "DEFAULT_SPEND_LIMIT",
    "Estimate",
    "SessionSpend",
    "limit_problem",
    "price_note",
    "prices_as_of",
    "refusal",
    "spend_rows",
    "totals",
    "unknown_reason",
    "usd",
]
