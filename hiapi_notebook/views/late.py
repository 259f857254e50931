"""Results that end after their cell did, in a run nobody watches (nbclient, papermill).

nbclient keeps only the messages of the cell it is running, and rewrites an earlier
output only for an ``update_display_data`` that arrives while some cell runs. So the
final outputs of a ``--no-wait`` cell, sent from the background when its task ends,
never reach the saved file. Here such views are noted, and ``%hiapi wait`` re-sends
their final outputs from the wait cell itself: the same display ids, with the running
cell as parent, so nbclient puts each result back in the cell that made it.

Views whose jobs all ended before their cell did were drawn in that cell: they are
dropped when it ends. Where a front end watches (JupyterLab, VS Code...), nothing is
noted: late results reach it as they come.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..runtime import Job
from .frontend import use_widgets, watched_live

NOTE = (
    "This run is not watched live (papermill, nbconvert, jupyter execute): these results reach "
    "the saved notebook only when a later cell runs %hiapi wait (or hiapi_notebook.wait())."
)


@dataclass(eq=False)
class _Late:
    jobs: Callable[[], list[Job]]
    resend: Callable[[], None]  # sends the final outputs again, from the calling thread
    cell: int | None  # the execution count of the cell that showed it


_pending: list[_Late] = []
_notes: list = []  # display handles of the notes above, cleared once the results are in
_lock = threading.Lock()
_hooked = False


def saved_only_by_wait() -> bool:
    """Whether late results reach the saved notebook only through ``%hiapi wait``."""
    return not watched_live() and use_widgets()


def follow(jobs: Callable[[], list[Job]], resend: Callable[[], None]) -> None:
    """Note a view just shown, so ``%hiapi wait`` can re-send it if it ends late."""
    if not saved_only_by_wait():
        return
    with _lock:
        _pending.append(_Late(jobs, resend, _cell()))
    _hook_cell_end()


def note_late() -> None:
    """Say in this cell (a ``--no-wait`` one) that its results need ``%hiapi wait``."""
    if not saved_only_by_wait():
        return
    from IPython.display import display

    bundle = {
        "text/html": '<div class="hiapi-note" style="padding:4px 8px;border-left:3px solid #f0ad4e;'
        f'background:rgba(240,173,78,0.08)">{html.escape(NOTE)}</div>',
        "text/plain": NOTE,
    }
    handle = display(bundle, raw=True, display_id=True)
    if handle is not None:
        with _lock:
            _notes.append(handle)


def resend_ended() -> int:
    """Re-send, from this cell, every noted view of an earlier cell whose jobs have all
    ended; the notes go once none is left. Returns how many views were re-sent."""
    with _lock:
        if not _pending and not _notes:
            return 0  # nothing noted (a watched front end, a script): no need to ask IPython
    now = _cell()
    with _lock:
        ready = [late for late in _pending if late.cell != now and all(job.done for job in late.jobs())]
        _pending[:] = [late for late in _pending if late not in ready]
        notes = list(_notes) if not _pending else []
        if not _pending:
            _notes.clear()
    for late in ready:
        late.resend()
    for handle in notes:
        handle.update({"text/plain": ""}, raw=True)
    return len(ready)


def _cell() -> int | None:
    """The running cell's execution count (IPython counts it up once the cell ends)."""
    from IPython import get_ipython

    shell = get_ipython()
    return getattr(shell, "execution_count", None)


def _drop_drawn(*_args: object) -> None:
    """A cell ended: views whose jobs all ended were drawn in it, nothing to re-send."""
    with _lock:
        _pending[:] = [late for late in _pending if not all(job.done for job in late.jobs())]


def _hook_cell_end() -> None:
    global _hooked
    with _lock:
        if _hooked:
            return
        _hooked = True
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", _drop_drawn)
