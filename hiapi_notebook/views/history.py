"""``%hiapi history``: the journal's latest submissions as a compact visual list.

One row per submission, newest first: a thumbnail of its result (a click enlarges
it), its status, model, the start of its prompt, when it was made (the time itself:
a saved notebook would keep a "just now" forever), its cost, its local files (links
beside the notebook), and its task id, whole on hover and copied by a click. It is
one static HTML output sized to the output area, so a saved notebook keeps it;
terminals get an aligned text table.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..costs import price_note, unknown_reason
from ..journal import DEFAULT_OUTPUTS_DIR, Record
from ..media import REF, is_ref, ref_label
from ..recorder import files_from_record
from ..records import inside
from ..runtime import OutputFile
from .frontend import files_resolve
from .render import CARD_STYLE, EMBED_LIMIT, Shown, embed_mode, open_source, still_source, zoom_html
from .shown import file_size_text, local_path
from .text import COLOURS, NO_MATH, STYLE, esc, excerpt

THUMB = 56  # px shown in the row (drawn at twice that, for sharp screens)
THUMB_BYTES = 256 * 1024  # an input's small picture is a 64 px JPEG: anything larger is not one
INPUT_THUMBS = "inputs"  # the journal's folder of input pictures (``inputs.THUMBS_DIR``)
_STILL_TYPES = ("image", "first_frame", "thumbnail", "last_frame")

ROW_STYLE = """<style>
.hiapi-journal{font-size:12px;width:100%;max-width:100%;box-sizing:border-box}
.hiapi-journal-head,.hiapi-journal-row{display:grid;align-items:center;gap:8px;padding:3px 4px;
  grid-template-columns:60px 76px minmax(0,1.1fr) minmax(0,2fr) max-content 56px minmax(0,1fr)
  minmax(0,1fr)}
.hiapi-journal-head{font-weight:600;color:var(--jp-content-font-color2,#666);
  border-bottom:1px solid var(--jp-border-color2,#ddd)}
.hiapi-journal-row{border-bottom:1px solid var(--jp-border-color3,#eee)}
.hiapi-journal-row>*{min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.hiapi-journal-thumb{width:56px;height:56px;display:flex;align-items:center;justify-content:center;
  background:var(--jp-layout-color2,#f3f3f3);border-radius:3px;overflow:hidden}
.hiapi-journal-thumb img{width:56px;height:56px;object-fit:cover;display:block}
.hiapi-journal-id{font-family:var(--jp-code-font-family,monospace);user-select:all;cursor:copy}
.hiapi-journal-row>.hiapi-journal-id:hover{white-space:normal;overflow:visible;word-break:break-all}
.hiapi-journal-id.hiapi-copied::after{content:"copied";display:inline-block;margin-left:6px;
  color:var(--jp-success-color1,#5cb85c)}
.hiapi-journal-files a{margin-right:6px}
.hiapi-journal-status{font-weight:600}
</style>"""


# A click copies the id (where the output may run script: a trusted notebook); elsewhere the
# click still selects it whole (user-select:all) for Ctrl+C.
_COPY = (
    "var e=this,t=e.dataset.copy,c=navigator.clipboard;"
    "(c?c.writeText(t):Promise.reject()).catch(function(){document.execCommand('copy')})"
    ".then(function(){e.classList.add('hiapi-copied');"
    "setTimeout(function(){e.classList.remove('hiapi-copied')},1500)})"
)


def when_text(created: float, now: float) -> str:
    """The time a submission was made, as short as still says it: the year only when it is not
    this year's. Never relative: the saved notebook keeps this text."""
    made, today = time.localtime(created), time.localtime(now)
    if made.tm_year != today.tm_year:
        return time.strftime("%Y-%m-%d %H:%M", made)
    return f"{time.strftime('%b', made)} {made.tm_mday}, {time.strftime('%H:%M', made)}"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def _colour(status: str) -> str:
    style = "danger" if status in ("error", "failed", "cancelled", "canceled") else STYLE.get(status, "")
    return COLOURS.get(style, COLOURS[""])


class HistoryView:
    """``HistoryView(records)``: newest first, as ``Journal.history`` gives them."""

    def __init__(
        self,
        records: Sequence[Record],
        *,
        title: str = "",
        now: float | None = None,
        folder: Path | None = None,
        outputs: Path | str = DEFAULT_OUTPUTS_DIR,
        embed: str = "preview",
        embed_limit: int = EMBED_LIMIT,
    ) -> None:
        """``folder``: the journal's folder, where the small pictures of media inputs are kept;
        ``outputs``: the folder of the local copies; ``embed`` and ``embed_limit``: what the
        rows keep of each result (``render``'s rule). A path the journal names outside its
        folder is never read (a journal from a cloned repository is not trusted)."""
        self.records = list(records)
        self.title = title
        self.now = time.time() if now is None else now
        self.folder = folder
        self.outputs = outputs
        self.embed = embed_mode(embed)
        self.embed_limit = embed_limit

    # --- one row ---------------------------------------------------------------------------
    def _thumb_html(self, rec: Record) -> str:
        """The result, small; a click shows it whole (or plays the clip), as ``embed`` says."""
        files = [Shown.of(f, self.embed_limit) for f in files_from_record(rec, self.outputs)]
        still = next(
            (s for s in files if s.file.type in _STILL_TYPES and s.kind == "image" and s.kept),
            None,
        )
        if still is None:
            mark = {"success": "·", "pending": "…"}.get(rec.status, "×" if rec.status == "fail" else "…")
            return f'<div class="hiapi-journal-thumb" title="no local copy">{mark}</div>'
        small, _ = still_source(still, self.embed, THUMB * 2, "cover")  # a square crop
        full = open_source(still, self.embed) or small
        inside = f'<img src="{esc(full)}" loading="lazy" alt="{esc(rec.model)}">'
        video = next((s for s in files if s.kind == "video" and s.kept), None)
        clip = open_source(video, self.embed) if video is not None else None
        if clip:
            inside = (
                f'<video controls playsinline src="{esc(clip)}" preload="none" poster="{esc(full)}"></video>'
            )
        caption = esc(
            " · ".join(p for p in (rec.model, excerpt(rec.prompt or "", 300), rec.task_id or "") if p)
        )
        zoom = zoom_html(small, inside, caption, alt=rec.model, width=THUMB)
        return f'<div class="hiapi-journal-thumb">{zoom}</div>'

    def _row_html(self, rec: Record) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created_at))
        ago = _ago(self.now - rec.created_at)
        prompt = rec.prompt or ""
        cost, why = cost_cell(rec)
        task = rec.task_id or ""
        reason = (rec.error or {}).get("message") or ""
        copy = (
            f'<span class="hiapi-journal-id" data-copy="{esc(task)}" title="{esc(task)} · a click copies it" '
            f'onclick="{esc(_COPY)}">{esc(task)}</span>'
        )
        return (
            f'<div class="hiapi-journal-row" data-status="{esc(rec.status)}" data-task="{esc(task)}">'
            f"{self._thumb_html(rec)}"
            f'<span class="hiapi-journal-status" style="color:{_colour(rec.status)}" '
            f'title="{esc(reason or rec.status)}">{esc(rec.status)}</span>'
            f'<span title="{esc(rec.model)}">{esc(rec.model)}</span>'
            f'<span title="{esc(prompt)}">{self._inputs_html(rec)}{esc(excerpt(prompt, 200))}</span>'
            f'<span class="hiapi-journal-when" title="{esc(when)} ({esc(ago)} when this was shown)">'
            f"{esc(when_text(rec.created_at, self.now))}</span>"
            f'<span class="hiapi-journal-cost" title="{esc(why)}">{esc(cost)}</span>'
            f'<span class="hiapi-journal-files">{self._files_html(rec)}</span>'
            f"{copy}</div>"
        )

    def _files_html(self, rec: Record) -> str:
        """Each output's local copy, a link beside the notebook (plain text where the front
        end cannot open one); a missing copy says why."""
        shown = []
        for f in files_from_record(rec, self.outputs):
            name, where = _local(f)
            if name is None:
                if f.problem and rec.outputs:
                    shown.append(f'<span title="{esc(f.problem)}">{esc(f.type)}: no copy</span>')
                continue
            title = esc(" · ".join(p for p in (where, file_size_text(f.size)) if p))
            relative = local_path(f)
            if relative and files_resolve():
                shown.append(f'<a href="{esc(relative)}" target="_blank" title="{title}">{esc(name)}</a>')
            else:
                shown.append(f'<span title="{title}">{esc(name)}</span>')
        return "".join(shown) or "—"

    def _inputs_html(self, rec: Record) -> str:
        """Each media input: its small picture when one was kept, else its name."""
        shown = []
        for ref in _refs(rec.input):
            digest = str(ref.get(REF, "")).removeprefix("sha256:")[:12]
            title = esc(f"input: {ref.get('source') or ''} · sha256 {digest}")
            data = self._input_thumb(ref.get("thumb"))
            if data is not None:
                shown.append(
                    f'<img class="hiapi-input-thumb" src="data:image/jpeg;base64,{_b64(data)}" '
                    f'title="{title}" style="height:28px;width:auto;margin-right:4px;vertical-align:middle">'
                )
            else:
                shown.append(f'<code title="{title}">{esc(excerpt(ref_label(ref), 24))}</code> ')
        return "".join(shown)

    def _input_thumb(self, name: object) -> bytes | None:
        """The bytes of an input's small picture: a JPEG file inside the journal's ``inputs``
        folder, whatever path the row names (``../../``, a link leading out: not read)."""
        if self.folder is None or not isinstance(name, str) or not name:
            return None
        path = inside(self.folder / INPUT_THUMBS, self.folder / name)
        if path is None or not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                data = fh.read(THUMB_BYTES + 1)
        except OSError:
            return None
        return data if len(data) <= THUMB_BYTES and data.startswith(b"\xff\xd8\xff") else None

    # --- display ----------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        heads = ("result", "status", "model", "prompt", "when", "cost", "local files", "task id")
        head = "".join(f"<span>{h}</span>" for h in heads)
        rows = "".join(self._row_html(rec) for rec in self.records)
        if not rows:
            rows = '<div style="padding:6px">no submissions match</div>'
        title = f'<div style="margin:2px 0 4px">{esc(self.title)}</div>' if self.title else ""
        return (
            f'<div class="hiapi-journal {NO_MATH}">{CARD_STYLE}{ROW_STYLE}{title}'
            f'<div class="hiapi-journal-head">{head}</div>{rows}</div>'
        )

    def _text_rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = [
            ("when", "status", "model", "prompt", "task id", "cost", "local files")
        ]
        for rec in self.records:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created_at))
            cost = cost_cell(rec)[0]
            files = " ".join(
                where or name for name, where in map(_local, files_from_record(rec, self.outputs)) if name
            )
            prompt = excerpt(rec.prompt or "", 40)
            rows.append((when, rec.status, rec.model, prompt, rec.task_id or "-", cost, files or "-"))
        return rows

    def __repr__(self) -> str:
        rows = self._text_rows()
        if len(rows) == 1:
            return "(no submissions match)"
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _local(f: OutputFile) -> tuple[str | None, str | None]:
    """(the local copy's file name, its path relative to the notebook when inside its folder,
    else as kept), or (None, None) when there is no copy here."""
    if f.path is None or f.problem is not None:
        return None, None
    return f.path.name, local_path(f) or str(f.path)


def cost_cell(rec: Record) -> tuple[str, str]:
    """The cost column and its tooltip: the estimate, or "?" and why there is none."""
    if rec.cost_estimate is not None:
        return f"${rec.cost_estimate:.3f}", f"estimated from {price_note([rec.model])}"
    reason = unknown_reason(rec.model, rec.input) or "no estimate was recorded for it"
    return "?", f"price unknown: {reason}"


def _refs(input: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The media references of a recorded input, in field order."""
    found: list[Mapping[str, Any]] = []
    for value in input.values():
        found.extend(v for v in (value if isinstance(value, list) else [value]) if is_ref(v))
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


__all__ = ["HistoryView"]
