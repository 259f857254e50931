"""What it costs, in JupyterLab in headless Chromium, as a new user sees it against the built-in
sandbox with a small balance: a sweep's estimate above its grid and in the grid's header, the
spend report and the history's cost column, and a batch the balance cannot cover stopping with
one line that names the balance and where to top up. Screenshot: test-artifacts/screenshots/costs.png."""

from __future__ import annotations

import pytest
from harness import BUILTIN_SANDBOX_ENV, open_notebook, run_all, screenshot, write_notebook

pytestmark = pytest.mark.browser
FLARE = "gpt-image-2.5-flare/text-to-image"  # $0.05 at 1K, $0.08 at 2K

CELLS = (
    "%load_ext hiapi_notebook\n%hiapi sandbox --speed 50 --balance 0.2",
    f"%%hiapi {FLARE} --sweep resolution=1K,2K -o pair\nA lighthouse at dusk",  # $0.13 of $0.20
    "%hiapi spend",
    "%hiapi history",
    f"%%hiapi {FLARE} -n 3 --concurrency 1\nA kite over dunes",  # $0.05 paid, then 402, then stopped
)


@pytest.fixture(scope="module")
def lab_env() -> dict[str, str]:
    return dict(BUILTIN_SANDBOX_ENV)  # one Lab server serves every module that asks for it


def output(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


def test_costs_as_a_user_sees_them_in_jupyterlab(lab, page, tmp_path):
    folder = write_notebook(tmp_path / "costs" / "costs.ipynb", CELLS).parent
    page.set_viewport_size({"width": 1300, "height": 2000})
    open_notebook(page, f"{lab.add_notebooks(folder)}/costs.ipynb")
    assert not run_all(page)  # the last cell fails: the balance ran out

    sweep = output(page, 1)
    note = sweep.locator(".hiapi-estimate")
    assert note.is_visible()
    assert "estimate: 2 tasks, ≈ $0.130 · HiAPI's published list prices as of 2026-09-29" in note.inner_text()
    header = sweep.locator(".hiapi-grid-estimate")
    assert header.is_visible() and "2 tasks, ≈ $0.130" in header.inner_text()
    assert sweep.locator('.hiapi-grid figure[data-status="success"]').count() == 2

    spend = output(page, 2)
    assert "this session: 2 tasks, ≈ $0.130 · spend_limit $5.000" in spend.inner_text()
    assert "never as $0" in spend.inner_text()
    costs = output(page, 3).locator(".hiapi-journal-cost").all_inner_texts()
    assert sorted(costs) == ["$0.050", "$0.080"], costs

    batch = output(page, 4)
    line = batch.locator("[data-mime-type='application/vnd.jupyter.stderr']").inner_text()
    assert "HiAPI 402" in line and "1 of 3 sent, the other 2 not sent" in line
    assert "top up your HiAPI account at https://www.hiapi.ai" in line
    assert batch.locator('.hiapi-grid figure[data-status="stopped"]').count() == 1
    assert "not sent: HiAPI answered 402" in batch.locator(".hiapi-grid").inner_text()
    screenshot(page, "costs")
