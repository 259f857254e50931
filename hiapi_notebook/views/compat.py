"""What the views need of ipywidgets that 7.7 (Google Colab's pin) and 8 spell differently,
in one place. Each function says which version lacks what."""

from __future__ import annotations

from typing import Any


def widget_bundle(widget: Any) -> dict[str, Any]:
    """The mime bundle that shows ``widget``, to display raw or behind a display handle.
    ipywidgets 8 has ``_repr_mimebundle_``; 7.x only displays itself (``_ipython_display_``),
    so the same bundle is made here from its model id."""
    make = getattr(widget, "_repr_mimebundle_", None)
    if callable(make):
        return dict(make() or {})
    if widget._view_name is None:  # a model with no view (a Layout): nothing to show
        return {"text/plain": repr(widget)}
    return {
        "text/plain": repr(widget)[:110],
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": widget.model_id,
        },
    }
