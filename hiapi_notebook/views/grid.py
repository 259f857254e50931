"""The comparison grid of ``--sweep`` / ``--models`` / ``-n`` and ``generate_many``.

Rows and columns are named by the swept values: with two or more dimensions the
first gives the rows and the others the columns; with one there is a single row.
Each cell shows its job's live status, then its media, or its failure with the
message. Like the gallery it is static HTML behind a display handle, so the
last state shown is what a saved notebook keeps.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..runtime import Job
from .frontend import use_widgets
from .gallery import embed_limit_of, embed_of
from .live import LiveHTML
from .render import CARD_STYLE, THUMB, Viewed, card_html, card_text, job_of
from .text import NO_MATH, esc, excerpt

Dim = tuple[str, list[Any]]  # a dimension's name and its values
Key = tuple[Any, ...]  # a row's or a column's values, one per dimension


def _label(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return excerpt(text, 40)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str)


class ComparisonGrid(LiveHTML):
    """``ComparisonGrid(entries, dims)``: ``entries`` are ``(coords, generation)`` pairs,
    ``coords`` holding one value per dimension of ``dims`` (``[(name, values), ...]``).
    Several entries with the same coordinates (``-n``) share a cell."""

    def __init__(
        self,
        entries: Iterable[tuple[Sequence[Any], Viewed]],
        dims: Sequence[Dim],
        *,
        thumb: int = THUMB,
        embed_limit: int | None = None,
        title: str | None = None,
        embed: str | bool | None = None,
    ) -> None:
        super().__init__()
        self.entries = [(tuple(c), g) for c, g in entries]
        self.dims = [(name, list(values)) for name, values in dims]
        self.thumb = int(thumb)
        self.embed_limit = embed_limit
        self.title = title
        self.embed = embed
        self.estimate: str | None = None  # what the batch was estimated to cost, before it was sent

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_sweep(
        cls,
        generations: Sequence[Viewed],
        *,
        models: Sequence[str] = (),
        sweeps: Mapping[str, Sequence[Any]] | None = None,
        n: int = 1,
        **options: Any,
    ) -> ComparisonGrid:
        """``generations`` in the magic's order: models × sweep combinations × ``n`` variants."""
        sweeps = dict(sweeps or {})
        dims: list[Dim] = []
        if len(models) > 1:
            dims.append(("model", list(models)))
        dims.extend((name, list(values)) for name, values in sweeps.items())
        model_axis: list[str | None] = list(models) if len(models) > 1 else [None]
        combos = list(itertools.product(*sweeps.values())) if sweeps else [()]
        coords = [
            ((m,) if m is not None else ()) + combo for m in model_axis for combo in combos for _ in range(n)
        ]
        if not dims:  # -n alone: one column per variant
            dims = [("variant", list(range(1, n + 1)))]
            coords = [(i + 1,) for i in range(n)]
        if len(coords) != len(generations):
            raise ValueError(f"{len(generations)} generations for {len(coords)} grid cells")
        return cls(zip(coords, generations), dims, **options)

    @classmethod
    def from_requests(
        cls, generations: Sequence[Viewed], requests: Sequence[Mapping[str, Any]], **options: Any
    ) -> ComparisonGrid:
        """Dimensions are the keys whose values differ between ``requests`` (dicts of
        ``build_request`` arguments); a grid too sparse to read becomes one row of items."""
        requests = [_flat(r) for r in requests]
        names: list[str] = []
        for r in requests:
            names.extend(k for k in r if k not in names)
        dims: list[Dim] = []
        for name in names:
            seen: dict[Any, Any] = {}
            for r in requests:
                value = r.get(name)
                seen.setdefault(_hashable(value), value)
            if len(seen) > 1:
                dims.append((name, list(seen.values())))
        coords = [tuple(r.get(name) for name, _ in dims) for r in requests]
        distinct = len({tuple(_hashable(v) for v in c) for c in coords})
        size = 1
        for _, values in dims:
            size *= len(values)
        if not dims or size > max(4, 2 * distinct):
            dims = [("#", list(range(1, len(requests) + 1)))]
            coords = [(i + 1,) for i in range(len(requests))]
        return cls(zip(coords, generations), dims, **options)

    # --- LiveHTML -------------------------------------------------------------------------
    def jobs(self) -> list[Job]:
        return [job_of(g) for _, g in self.entries]

    @property
    def generations(self) -> list[Viewed]:
        return [g for _, g in self.entries]

    def layout(self) -> tuple[Dim | None, list[Dim], list[Key], list[Key]]:
        """(row dim or None, column dims, row keys, column keys)."""
        row_dim: Dim | None
        rows: list[Key]
        if len(self.dims) >= 2:
            row_dim, col_dims = self.dims[0], self.dims[1:]
            rows = [(v,) for v in row_dim[1]]
        else:
            row_dim, col_dims = None, list(self.dims)
            rows = [()]
        cols = list(itertools.product(*(values for _, values in col_dims)))
        return row_dim, col_dims, rows, cols

    def cell(self, row: Key, col: Key) -> list[Viewed]:
        key = tuple(_hashable(v) for v in row + col)
        return [g for c, g in self.entries if tuple(_hashable(v) for v in c) == key]

    def render_html(self) -> str:
        row_dim, col_dims, rows, cols = self.layout()
        w = self.thumb
        th = (
            'style="padding:4px 6px;font-size:12px;text-align:center;white-space:nowrap;'
            'font-family:var(--jp-code-font-family,monospace);background:var(--jp-layout-color2,#f5f5f5)"'
        )
        col_names = " · ".join(name for name, _ in col_dims)
        corner = ""
        if row_dim is not None:
            corner = f'<th class="hiapi-corner" {th}>{esc(row_dim[0])} ↓ · {esc(col_names)} →</th>'
        head = "".join(
            f'<th class="hiapi-col" scope="col" data-col="{esc(_key_text(col))}" {th}>'
            f"{esc(_col_label(col_dims, col))}</th>"
            for col in cols
        )
        header = f"<tr>{corner or ''}{head}</tr>"
        if row_dim is None:
            header = f'<tr><th colspan="{len(cols)}" {th}>{esc(col_names)}</th></tr>' + header
        body = []
        for row in rows:
            cells = []
            if row_dim is not None:
                cells.append(
                    f'<th class="hiapi-row" scope="row" data-row="{esc(_key_text(row))}" {th}>'
                    f"{esc(_label(row[0]))}</th>"
                )
            for col in cols:
                gens = self.cell(row, col)
                inner = (
                    "".join(
                        f'<div style="flex:0 0 {w}px;width:{w}px">'
                        + card_html(
                            job_of(g),
                            thumb=w,
                            embed_limit=embed_limit_of(g, self.embed_limit),
                            embed=embed_of(g, self.embed),
                            caption="short",
                        )
                        + "</div>"
                        for g in gens
                    )
                    or '<span style="color:#999">—</span>'
                )
                cells.append(
                    f'<td class="hiapi-cell" data-row="{esc(_key_text(row))}" '
                    f'data-col="{esc(_key_text(col))}" style="vertical-align:top;text-align:left;padding:4px;'
                    f'min-width:{w // 2}px;max-width:{w * max(1, len(gens))}px">'
                    f'<div style="display:flex;gap:6px;align-items:flex-start">{inner}</div></td>'
                )
            body.append("<tr>" + "".join(cells) + "</tr>")
        done = sum(1 for j in self.jobs() if j.done)
        failed = sum(1 for j in self.jobs() if j.done and not j.succeeded)
        summary = f"{done}/{len(self.entries)} done" + (f" · {failed} failed" if failed else "")
        title = self.title or "hiapi comparison"
        return (
            f'<div class="hiapi-grid {NO_MATH}" data-done="{done}" data-total="{len(self.entries)}">'
            f"{CARD_STYLE}"
            f'<div style="font-size:12px;margin-bottom:4px">{esc(title)} · {esc(summary)}</div>'
            + (
                f'<div class="hiapi-grid-estimate" style="font-size:11px;opacity:.8;margin-bottom:4px">'
                f"{esc(self.estimate)}</div>"
                if self.estimate
                else ""
            )
            + '<div style="overflow-x:auto"><table style="border-collapse:separate;border-spacing:2px">'
            f"<thead>{header}</thead><tbody>{''.join(body)}</tbody></table></div></div>"
        )

    def render_text(self) -> str:
        lines = []
        for coords, gen in self.entries:
            where = " ".join(f"{name}={_label(v)}" for (name, _), v in zip(self.dims, coords))
            lines.append(f"[{where}] {card_text(job_of(gen))}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ComparisonGrid {' × '.join(f'{n}({len(v)})' for n, v in self.dims)}>"


def _flat(request: Mapping[str, Any]) -> dict[str, Any]:
    """build_request arguments as one flat mapping: model, prompt, then input fields."""
    flat = {k: v for k, v in request.items() if k not in ("input",)}
    for k, v in (request.get("input") or {}).items():
        flat.setdefault(k, v)
    return flat


def _key_text(key: Key) -> str:
    return " · ".join(_label(v) for v in key)


def _col_label(col_dims: list[Dim], col: Key) -> str:
    if len(col_dims) == 1:
        return _label(col[0])
    return " · ".join(f"{name}={_label(v)}" for (name, _), v in zip(col_dims, col))


def show_grid(grid: ComparisonGrid) -> ComparisonGrid:
    """Display ``grid`` in this cell: live static HTML in a notebook, text lines elsewhere."""
    from .status import TextTaskView

    if use_widgets():
        return grid.display()
    for job in grid.jobs():
        TextTaskView(job).display()
    return grid


__all__ = ["ComparisonGrid", "show_grid"]
