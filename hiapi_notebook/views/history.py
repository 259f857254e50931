"""``%hiapi history``: recent submissions from the journal, as a table."""
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
        head = "".join(f"<th>{h}</th>" for h in
                       ("when", "status", "model", "prompt", "task id", "cost", "local files"))
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{esc(c)}</td>" for c in row)
                       + "</tr>" for row in self._rows())
        return f"<table class='hiapi-history'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return "\n".join("  ".join(row) for row in self._rows()) or "(no submissions yet)"
