"""Plain words for a job's state, shared by every view (widget, HTML, text)."""

from __future__ import annotations

import html

from ..catalog import estimate_cost
from ..costs import price_note, usd
from ..runtime import Job
from .frontend import detect

STYLE = {  # tqdm's vocabulary: info while queued, running, then success or danger
    "submitting": "info",
    "submitted": "info",
    "attaching": "info",
    "queued": "info",
    "handling": "",
    "archiving": "",
    "success": "success",
    "fail": "danger",
    "error": "danger",
    "timeout": "warning",  # we stopped watching; the task itself may still finish
    "waiting": "info",  # for a concurrency slot: nothing sent yet
    "stopped": "warning",  # its batch stopped before its turn: nothing was sent
}
# JupyterLab and ipywidgets typeset $…$ in HTML as LaTeX: two prices (or a prompt's dollars) in one
# line would turn into math. Every element of ours that shows such text carries these classes.
NO_MATH = "tex2jax_ignore mathjax_ignore"
COLOURS = {"info": "#5bc0de", "": "#337ab7", "success": "#5cb85c", "danger": "#d9534f", "warning": "#f0ad4e"}


def excerpt(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def style_of(job: Job) -> str:
    return STYLE.get(job.status, "")


def elapsed_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def headline(job: Job) -> str:
    """model · "prompt…" · task id, as plain text."""
    parts = [job.request.model or "task"]
    if job.request.prompt:
        parts.append(f'"{excerpt(job.request.prompt)}"')
    if job.task_id:
        parts.append(job.task_id)
    return " · ".join(parts)


def state_text(job: Job) -> str:
    """status and time, plus why it failed or where the result came from."""
    status = job.status
    if job.cached:
        when = _clock(job.finished)
        if job.looked_up:
            return f"{status} · from the journal (finished {when})"
        return f"{status} · cached (made {when}; {fresh_words()} to run again)"
    text = f"{status} · {elapsed_text(job.elapsed)}"
    if job.replayed:
        text += " · replayed"
    if job.attached:
        text += " · re-attached"
    if job.sandbox:
        text += " · sandbox (synthetic)"
    cost = cost_of(job)  # what this task is estimated to cost (list price), when it has one
    if cost is not None:
        text += f" · ≈ {usd(cost)}"
    problem = failure_text(job)
    if problem:
        text += f" · {problem}"
    if job.notice and not job.done:
        text += f" · {job.notice}"
    return text


def fresh_words() -> str:
    """How to ask for a new result instead of the recorded one, in the words of where the user
    is: a cell's option in a notebook or terminal IPython, the keyword in a script."""
    return "fresh=True" if detect() == "script" else "--fresh"


def cost_of(job: Job) -> float | None:
    """The task's estimated cost at list price; None when unknown, or for a task this view
    only follows (re-attached: paid for when it was sent)."""
    if job.attached or not job.request.model:
        return None
    return estimate_cost(job.request.model, dict(job.request.input))


def cost_title(job: Job) -> str:
    """A tooltip for the state line: where its price comes from ("" when it shows none)."""
    if job.cached or cost_of(job) is None:
        return ""
    return f"≈ price: an estimate from {price_note([job.request.model])}"


def failure_text(job: Job) -> str | None:
    if job.status == "fail" and job.task is not None and job.task.error is not None:
        return job.task.error.message or job.task.error.code or "failed"
    if job.error is not None and job.status in ("error", "fail", "timeout", "stopped"):
        return str(job.error) or type(job.error).__name__
    return None


def status_line(job: Job) -> str:
    return f"{headline(job)} — {state_text(job)}"


def progress(job: Job) -> float:
    """A bar position: the API reports no percentage, so stages and time stand in."""
    fixed = {
        "submitting": 0.03,
        "submitted": 0.06,
        "attaching": 0.06,
        "queued": 0.1,
        "archiving": 0.92,
        "success": 1.0,
        "fail": 1.0,
        "error": 1.0,
        "timeout": 1.0,
        "waiting": 0.0,
        "stopped": 1.0,
    }
    if job.status in fixed:
        return fixed[job.status]
    # handling (or a status we do not know): creep towards 90 %, never reach it
    return 0.1 + 0.8 * (1 - 1 / (1 + job.elapsed / 30.0))


def esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _clock(ts: float | None) -> str:
    import time

    if not ts:
        return "earlier"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
