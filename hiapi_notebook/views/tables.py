"""Tables for the line magics: ``%hiapi history`` (the journal) and ``%hiapi models``
(the catalogue). HTML in a notebook, aligned text elsewhere."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from ..media import REF, is_ref, ref_label
from .text import esc, excerpt


class HistoryTable:
    """``folder``: the journal's folder, where the small pictures of media inputs are kept."""

    def __init__(self, records, folder: Path | None = None) -> None:
        self.records = records
        self.folder = folder

    def _rows(self):
        for r in self.records:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
            cost = f"${r.cost_estimate:.3f}" if r.cost_estimate is not None else ""
            files = " ".join(f.get("path") or "" for f in r.files)
            used = " ".join(ref_label(ref) for ref in _refs(r.input))
            yield when, r.status, r.model, excerpt(r.prompt or "", 40), used, r.task_id or "", cost, files

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>"
            for h in ("when", "status", "model", "prompt", "inputs", "task id", "cost", "local files")
        )
        nowrap = {0, 1, 5}  # when, status, task id: one line each
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='text-align:left;vertical-align:top"
                f"{';white-space:nowrap' if i in nowrap else ''}'>"
                f"{self._inputs_html(rec) if i == 4 else esc(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for rec, row in zip(self.records, self._rows())
        )
        return f"<table class='hiapi-history'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return "\n".join("  ".join(row) for row in self._rows()) or "(no submissions yet)"

    def _inputs_html(self, rec) -> str:
        """Each media input: its small picture when one was kept, else its name."""
        shown = []
        for ref in _refs(rec.input):
            title = esc(
                f"{ref.get('source') or ''} · sha256 {str(ref.get(REF, '')).removeprefix('sha256:')[:12]}"
            )
            thumb = self.folder / ref["thumb"] if self.folder is not None and ref.get("thumb") else None
            if thumb is not None and thumb.is_file():
                data = base64.b64encode(thumb.read_bytes()).decode()
                shown.append(
                    f'<img class="hiapi-input-thumb" src="data:image/jpeg;base64,{data}" title="{title}" '
                    'style="height:40px;width:auto;margin-right:2px;vertical-align:middle">'
                )
            else:
                shown.append(f'<span title="{title}">{esc(excerpt(ref_label(ref), 24))}</span>')
        return " ".join(shown)


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


def _refs(input: dict) -> list[dict]:
    """The media references of a recorded input, in field order."""
    found = []
    for value in input.values():
        found.extend(v for v in (value if isinstance(value, list) else [value]) if is_ref(v))
    return found


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
