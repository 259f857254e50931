"""What it costs, shown: the estimate line a batch prints before anything is sent, and
``%hiapi spend`` (estimated spend by day and model, this session and this folder).

Both are static outputs with a plain-text twin, so a saved notebook and a terminal
keep them; the figures come from ``costs`` and say they are estimates from HiAPI's
published list prices, with the tasks of unknown price counted apart, never as $0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..costs import Estimate, price_note, totals, usd
from .frontend import use_widgets
from .text import NO_MATH, esc

NOTE_STYLE = "padding:3px 8px;border-left:3px solid #f0ad4e;background:rgba(240,173,78,0.08);font-size:12px"


def show_estimate(estimate: Estimate) -> None:
    """The estimate of a batch, in the cell, before its first create."""
    text = estimate.text()
    if not use_widgets():
        print(text)
        return
    from IPython.display import display

    html = f'<div class="hiapi-estimate {NO_MATH}" style="{NOTE_STYLE}">{esc(text)}</div>'
    display({"text/html": html, "text/plain": text}, raw=True)


_COLUMNS = ("day", "model", "tasks", "priced", "unknown", "usd")


class SpendView:
    """``%hiapi spend``: ``rows`` from ``spend()`` (dicts with scope, day, model, tasks,
    priced, unknown, usd), one table per scope with its total and unknown share."""

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        scopes: Sequence[str] = ("this session", "this folder"),
        limit: float | None = None,
        note: str = "",
    ) -> None:
        self.rows = [dict(r) for r in rows]
        self.scope_names = list(scopes)
        self.limit = limit
        self.note = note

    def scopes(self) -> list[tuple[str, list[dict[str, Any]]]]:
        order: list[str] = list(self.scope_names)
        for row in self.rows:
            if row["scope"] not in order:
                order.append(row["scope"])
        return [(scope, [r for r in self.rows if r["scope"] == scope]) for scope in order]

    def summary(self, scope: str, rows: Sequence[Mapping[str, Any]]) -> str:
        """``this session: 12 tasks, ≈ $0.600 · 2 of unknown price (17%)``."""
        t = totals(rows)
        if not t["tasks"]:
            return f"{scope}: nothing sent"
        text = f"{scope}: {t['tasks']} task{'s' if t['tasks'] != 1 else ''}, ≈ {usd(t['usd'])}"
        if t["unknown"]:
            text += f" + {t['unknown']} of unknown price ({t['unknown_share']:.0%} of tasks)"
        if scope == "this session" and self.limit is not None:
            text += f" · spend_limit {usd(self.limit)}"
        return text

    def footnote(self) -> str:
        return (
            f"estimates from {price_note()}; a task of unknown price is counted apart, never as $0; "
            "results reused from the journal cost nothing" + (f" · {self.note}" if self.note else "")
        )

    def _repr_html_(self) -> str:
        cell = "text-align:left;padding:2px 10px 2px 0"
        parts = []
        for scope, rows in self.scopes():
            head = "".join(f"<th style='{cell}'>{h}</th>" for h in _COLUMNS)
            body = "".join(
                "<tr>" + "".join(f"<td style='{cell}'>{esc(_cell(r, c))}</td>" for c in _COLUMNS) + "</tr>"
                for r in rows
            )
            parts.append(
                f"<div class='hiapi-spend-scope' data-scope='{esc(scope)}' style='margin:2px 0 6px'>"
                f"<div style='font-weight:600'>{esc(self.summary(scope, rows))}</div>"
                + (
                    f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
                    f"<tbody>{body}</tbody></table>"
                    if rows
                    else ""
                )
                + "</div>"
            )
        return (
            f"<div class='hiapi-spend {NO_MATH}'>{''.join(parts)}"
            f"<div style='font-size:11px;opacity:.75'>{esc(self.footnote())}</div></div>"
        )

    def __repr__(self) -> str:
        lines = []
        for scope, rows in self.scopes():
            lines.append(self.summary(scope, rows))
            table = [_COLUMNS] + [tuple(_cell(r, c) for c in _COLUMNS) for r in rows]
            widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
            if rows:
                lines.extend(
                    "  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table
                )
        lines.append(self.footnote())
        return "\n".join(lines)


def _cell(row: Mapping[str, Any], column: str) -> str:
    if column == "usd":
        return usd(float(row["usd"])) if row["priced"] else "?"
    return str(row[column])


__all__ = ["SpendView", "show_estimate"]
