"""Tables for the line magics: ``%hiapi history`` (the journal) and ``%hiapi models``
(the catalogue). HTML in a notebook, aligned text elsewhere."""

from __future__ import annotations

import time

from .text import esc, excerpt


class HistoryTable:
    def __init__(self, records) -> None:
        self.records = records

    def _rows(self):
        for r in self.records:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
            cost = f"${r.cost_estimate:.3f}" if r.cost_estimate is not None else ""
            files = " ".join(f.get("path") or "" for f in r.files)
            yield when, r.status, r.model, excerpt(r.prompt or "", 40), r.task_id or "", cost, files

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>" for h in ("when", "status", "model", "prompt", "task id", "cost", "local files")
        )
        nowrap = {0, 1, 4}  # when, status, task id: one line each
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='text-align:left;vertical-align:top"
                f"{';white-space:nowrap' if i in nowrap else ''}'>{esc(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for row in self._rows()
        )
        return f"<table class='hiapi-history'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return "\n".join("  ".join(row) for row in self._rows()) or "(no submissions yet)"


class ModelTable:
    """The catalogue as a table (HTML in a notebook, text elsewhere)."""

    def __init__(self, specs) -> None:
        self.specs = specs

    def _rows(self):
        for m in self.specs:
            yield m.name, m.kind, ", ".join(_field_text(f) for f in m.fields.values())

    def _repr_html_(self) -> str:
        left = "text-align:left;vertical-align:top"
        body = "".join(
            f"<tr><td style='{left};white-space:nowrap'><code>{esc(a)}</code></td>"
            f"<td style='{left}'>{esc(b)}</td>"
            f"<td style='{left}'>{esc(c)}</td></tr>"
            for a, b, c in self._rows()
        )
        return (
            "<table class='hiapi-models'><thead><tr><th>model</th><th>kind</th>"
            f"<th>inputs</th></tr></thead><tbody>{body}</tbody></table>"
        )

    def __repr__(self) -> str:
        return "\n".join(f"{a:45} {b:6} {c}" for a, b, c in self._rows())


def _field_text(field) -> str:
    """``aspect_ratio (1:1|16:9)``, ``duration (4–15)``, ``prompt*`` for required."""
    name = field.name + ("*" if field.required and field.default is None else "")
    if field.enum:
        return f"{name} ({'|'.join(map(str, field.enum))})"
    if field.type in ("integer", "number") and (field.min is not None or field.max is not None):
        low = "" if field.min is None else f"{field.min:g}"
        high = "" if field.max is None else f"{field.max:g}"
        return f"{name} ({low}–{high})"
    return name
