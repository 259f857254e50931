"""The front end as a setting: ``%hiapi config frontend=...``, ``HIAPI_FRONTEND`` and
``configure(frontend=...)``, checked where they enter, shown by ``%hiapi config`` and applied
through ``views.frontend.force``. Each choice taking effect in a real kernel: see
test_frontend_kernel.py."""

from __future__ import annotations

import math

import pytest
from IPython.core.error import UsageError

from hiapi_notebook.config import FRONTEND_CHOICES, Settings
from hiapi_notebook.errors import RequestValidationError
from hiapi_notebook.session import reset_session
from hiapi_notebook.views import frontend

IMAGE = "gpt-image-2/text-to-image"
BAD = ["lab", "none", "", "colab\u200b", "ｃｏｌａｂ", "jupyter lab", "x" * 10_000, "a\nb"]


@pytest.fixture(autouse=True)
def forget_the_choice():
    yield
    frontend.force(None)


@pytest.mark.parametrize("value", [*BAD, 3, None, math.nan, True, ["colab"]], ids=repr)
def test_a_wrong_value_is_one_line_naming_every_choice(value):
    with pytest.raises(RequestValidationError) as info:
        Settings().with_changes(frontend=value)
    message = str(info.value)
    assert "\n" not in message and len(message) < 200, message
    assert all(choice in message for choice in FRONTEND_CHOICES), message


@pytest.mark.parametrize("value", ["colab", " VSCode ", "HEADLESS", "auto"])
def test_a_choice_is_read_as_a_word(value):
    assert Settings().with_changes(frontend=value).frontend == value.strip().lower()


def test_the_environment_is_checked_and_applied(monkeypatch):
    monkeypatch.setenv("HIAPI_FRONTEND", "Colab\u200b")
    with pytest.raises(RequestValidationError, match="HIAPI_FRONTEND takes auto, jupyterlab"):
        Settings.from_env()
    monkeypatch.setenv("HIAPI_FRONTEND", " Terminal ")
    session = reset_session()
    assert session.settings.frontend == "terminal" and frontend.detect() == "terminal"
    assert not frontend.use_widgets()
    monkeypatch.delenv("HIAPI_FRONTEND")
    assert reset_session().settings.frontend == "auto"


def test_configure_forces_it_and_auto_detects_again_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("HIAPI_FRONTEND", "colab")
    session = reset_session()
    assert frontend.detect() == "colab"
    session.configure(frontend="vscode")
    assert frontend.detect() == "vscode" and not frontend.files_resolve()
    session.configure(frontend="auto")  # the user asked for detection: the variable no longer rules
    detected = frontend.detect()
    assert detected in ("terminal", "script")  # pytest: no kernel, maybe a terminal IPython shell
    with pytest.raises(RequestValidationError):
        session.configure(frontend="jupyter")
    assert session.settings.frontend == "auto" and frontend.detect() == detected


@pytest.mark.parametrize("value", ["lab", "colab\u200b", "none", "vs-code"])
def test_config_magic_refuses_in_one_line(ip, capsys, value):
    capsys.readouterr()
    result = ip.run_cell(f"%hiapi config frontend={value}")
    assert isinstance(result.error_in_exec, UsageError)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert line.startswith("UsageError: setting frontend takes auto, jupyterlab, notebook"), line
    assert "Traceback" not in line


def test_config_magic_shows_and_applies_it(ip, capsys):
    ip.run_line_magic("hiapi", "config frontend")
    assert capsys.readouterr().out.split() == ["frontend", "auto", "(detected:", "terminal)"]
    ip.run_line_magic("hiapi", "config frontend=colab")
    printed = capsys.readouterr().out.splitlines()
    assert "frontend           colab" in printed, printed
    assert frontend.detect() == "colab"
    ip.run_line_magic("hiapi", "config frontend=auto")
    assert frontend.detect() == "terminal"


def test_a_bad_environment_is_one_line_at_the_first_cell(ip, sandbox, monkeypatch, capsys):
    import hiapi_notebook.session as session_module

    monkeypatch.setenv("HIAPI_FRONTEND", "lab")
    monkeypatch.setattr(session_module, "_session", None)  # the kernel's first use of the package
    capsys.readouterr()
    result = ip.run_cell(f"%%hiapi {IMAGE}\na fox")
    assert isinstance(result.error_in_exec, UsageError)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert line.startswith("UsageError: HIAPI_FRONTEND takes auto, jupyterlab") and "'lab'" in line, line
    assert sandbox.requests == []
    monkeypatch.delenv("HIAPI_FRONTEND")  # so the fixture's own clean-up can make a session again
