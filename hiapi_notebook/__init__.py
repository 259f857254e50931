"""hiapi-notebook: generate images and videos with HiAPI from Jupyter.

``%load_ext hiapi_notebook`` registers ``%%hiapi`` / ``%hiapi``; the Python API
is ``generate``, ``submit`` and ``generate_many``; ``HiAPI`` / ``AsyncHiAPI``
are the plain clients. Imports are lazy so loading the extension stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "HiAPI": "client",
    "AsyncHiAPI": "client",
    "verify_webhook": "client",
    "Task": "models",
    "Output": "models",
    "CreatedTask": "models",
    "TaskPage": "models",
    "generate": "api",
    "submit": "api",
    "generate_many": "api",
    "grid": "api",
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


def load_ipython_extension(shell) -> None:
    from .magics import load_ipython_extension as load

    load(shell)


__all__ = sorted(_LAZY) + ["load_ipython_extension"]
