"""Which front end draws this kernel's outputs, and what follows from it.

One place decides, the way the ecosystem does (tqdm, transformers, plotly): a kernel
is ``"IPKernelApp" in get_ipython().config``; Colab is ``"google.colab" in
sys.modules``; VS Code sets ``VSCODE_PID`` in the kernel's environment (and
``__vsc_ipynb_file__`` in the namespace); a kernel started by jupyter_server
(JupyterLab, Notebook 7) has ``JPY_SESSION_NAME``. A kernel with none of these is a
headless run (nbclient, papermill, ``jupyter execute``): nobody watches it live.

``HIAPI_FRONTEND`` or ``%hiapi config frontend=`` forces a choice (the session checks
the name and calls ``force``); the older ``HIAPI_NOTEBOOK_DISPLAY=text|widgets`` still
chooses text or widgets.
"""

from __future__ import annotations

import os
import sys

# jupyterlab and notebook behave alike (both are jupyter_server front ends with file routes);
# "notebook" exists so a user can say which one they use. The names live with the settings.
from ..config import FRONTENDS

ENV = "HIAPI_FRONTEND"
NOTEBOOK_ENV = "JPY_SESSION_NAME"  # jupyter_server: the path of the kernel's notebook
VSCODE_NOTEBOOK = "__vsc_ipynb_file__"  # VS Code: the same, in the namespace
MAX_NOTEBOOK_PATH = 4096

# Front ends that draw outputs where a path relative to the notebook is a file route.
_FILE_ROUTES = ("jupyterlab", "notebook", "headless")
_TEXT_ONLY = ("terminal", "script")

_forced: str | None = None


def force(name: str | None) -> None:
    """Force a front end. ``"auto"``: detect it, whatever ``HIAPI_FRONTEND`` says (the
    session's setting, read from that variable, has the last word); ``None``: nobody has
    chosen, so the variable, then detection. The session calls this with its
    ``frontend`` setting; names are checked there."""
    global _forced
    _forced = name


def detect() -> str:
    """The front end in use now: one of ``FRONTENDS``."""
    if _forced in FRONTENDS:
        return _forced
    forced = os.environ.get(ENV, "").strip().lower()
    if _forced is None and forced in FRONTENDS:
        return forced
    shell = _shell()
    if shell is None:
        return "script"
    if not _in_kernel(shell):
        return "terminal"
    if "google.colab" in sys.modules:
        return "colab"
    if os.environ.get("VSCODE_PID") or VSCODE_NOTEBOOK in getattr(shell, "user_ns", {}):
        return "vscode"
    if os.environ.get("JPY_SESSION_NAME"):
        return "jupyterlab"
    return "headless"


def notebook_file() -> str | None:
    """The path of the notebook this kernel runs, as its front end gives it, or None where
    none does (Colab, nbclient, papermill). Only a kernel's own shell counts: a script or a
    terminal IPython started from a notebook inherits its ``JPY_SESSION_NAME``."""
    shell = _shell()
    if shell is None or not _in_kernel(shell):
        return None
    for value in (getattr(shell, "user_ns", {}).get(VSCODE_NOTEBOOK), os.environ.get(NOTEBOOK_ENV)):
        if isinstance(value, str):
            value = value.strip()
            if value and len(value) <= MAX_NOTEBOOK_PATH and value.isprintable():
                return value
    return None


def _in_kernel(shell: object) -> bool:
    """A kernel's shell: the app's config names IPKernelApp (its launcher's ``-f``), or
    the shell is a ZMQInteractiveShell (Colab's ``Shell`` is a subclass of it)."""
    try:
        if "IPKernelApp" in shell.config:  # type: ignore[attr-defined]
            return True
    except Exception:  # an odd config object: judge by the class alone
        pass
    return any(klass.__name__ == "ZMQInteractiveShell" for klass in type(shell).__mro__)


def _shell():  # type: ignore[no-untyped-def]
    """IPython's running shell, without importing IPython into a plain script."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def use_widgets() -> bool:
    """Widgets need a kernel with a front end; terminals and scripts get text."""
    forced = os.environ.get("HIAPI_NOTEBOOK_DISPLAY", "").lower()
    if forced in ("text", "widgets"):
        return forced == "widgets"
    return detect() not in _TEXT_ONLY


def files_resolve() -> bool:
    """Whether an ``<img>``, ``<video>`` or link with a path relative to the notebook
    loads in this front end. VS Code draws outputs in a webview and Colab in an
    iframe, neither with a route to the kernel's files: media must be embedded there."""
    return detect() in _FILE_ROUTES


def watched_live() -> bool:
    """Whether someone sees outputs that arrive after a cell ended. nbclient (papermill,
    ``jupyter execute``) records only messages whose parent is the cell it is running."""
    return detect() not in ("headless", "script")
