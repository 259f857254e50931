"""The form's static twin: what a saved notebook shows where the form was, once no kernel
is there to drive it. Like a finished task's status bar, the form leaves HTML that reads
well on its own: the ``%%hiapi`` cell its settings make, and what it generated, as
pictures (newest first).

JupyterLab saves widget state with the notebook (``saveState``), so a reopened notebook
would draw the form again from that state: a frozen copy with a red "disconnected" mark on
each control, none of which works. The twin's style rules keep one of the two in view:
while the form is live (its widgets connected to a kernel) the twin hides; when the form
is dead (``jupyter-widgets-disconnected``, a model not found, no widget manager at all) the
form's output hides and the twin shows. Where the rules do not apply (GitHub, nbviewer:
no widgets, no style) the twin simply shows.

With a kernel, JupyterLab does more: it opens a comm for each saved widget, and the new
kernel makes a widget for each, with none of the form's code behind it (126 widgets for a
form with two results, none of which does anything). ``close_dead_forms()``, run when the
extension loads and when a form is made, closes those, so the dead form leaves the page.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from ..views.gallery import Gallery
from ..views.text import esc

# The form's output is the one just before the twin's (PromptForm._ipython_display_).
LIVE_FORM = ".hiapi-form:not(.jupyter-widgets-disconnected)"
STYLE = (
    "<style>"
    f".jp-OutputArea-child:has({LIVE_FORM}) + .jp-OutputArea-child .hiapi-form-kept{{display:none}}"
    ".jp-OutputArea-child:has(+ .jp-OutputArea-child .hiapi-form-kept)"
    f":not(:has({LIVE_FORM})){{display:none}}"
    ".hiapi-form-kept-cell{font-family:var(--jp-code-font-family,monospace);font-size:12px;"
    "white-space:pre-wrap;margin:4px 0 8px;padding:6px 8px;border-radius:3px;"
    "background:var(--jp-layout-color2,#f3f3f3);color:var(--jp-content-font-color1,#222)}"
    "</style>"
)


class FormTwin(Gallery):
    """The form as static HTML, kept current through its display handle: ``cell`` (the
    form's settings as a ``%%hiapi`` cell, set by the form on each change) and the
    results, newest first."""

    def __init__(self, thumb: int) -> None:
        super().__init__(thumb=thumb, newest_first=True, title="generated in this form")
        self.cell = ""

    def show_cell(self, cell: str) -> None:
        """The form's settings changed: say so in the saved notebook too."""
        if cell != self.cell:
            self.cell = cell
            self._changed()

    def render_html(self) -> str:
        head = (
            '<div style="font-size:12px"><b>PromptForm</b> · its controls need a running kernel: '
            "run this cell to use them. Its settings, as a cell:</div>"
            f'<pre class="hiapi-form-kept-cell">{esc(self.cell)}</pre>'
        )
        history = super().render_html() if self.generations else ""
        return f'{STYLE}<div class="hiapi-form-kept">{head}{history}</div>'

    def render_text(self) -> str:
        lines = ["PromptForm (its controls need a running kernel); its settings, as a cell:", self.cell]
        if self.generations:
            lines += ["generated in this form, newest first:", super().render_text()]
        return "\n".join(lines)


# The root widget of each form this kernel made (the form holds it; callbacks hold the form).
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def made_here(widget: Any) -> None:
    """``widget`` is the root of a form of this kernel: never a dead one."""
    _LIVE.add(widget)


def close_dead_forms() -> int:
    """Close every form root (and all inside it) that a reopened notebook's saved widget
    state made in this kernel with no form behind it; returns how many were closed."""
    if "ipywidgets" not in sys.modules:
        return 0  # no widget yet, so none restored (and a terminal never imports it)
    from ipywidgets.widgets import widget as module

    instances = getattr(module, "_instances", None)
    if instances is None:  # ipywidgets 7
        instances = module.Widget.widgets
    dead = [
        w
        for w in list(instances.values())
        if "hiapi-form" in getattr(w, "_dom_classes", ()) and w not in _LIVE
    ]
    for root in dead:
        _close_tree(root)
    return len(dead)


def close_dead_forms_after(_result: object = None) -> None:
    """``close_dead_forms`` as IPython's ``post_run_cell`` hook (registered once per shell)."""
    close_dead_forms()


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    try:
        widget.close()
    except Exception:  # a comm already gone: nothing left to close
        pass
