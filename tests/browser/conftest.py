"""Browser-test fixtures: a JupyterLab server (`lab`), headless Chromium (`browser`) and a fresh
page on that server (`page`). Helpers for driving the page are in harness.py beside this file.

    pytestmark = pytest.mark.browser

    def test_x(lab, page):
        folder = lab.add_notebooks(path_to_a_notebooks_folder)
        open_notebook(page, f"{folder}/01-quickstart.ipynb")
        run_all(page)

Override `lab_env` (session or module scope) to give the Lab's kernels extra environment, such as
a sandbox's HIAPI_BASE_URL and HIAPI_API_KEY; one server is started per distinct environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import CHROMIUM, CHROMIUM_ARGS, LabServer, in_ci, opened_page


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    """Extra environment for the Lab's kernels (they also inherit os.environ)."""
    return {}


@pytest.fixture(scope="session")
def _lab_servers():
    servers: dict[tuple, LabServer] = {}

    def get(env: dict[str, str]) -> LabServer:
        key = tuple(sorted(env.items()))
        if key not in servers:
            servers[key] = LabServer(env).start()
        return servers[key]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture
def lab(_lab_servers, lab_env) -> LabServer:
    """The JupyterLab server for `lab_env` (started once per session and environment)."""
    return _lab_servers(lab_env)


@pytest.fixture(scope="module")
def browser():
    """Chromium, one per test module. Not per session: Playwright's sync API marks its event loop
    running in the main thread while open, so every later ``asyncio.run`` in this process (the
    rest of the suite) would refuse to start."""
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing (`make test` installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (`make test` installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.hiapi_call_failed = report.failed  # read by `page` to keep a screenshot of a failure
    return report


@pytest.fixture
def page(request, browser, lab):
    """A new page whose relative URLs go to `lab`. `page.hiapi_dialogs` lists the messages of
    any alert / confirm / prompt dialog that opened (each is dismissed)."""
    with opened_page(request, browser, lab.url) as pg:
        yield pg
