"""hiapi-notebook: generate images and videos with HiAPI from Jupyter.

``%load_ext hiapi_notebook`` registers ``%%hiapi`` / ``%hiapi``; the Python API
is ``generate``, ``submit`` and ``generate_many``; ``HiAPI`` / ``AsyncHiAPI``
are the plain clients. Imports are lazy so loading the extension stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and editors see; at run time ``__getattr__`` imports lazily
    from IPython.core.interactiveshell import InteractiveShell

    from . import errors as errors
    from . import journal as journal
    from .api import generate as generate
    from .api import generate_many as generate_many
    from .api import grid as grid
    from .api import spend as spend
    from .api import submit as submit
    from .api import wait as wait
    from .client import AsyncHiAPI as AsyncHiAPI
    from .client import HiAPI as HiAPI
    from .form import PromptForm as PromptForm
    from .generation import Generation as Generation
    from .models import CreatedTask as CreatedTask
    from .models import Output as Output
    from .models import Task as Task
    from .models import TaskPage as TaskPage
    from .session import get_session as get_session
    from .views.gallery import Gallery as Gallery
    from .webhooks import verify_webhook as verify_webhook

_LAZY = {
    "HiAPI": "client",
    "AsyncHiAPI": "client",
    "verify_webhook": "webhooks",
    "Task": "models",
    "Output": "models",
    "CreatedTask": "models",
    "TaskPage": "models",
    "generate": "api",
    "submit": "api",
    "generate_many": "api",
    "grid": "api",
    "spend": "api",
    "wait": "api",
    "Generation": "generation",
    "PromptForm": "form",
    "Gallery": "views.gallery",
    "get_session": "session",
    "journal": None,
    "errors": None,
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hiapi_notebook' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"hiapi_notebook.{_LAZY[name] or name}")
    return module if _LAZY[name] is None else getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__ + ["__version__"])


def load_ipython_extension(shell: InteractiveShell) -> None:
    from .form.twin import close_dead_forms, close_dead_forms_after
    from .magics import load_ipython_extension as load

    load(shell)
    # The frozen forms a reopened notebook's saved widget state brought back into this kernel:
    # now, and after each cell (JupyterLab may hand them over after this cell ran).
    close_dead_forms()
    if close_dead_forms_after not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", close_dead_forms_after)


__all__ = sorted(_LAZY) + ["load_ipython_extension"]
