"""The quickstart in Notebook 7 (the ``notebook`` package), as a user sees it: opened in
headless Chromium, run top to bottom, looked at. Notebook 7 is built from JupyterLab's parts,
so the JupyterLab test's page scripts and checks apply; what differs is the server, the page
(`/notebooks/<path>`, no status bar) and the application around the notebook.

Screenshot: test-artifacts/screenshots/notebook7-01-quickstart.png (look at it).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from harness import BUILTIN_SANDBOX_ENV, NotebookServer, kernel_state, opened_page, screenshot
from test_product import (
    NOTEBOOKS_DIR,
    WIDTH,
    cells,
    check_media,
    check_moved_while_idle,
    check_no_widget_errors,
    check_quickstart,
    check_statuses,
    copy_notebooks,
    fit_viewport,
    run_observing_no_wait,
    wait_media,
)

pytestmark = pytest.mark.browser


# The colour each finished status bar is painted in, as the browser computed it.
BAR_COLOURS_JS = """() => [...document.querySelectorAll('.jp-OutputArea .hiapi-status .hiapi-bar')].map(b => {
  const style = getComputedStyle(b);
  return {cls: b.className, colour: style.backgroundColor,
          width: b.getBoundingClientRect().width, track: b.parentElement.getBoundingClientRect().width}; })"""


@pytest.fixture(scope="module")
def notebook7():
    try:
        import notebook
    except ImportError:
        pytest.fail("the notebook package is missing (`make test` installs it)", pytrace=False)
    assert int(notebook.__version__.split(".")[0]) >= 7, notebook.__version__
    server = NotebookServer(BUILTIN_SANDBOX_ENV).start()
    yield server
    server.stop()


@pytest.fixture
def nb7_page(request, browser, notebook7):
    """A page on the Notebook 7 server; dialogs are recorded (and dismissed), as `page` does."""
    with opened_page(request, browser, notebook7.url, width=WIDTH, height=1000) as pg:
        yield pg


def open_in_notebook7(page, path: str, timeout: float = 90) -> None:
    """Open `path` in Notebook 7's notebook page and wait for its kernel to be idle."""
    page.goto(f"/notebooks/{quote(path)}")
    page.wait_for_function(
        """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                   return w && w.content && w.sessionContext; }""",
        timeout=timeout * 1000,
    )
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    deadline = page.evaluate("() => performance.now()") + timeout * 1000
    while kernel_state(page)["kernel"] != "idle":
        if accept.count():  # "Select Kernel", for a notebook without a kernelspec
            accept.first.click()
        assert page.evaluate("() => performance.now()") < deadline, f"{path}: kernel not idle"
        page.wait_for_timeout(200)


def is_green(colour: str) -> bool:
    r, g, b = (int(x) for x in re.findall(r"\d+", colour)[:3])
    return g > r + 40 and g > b + 40


def test_quickstart_in_notebook7(notebook7, nb7_page, tmp_path):
    page = nb7_page
    quickstart = NOTEBOOKS_DIR / "01-quickstart.ipynb"
    path = f"{copy_notebooks(notebook7, tmp_path)}/{quickstart.name}"
    open_in_notebook7(page, path)
    app = page.evaluate("() => ({name: window.jupyterapp.name, version: window.jupyterapp.version})")
    assert app["name"] == "Jupyter Notebook" and app["version"].startswith("7."), app

    no_wait, _ = run_observing_no_wait(page, cells(page))
    assert no_wait is not None
    check_moved_while_idle(page, no_wait)  # the --no-wait bar is live after its cell returned

    fit_viewport(page)
    wait_media(page)
    shown = cells(page)
    code = [c for c in shown if c["type"] == "code"]
    assert all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in code), [
        (c["index"], c["prompt"]) for c in code
    ]
    assert not [c["index"] for c in shown for o in c["outputs"] if "Traceback" in o["text"]]
    check_statuses(shown)  # every bar static and final: success, or fail for the '#fail' prompt
    images, videos = check_media(shown)  # every picture decoded, every video has its metadata
    assert images >= 6 and videos >= 1, (images, videos)
    check_no_widget_errors(page)  # no "Error displaying widget"
    check_quickstart(page, shown, no_wait)

    # What the eye sees: each successful bar is full and green, the failed one red.
    bars = page.evaluate(BAR_COLOURS_JS)
    ended = [s["status"] for c in shown for s in c["statuses"]]
    assert len(bars) == len(ended) and ended.count("success") >= 4 and ended.count("fail") == 1, (ended, bars)
    for bar, status in zip(bars, ended):
        assert f"hiapi-bar-{'success' if status == 'success' else 'danger'}" in bar["cls"].split(), bar
        assert is_green(bar["colour"]) == (status == "success"), bar
        assert bar["width"] >= bar["track"] - 1, bar  # full: the task ended
    assert not page.hiapi_dialogs
    screenshot(page, "notebook7-01-quickstart")
