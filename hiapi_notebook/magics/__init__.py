"""The IPython magics; registered by ``%load_ext hiapi_notebook``."""

from .magic import HiAPIMagics


def load_ipython_extension(shell) -> None:
    from .complete import install
    from .errors import install_quiet_handler

    magics = HiAPIMagics(shell)
    shell.register_magics(magics)
    shell.configurables.append(magics)  # so %config HiAPIMagics.default_model = ... reaches it
    install(shell)
    install_quiet_handler(shell)


__all__ = ["HiAPIMagics", "load_ipython_extension"]
