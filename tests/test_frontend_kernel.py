"""Each front-end choice takes effect in a real kernel: ``%hiapi config frontend=NAME`` (and
``HIAPI_FRONTEND``) decides whether a cell shows a live widget or lines of text, and what
the package believes of file routes and live watching."""

from __future__ import annotations

import pytest
from kernel_harness import widget_model_ids

from hiapi_notebook.config import FRONTENDS

pytestmark = pytest.mark.kernel
KERNEL_SANDBOX_SPEED = 50
TEXT_ONLY = ("terminal", "script")
NO_FILE_ROUTES = ("vscode", "colab", "terminal", "script")
NOT_WATCHED = ("headless", "script")
CELL = "%%hiapi gpt-image-2/text-to-image\nA fox at dusk"
PROBE = (
    "from hiapi_notebook.views import frontend\n"
    "print(frontend.detect(), frontend.use_widgets(), frontend.files_resolve(), frontend.watched_live())"
)


def printed(msgs) -> str:
    return "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")


def shown_as(kernel) -> str:
    """Run an image cell: "widgets" (a live bar) or "text" (status lines), and check it ended."""
    reply, msgs = kernel.execute(CELL, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    if widget_model_ids(msgs):
        assert "[hiapi]" not in printed(msgs)
        return "widgets"
    lines = printed(msgs).splitlines()
    assert lines[0].startswith("[hiapi] gpt-image-2/text-to-image") and "success" in lines[-2], lines
    return "text"


@pytest.mark.parametrize("kernel", ["ipykernel7"], indirect=True)
@pytest.mark.parametrize("name", FRONTENDS)
def test_each_choice_takes_effect(kernel, name):
    kernel.execute("%load_ext hiapi_notebook")
    reply, msgs = kernel.execute(f"%hiapi config frontend={name}")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert f"frontend           {name}" in printed(msgs).splitlines()
    reply, msgs = kernel.execute(PROBE)
    assert printed(msgs).split() == [
        name,
        str(name not in TEXT_ONLY),
        str(name not in NO_FILE_ROUTES),
        str(name not in NOT_WATCHED),
    ]
    assert shown_as(kernel) == ("text" if name in TEXT_ONLY else "widgets")


@pytest.mark.parametrize("kernel", ["ipykernel7"], indirect=True)
def test_the_environment_chooses_and_auto_gives_detection_back(kernel):
    # set before the package's first use, as the kernel's environment would be
    kernel.execute("import os; os.environ['HIAPI_FRONTEND'] = ' Script '")
    kernel.execute("%load_ext hiapi_notebook")
    assert shown_as(kernel) == "text"
    reply, msgs = kernel.execute("%hiapi config frontend=auto")
    assert "frontend           auto (detected: headless)" in printed(msgs).splitlines()
    assert shown_as(kernel) == "widgets"
