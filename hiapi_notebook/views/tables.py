"""``%hiapi models``: the catalogue as a table. HTML in a notebook, aligned text elsewhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..catalog import FieldSpec, ModelSpec
from .text import esc

FOOTNOTE = "* required · ranges include both ends · %hiapi models WORD shows the models that match"


class ModelTable:
    """The catalogue as a table (HTML in a notebook, text elsewhere)."""

    def __init__(self, specs: Sequence[ModelSpec]) -> None:
        self.specs = list(specs)

    def _rows(self) -> Iterator[tuple[str, str, str]]:
        for m in self.specs:
            yield m.name, m.kind, ", ".join(field_text(f) for f in m.fields.values())

    def _repr_html_(self) -> str:
        cell = "text-align:left;vertical-align:top;padding:2px 10px 2px 0"
        body = "".join(
            f"<tr><td style='{cell};white-space:nowrap'><code style='white-space:nowrap'>{esc(a)}</code></td>"
            f"<td style='{cell};white-space:nowrap'>{esc(b)}</td>"
            f"<td style='{cell}'>{esc(c)}</td></tr>"
            for a, b, c in self._rows()
        )
        head = "".join(f"<th style='{cell}'>{h}</th>" for h in ("model", "kind", "inputs"))
        return (
            f"<table class='hiapi-models' style='border-collapse:collapse'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
            "<div class='hiapi-models-note' style='font-size:11px;opacity:.75;margin-top:4px'>"
            f"{esc(FOOTNOTE)}</div>"
        )

    def __repr__(self) -> str:
        rows = list(self._rows())
        name_w = max([len("model")] + [len(r[0]) for r in rows])
        kind_w = max([len("kind")] + [len(r[1]) for r in rows])
        lines = [f"{'model':{name_w}}  {'kind':{kind_w}}  inputs", f"{'-' * name_w}  {'-' * kind_w}  ------"]
        lines += [f"{a:{name_w}}  {b:{kind_w}}  {c}" for a, b, c in rows]
        return "\n".join(lines + ["", FOOTNOTE])


def number_text(x: float | int | None) -> str:
    """2147483647, not 2.14748e+09; 0.5 as 0.5."""
    if x is None:
        return ""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x) if isinstance(x, int) else f"{x:g}"


def field_text(field: FieldSpec) -> str:
    """``aspect_ratio (1:1|16:9)``, ``duration (4–15)``, ``prompt*`` for required."""
    name = field.name + ("*" if field.required and field.default is None else "")
    if field.enum:
        return f"{name} ({'|'.join(map(str, field.enum))})"
    if field.type in ("integer", "number") and (field.min is not None or field.max is not None):
        return f"{name} ({number_text(field.min)}–{number_text(field.max)})"
    return name
