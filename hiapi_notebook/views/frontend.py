"""What the front end can show: widgets and live HTML in a notebook, text lines in
terminal IPython and plain scripts. ``HIAPI_NOTEBOOK_DISPLAY=text|widgets`` forces one."""

from __future__ import annotations

import os


def use_widgets() -> bool:
    """Widgets need a kernel with a front end; terminals and scripts get text."""
    forced = os.environ.get("HIAPI_NOTEBOOK_DISPLAY", "").lower()
    if forced in ("text", "widgets"):
        return forced == "widgets"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
