"""The IPython magics; registered by ``%load_ext hiapi_notebook``."""
from .magic import HiAPIMagics


def load_ipython_extension(shell) -> None:
    from .complete import install
    shell.register_magics(HiAPIMagics)
    install(shell)


__all__ = ["HiAPIMagics", "load_ipython_extension"]
