"""Front-end detection: one rule per front end, and each forced choice."""

from __future__ import annotations

import sys
import types

import pytest

from hiapi_notebook.views import frontend


class FakeConfig(dict):
    pass


class ZMQInteractiveShell:  # the name ipykernel's shell has
    def __init__(self, config: dict | None = None, user_ns: dict | None = None) -> None:
        self.config = FakeConfig(config if config is not None else {"IPKernelApp": {}})
        self.user_ns = user_ns or {}


class Shell(ZMQInteractiveShell):  # Colab's shell is a subclass with this name
    pass


class TerminalInteractiveShell:
    def __init__(self) -> None:
        self.config = FakeConfig({"TerminalIPythonApp": {}})
        self.user_ns: dict = {}


@pytest.fixture
def shell(monkeypatch):
    """Install a fake running shell; the test sets which."""
    for name in ("HIAPI_FRONTEND", "HIAPI_NOTEBOOK_DISPLAY", "VSCODE_PID", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    frontend.force(None)
    current: dict = {"shell": None}
    monkeypatch.setattr(frontend, "_shell", lambda: current["shell"])
    yield current
    frontend.force(None)


def test_a_script_and_a_terminal_get_text(shell):
    assert frontend.detect() == "script"
    assert not frontend.use_widgets()
    shell["shell"] = TerminalInteractiveShell()
    assert frontend.detect() == "terminal"
    assert not frontend.use_widgets()


def test_a_kernel_nobody_names_is_headless(shell):
    shell["shell"] = ZMQInteractiveShell()
    assert frontend.detect() == "headless"
    assert frontend.use_widgets() and frontend.files_resolve() and not frontend.watched_live()


def test_jupyter_server_sets_the_session_name(shell, monkeypatch):
    shell["shell"] = ZMQInteractiveShell()
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/01-quickstart.ipynb")
    assert frontend.detect() == "jupyterlab"
    assert frontend.files_resolve() and frontend.watched_live()


def test_vscode_by_its_pid_or_its_namespace_name(shell, monkeypatch):
    shell["shell"] = ZMQInteractiveShell(user_ns={"__vsc_ipynb_file__": "x.ipynb"})
    assert frontend.detect() == "vscode"
    shell["shell"] = ZMQInteractiveShell()
    monkeypatch.setenv("VSCODE_PID", "4242")
    assert frontend.detect() == "vscode"
    assert frontend.use_widgets() and not frontend.files_resolve()


def test_colab_by_its_module_even_with_a_subclassed_shell(shell, monkeypatch):
    shell["shell"] = Shell(config={})  # no IPKernelApp in config: the class decides
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert frontend.detect() == "colab"
    assert frontend.use_widgets() and not frontend.files_resolve()


@pytest.mark.parametrize("name", frontend.FRONTENDS)
def test_each_choice_can_be_forced(shell, monkeypatch, name):
    shell["shell"] = ZMQInteractiveShell()
    monkeypatch.setenv("HIAPI_FRONTEND", name)
    assert frontend.detect() == name
    monkeypatch.delenv("HIAPI_FRONTEND")
    frontend.force(name)
    assert frontend.detect() == name
    frontend.force("auto")
    assert frontend.detect() == "headless"


def test_the_older_display_switch_still_wins(shell, monkeypatch):
    shell["shell"] = ZMQInteractiveShell()
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    assert not frontend.use_widgets()
    shell["shell"] = None
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "widgets")
    assert frontend.use_widgets()
