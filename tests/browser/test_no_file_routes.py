"""Outputs made for a front end with no route to the notebook's folder (VS Code's webview,
Colab's iframe) show every picture and play every video anyway.

A kernel told it runs in VS Code (``HIAPI_FRONTEND=vscode``) executes a notebook; the HTML
of its saved outputs is then set into a blank page of another origin in which every request
is refused: nothing beside the notebook, and no server, can be reached. Every picture must
decode and every video must play (its currentTime advances): a small clip embedded as it is,
a bigger one re-encoded small.

Screenshot (look at it): test-artifacts/screenshots/no-file-routes.png
"""

from __future__ import annotations

import os

import nbformat
import pytest
from harness import BUILTIN_SANDBOX_ENV, screenshot, write_notebook
from nbclient import NotebookClient

pytestmark = pytest.mark.browser

CELLS = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    "%%hiapi gpt-image-2/text-to-image --resolution 2K --aspect_ratio 16:9\nA red fox asleep in fresh snow",
    "%%hiapi seedance-2-0 --resolution 480p --duration 4\nA paper boat on a pond",
    "%%hiapi seedance-2-0 --resolution 1080p --duration 8\nA lighthouse in a storm",
    "%%hiapi gpt-image-2/text-to-image -n 2\nTwo owls on a branch",
)

PLAY_ALL_JS = """async () => {
  const play = async (video) => {
    video.muted = true;
    try { await video.play(); } catch (e) { return {error: String(e)}; }
    await new Promise(done => { const t0 = performance.now();
      const tick = () => (video.currentTime > 1 || performance.now() - t0 > 20000) ? done() : setTimeout(tick, 100);
      tick(); });
    return {time: video.currentTime, error: video.error && video.error.code,
            size: [video.videoWidth, video.videoHeight], src: video.currentSrc.slice(0, 22)};
  };
  const videos = [...document.querySelectorAll('video')];
  const played = [];
  for (const v of videos) played.push(await play(v));
  const images = [...document.querySelectorAll('img')].map(i => ({
    natural: i.naturalWidth, complete: i.complete, src: i.getAttribute('src').slice(0, 22),
    enlarged: !!i.closest('.hiapi-lb-full')}));  // loaded lazily, on a click
  return {played, images};
}"""


def run_as_vscode(folder) -> nbformat.NotebookNode:
    """Execute the cells in a kernel that detects VS Code; the saved notebook."""
    path = write_notebook(folder / "portable.ipynb", CELLS)
    nb = nbformat.read(path, as_version=4)
    env = {**BUILTIN_SANDBOX_ENV, "HIAPI_FRONTEND": "vscode", "HIAPI_SANDBOX_DETAIL": "full"}
    old = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if v})
    for name in (k for k, v in env.items() if not v):
        os.environ.pop(name, None)
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def output_html(nb) -> str:
    """What a front end draws of the outputs: each one's HTML, else its image, in order."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                parts.append(data["text/html"])
            elif "image/png" in data:
                parts.append(f'<img src="data:image/png;base64,{data["image/png"]}">')
    return "".join(f'<div class="output">{part}</div>' for part in parts)


def test_pictures_show_and_videos_play_with_no_route_to_the_notebook(browser, tmp_path):
    nb = run_as_vscode(tmp_path)
    html = output_html(nb)
    assert html.count("<video") == 2 and "hiapi-outputs/" in html  # its local copies are named...
    assert ' src="hiapi-outputs/' not in html and ' href="hiapi-outputs/' not in html  # ...not linked

    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    refused = []
    context.route("**/*", lambda route: (refused.append(route.request.url), route.abort()))
    page = context.new_page()
    try:
        page.set_content(f"<!doctype html><html><body>{html}</body></html>")
        shown = page.evaluate(PLAY_ALL_JS)
        page.evaluate("() => document.querySelectorAll('video').forEach(v => v.pause())")
        screenshot(page, "no-file-routes")
    finally:
        context.close()
    assert refused == []  # nothing was even asked of a server
    assert len(shown["images"]) >= 4, shown["images"]
    for image in shown["images"]:
        assert image["src"].startswith("data:image/"), image
        assert image["enlarged"] or (image["complete"] and image["natural"] > 0), image
    assert len(shown["played"]) == 2
    for played in shown["played"]:
        assert played.get("time", 0) > 1 and not played.get("error"), played
        assert played["src"].startswith("data:video/mp4"), played
    small, big = shown["played"]
    assert small["size"] == [854, 480]  # under the limit: the original itself
    assert max(big["size"]) == 480  # a 1080p clip of 8 s: re-encoded small
