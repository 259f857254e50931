"""The IPython magics; registered by ``%load_ext hiapi_notebook``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .magic import HiAPIMagics

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


def load_ipython_extension(shell: InteractiveShell) -> None:
    from .complete import install
    from .errors import install_quiet_handler

    magics = HiAPIMagics(shell)
    shell.register_magics(magics)
    # So %config HiAPIMagics.default_model = ... reaches it. IPython's list holds any Configurable
    # but is inferred from its first item, the shell, as list[InteractiveShell].
    shell.configurables.append(magics)  # type: ignore[arg-type]
    install(shell)
    install_quiet_handler(shell)


__all__ = ["HiAPIMagics", "load_ipython_extension"]
