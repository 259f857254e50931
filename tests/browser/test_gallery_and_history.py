"""The gallery and the history in JupyterLab in headless Chromium, as a user meets them: each
picture of a gallery carries its own download link (no need to enlarge it first), and the link
downloads the local copy; the history says when each result was made without cutting it, shows
a task id whole on hover, copies it on a click (read back from the real clipboard), and links
each local file. Screenshots go to test-artifacts/screenshots/gallery-*.png and history-*.png."""

from __future__ import annotations

import re

import pytest
from harness import BUILTIN_SANDBOX_ENV, open_notebook, run_all, screenshot, write_notebook

pytestmark = pytest.mark.browser

CELLS = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    "%%hiapi gpt-image-2/text-to-image -n 3 --no-wait -o kites\nA red kite over the dunes",
    "import hiapi_notebook as hn\nfor k in kites:\n    k.wait()\nhn.Gallery(kites, thumb=160)",
    "%hiapi history",
)


@pytest.fixture(scope="module")
def lab_env() -> dict[str, str]:
    return dict(BUILTIN_SANDBOX_ENV)  # one Lab server serves every module that asks for it


def output(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


def test_each_picture_has_its_download_link_and_the_history_reads_whole(lab, page, tmp_path):
    folder = write_notebook(tmp_path / "gallery" / "gallery.ipynb", CELLS).parent
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    page.set_viewport_size({"width": 1280, "height": 1600})
    name = lab.add_notebooks(folder)
    open_notebook(page, f"{name}/gallery.ipynb")
    assert run_all(page)

    # --- the gallery: a download link under every picture, outside the enlarged view ----------
    gallery = output(page, 2)
    page.wait_for_function(
        "() => document.querySelectorAll('.hiapi-gallery figure[data-status=\"success\"]').length === 3"
    )
    cards = gallery.locator("figure.hiapi-card").all()
    assert len(cards) == 3
    for card in cards:
        link = card.locator(".hiapi-card-links a[download]")
        assert link.count() == 1 and link.is_visible(), card.inner_html()
        picture, under = card.locator("img.hiapi-thumb").bounding_box(), link.bounding_box()
        assert under["y"] >= picture["y"] + picture["height"] - 1  # under its own picture
        assert picture["x"] - 1 <= under["x"] <= picture["x"] + picture["width"]
    assert page.locator(".hiapi-lb-full:popover-open").count() == 0  # nothing had to be enlarged
    screenshot(page, "gallery-download-links")

    first = cards[0]
    task = first.get_attribute("data-task")
    with page.expect_download() as caught:
        first.locator(".hiapi-card-links a[download]").click()
    download = caught.value
    assert download.suggested_filename == f"{task}-0-image.png"
    saved = tmp_path / "downloaded.png"
    download.save_as(saved)
    kept = lab.root / name / "hiapi-outputs" / task / "0-image.png"
    assert saved.read_bytes() == kept.read_bytes()  # the original, not the preview

    # --- the history: when (whole), the id whole on hover and copied on a click, local files ---
    history = output(page, 3)
    page.wait_for_function("() => document.querySelectorAll('.hiapi-journal-row').length === 3")
    history.scroll_into_view_if_needed()
    for when in history.locator(".hiapi-journal-when").all():
        assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d\d:\d\d", when.inner_text()), when.inner_text()
        assert when.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # not cut
    ident = history.locator(".hiapi-journal-id").first
    row_task = ident.get_attribute("data-copy")
    assert row_task and row_task.startswith("tk-")
    ident.hover()
    assert ident.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight >= e.clientHeight")
    assert row_task in ident.inner_text().replace("\n", "")
    screenshot(page, "history-id-on-hover")
    ident.click()
    page.wait_for_function("() => !!document.querySelector('.hiapi-journal-id.hiapi-copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == row_task
    files = history.locator(".hiapi-journal-row").first.locator(".hiapi-journal-files a")
    assert files.count() == 1 and files.first.inner_text() == "0-image.png"
    href = files.first.get_attribute("href")  # JupyterLab resolves it to its /files/ route
    assert f"/files/{name}/hiapi-outputs/{row_task}/0-image.png" in href
    served = page.request.get(href)
    assert (
        served.ok
        and served.body() == (lab.root / name / "hiapi-outputs" / row_task / "0-image.png").read_bytes()
    )
    screenshot(page, "history-copied")
