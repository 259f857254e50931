"""Light notebooks as a user sees them (issue 15): in JupyterLab, a 4K picture shows as a sharp
preview that opens its original with a click, a grid's thumbnail opens its original in place,
and a clip plays from its local copy beside the notebook. The same holds once the notebook is
saved and reopened with no kernel, and in the HTML nbconvert (and so nbviewer) makes of it.

The kernel's sandbox draws at full detail here (a 4K PNG of about 15 MB).

Screenshots (look at them): test-artifacts/screenshots/light-*.png
"""

from __future__ import annotations

import re

import pytest
from harness import BUILTIN_SANDBOX_ENV, open_notebook, save, screenshot, write_notebook
from test_product import WIDTH, cells, check_media, execute, fit_viewport, reopen_without_kernel, wait_media

pytestmark = pytest.mark.browser

CELLS = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    "%%hiapi gpt-image-2/text-to-image --resolution 4K --aspect_ratio 16:9\nA red fox asleep in fresh snow",
    "%%hiapi seedance-2-0 --resolution 480p --duration 4\nA paper boat on a pond",
    "%%hiapi gpt-image-2/text-to-image --resolution 2K --sweep aspect_ratio=16:9,4:3\nA lighthouse in a storm",
)

# The picture of cell 1, the thumbnails of the grid (cell 3) and the clip of cell 2.
SHOWN_JS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.widgets.map(w => w.node);
  const img = i => ({src: i.getAttribute('src').slice(0, 30), natural: i.naturalWidth, css: i.clientWidth,
                     complete: i.complete, link: i.closest('a') ? i.closest('a').href : null});
  const v = cells[2].querySelector('video');
  return {preview: [...cells[1].querySelectorAll('.jp-OutputArea img')].map(img),
          thumbs: [...cells[3].querySelectorAll('img.hiapi-thumb')].map(img),
          video: v && {src: v.currentSrc, poster: (v.getAttribute('poster') || '').slice(0, 30),
                       width: v.videoWidth, height: v.videoHeight}};
}"""

PLAY_JS = """async (video) => {
  video.muted = true;
  await video.play();
  await new Promise(done => { const t0 = performance.now();
    const tick = () => (video.currentTime > 1 || performance.now() - t0 > 20000) ? done() : setTimeout(tick, 100);
    tick(); });
  return {time: video.currentTime, paused: video.paused, error: video.error && video.error.code};
}"""

POPOVER_JS = """() => { const open = document.querySelector('.hiapi-lb-full:popover-open');
  const img = open && open.querySelector('img');
  return img && {natural: img.naturalWidth, complete: img.complete, src: img.currentSrc}; }"""


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    return {**BUILTIN_SANDBOX_ENV, "HIAPI_SANDBOX_DETAIL": "full"}  # real sizes: what previews are for


def check_previews(page) -> dict:
    """Every picture kept small and sharp: twice as many pixels as it is shown at."""
    shown = page.evaluate(SHOWN_JS)
    (preview,) = shown["preview"]
    assert preview["src"].startswith("data:image/jpeg") and preview["complete"], preview
    assert preview["css"] == 512 and preview["natural"] == 1024, preview  # sharp on a 2x screen
    assert re.search(r"/files/.*hiapi-outputs/[^/]+/0-image\.png", preview["link"]), preview
    assert len(shown["thumbs"]) == 2, shown["thumbs"]
    for thumb in shown["thumbs"]:
        assert thumb["src"].startswith("data:image/jpeg") and thumb["complete"], thumb
        assert thumb["natural"] >= 2 * thumb["css"] > 0, thumb
    video = shown["video"]
    assert video["poster"].startswith("data:image/jpeg"), video
    assert re.search(r"/files/.*hiapi-outputs/[^/]+/0-video\.mp4", video["src"]), video
    assert (video["width"], video["height"]) == (854, 480), video
    return shown


def check_originals(page, name: str) -> None:
    """A click on the preview opens the 4K original; one on a thumbnail shows its 2K original;
    the clip plays from its local copy."""
    page.locator("a.hiapi-original").first.click()
    viewer = page.locator(".jp-ImageViewer img")
    viewer.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('.jp-ImageViewer img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert viewer.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [3840, 2160]
    tab = page.evaluate("() => window.jupyterapp.shell.currentWidget.title.label")
    assert tab == "0-image.png", tab
    screenshot(page, f"light-{name}-original")
    page.evaluate("() => window.jupyterapp.commands.execute('application:close')")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.title.label === 'light.ipynb'")

    page.locator(".jp-OutputArea button.hiapi-zoom").first.click()
    page.wait_for_function(
        f"() => {{ const s = ({POPOVER_JS})(); return s && s.complete && s.natural > 0; }}"
    )
    opened = page.evaluate(POPOVER_JS)
    assert opened["natural"] == 2048 and "/hiapi-outputs/" in opened["src"], opened
    screenshot(page, f"light-{name}-popover")
    page.keyboard.press("Escape")

    played = page.locator(".jp-OutputArea video").first.evaluate(PLAY_JS)
    assert played["time"] > 1 and not played["error"], played


def test_previews_open_their_originals_and_clips_play_live_reopened_and_in_html(lab, page, tmp_path, browser):
    folder = write_notebook(tmp_path / "light" / "light.ipynb", CELLS).parent
    path = f"{lab.add_notebooks(folder)}/light.ipynb"
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    open_notebook(page, path)
    assert execute(page, "notebook:run-all-cells", 240)
    fit_viewport(page)
    wait_media(page)
    check_media(cells(page))
    check_previews(page)
    screenshot(page, "light-live")
    check_originals(page, "live")

    save(page)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.sessionContext.session")
    saved = (lab.root / path).stat().st_size
    assert saved < 400_000, f"the saved notebook weighs {saved} bytes"  # the 4K original alone is 15 MB

    context, fresh = reopen_without_kernel(page, lab.url, path)
    try:
        assert fresh.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session") is None
        fit_viewport(fresh)
        wait_media(fresh)
        check_previews(fresh)
        screenshot(fresh, "light-reopened")
        check_originals(fresh, "reopened")
    finally:
        context.close()

    # nbconvert's HTML beside the notebook (what nbviewer shows): the same previews and links.
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_filename(str(lab.root / path))
    page_file = (lab.root / path).with_suffix(".html")
    page_file.write_text(html)
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000})
    context.route(re.compile(r"^https?://"), lambda route: route.abort())  # its CDN scripts: offline
    try:
        static = context.new_page()
        static.goto(page_file.as_uri())
        static.wait_for_function(
            "() => [...document.querySelectorAll('img.hiapi-thumb, a.hiapi-original img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        link = static.locator("a.hiapi-original").first.get_attribute("href")
        assert link.startswith("hiapi-outputs/"), link  # relative: it resolves beside the HTML file
        size = static.evaluate(
            """(href) => new Promise(done => { const i = new Image();
                 i.onload = () => done([i.naturalWidth, i.naturalHeight]); i.onerror = () => done(null);
                 i.src = href; })""",
            link,
        )
        assert size == [3840, 2160]
        played = static.locator("video").first.evaluate(PLAY_JS)
        assert played["time"] > 1 and not played["error"], played
        screenshot(static, "light-nbconvert-html")
    finally:
        context.close()
