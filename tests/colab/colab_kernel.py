"""Start an ipykernel the way Google Colab's runtime does, as far as a package can tell.

Colab's kernel is ipykernel's, with its own ``Kernel`` whose ``shell_class`` is
``google.colab._shell.Shell`` (a ``ZMQInteractiveShell`` subclass), and the ``google.colab``
package imported. This script puts stand-ins for those modules into ``sys.modules`` and launches
``IPKernelApp`` with such a kernel. Run it with the Colab-like venv's python (``.venv-colab``,
made from ``colab-runtime.txt``): ``python colab_kernel.py -f CONNECTION_FILE``.
"""

from __future__ import annotations

import sys
import types

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp
from ipykernel.zmqshell import ZMQInteractiveShell
from traitlets import Type


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package: its submodules import
    sys.modules[name] = module
    return module


class Shell(ZMQInteractiveShell):
    """Colab's shell class name; nothing else of Colab's shell is needed here."""


class Kernel(IPythonKernel):
    shell_class = Type(Shell)


google, colab, shell_module = _module("google"), _module("google.colab"), _module("google.colab._shell")
google.colab = colab
colab._shell = shell_module
shell_module.Shell = Shell
Shell.__module__ = "google.colab._shell"

if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=Kernel)
