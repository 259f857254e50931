"""The product as a user sees it (issue 6): every notebook in notebooks/ opened in JupyterLab in
headless Chromium, run, looked at, saved and reopened with no kernel; and a prompt full of HTML
shown as text.

The Lab's kernels have no key, so `%hiapi connect` starts the built-in sandbox inside each kernel
(at HIAPI_SANDBOX_SPEED 8: an image takes about 0.8 s, a video about 3 s).

Screenshots go to test-artifacts/screenshots/ (look at them). `UPDATE_SCREENSHOT=1` also rewrites
docs/screenshot.png, the README's picture, from the quickstart.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from harness import (
    BUILTIN_SANDBOX_ENV,
    ROOT,
    kernel_state,
    open_notebook,
    save,
    screenshot,
    wait_idle,
    without_kernels,
    write_notebook,
)

pytestmark = pytest.mark.browser

NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
README_SHOT = ROOT / "docs" / "screenshot.png"
EVIL = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
WIDTH = 1400


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    return dict(BUILTIN_SANDBOX_ENV)  # one Lab server serves every module that asks for it


# --- page scripts ------------------------------------------------------------------------------

# What each cell of the current notebook shows.
CELLS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((w, index) => {
  const node = w.node;
  const prompt = node.querySelector('.jp-InputPrompt');
  return {
    index, type: w.model.type, source: w.model.sharedModel.getSource(),
    prompt: prompt ? prompt.textContent.trim() : '',
    statuses: [...node.querySelectorAll('.hiapi-status')].map(s => ({
      status: s.dataset.status, cls: s.className, text: s.innerText,
      bars: [...s.querySelectorAll('.hiapi-bar')].map(b => b.className)})),
    tasks: node.querySelectorAll('.hiapi-task').length,
    images: [...node.querySelectorAll('.jp-OutputArea img')].map(img => ({
      naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, complete: img.complete,
      width: img.clientWidth, height: img.clientHeight, visible: img.checkVisibility(), rendered: !!img.closest('.jp-RenderedImage'),
      lazy: img.loading === 'lazy', link: img.closest('a') ? img.closest('a').href : null,
      src: (img.getAttribute('src') || '').slice(0, 200)})),
    videos: [...node.querySelectorAll('.jp-OutputArea video')].map(v => ({
      readyState: v.readyState, duration: v.duration, videoWidth: v.videoWidth,
      poster: (v.getAttribute('poster') || '').slice(0, 30),
      src: (v.getAttribute('src') || v.currentSrc || '').slice(0, 200),
      controls: v.controls, error: v.error && [v.error.code, v.error.message]})),
    // outputs that are (or would be) ipywidgets views: live, loading, or broken
    widgets: [...node.querySelectorAll('.jp-OutputArea-output')].filter(o =>
      o.querySelector('.jupyter-widgets') || /Loading widget|Error displaying widget/.test(o.innerText)).length,
    outputs: [...node.querySelectorAll('.jp-OutputArea-output')].map(o => ({
      mime: o.dataset.mimeType || '', text: o.innerText})),
  };
})"""

# Records every visible change of a live status bar (.hiapi-task) with the kernel's state then.
RECORDER_JS = """() => {
  if (window.__hiapiRecords) return;
  const records = window.__hiapiRecords = [];
  const last = new WeakMap();
  const snap = () => {
    const panel = window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.content) return;
    const widgets = panel.content.widgets;
    const session = panel.sessionContext && panel.sessionContext.session;
    for (const task of document.querySelectorAll('.hiapi-task')) {
      const bar = task.querySelector('.progress-bar');
      const state = {width: bar ? bar.style.width : null, cls: bar ? bar.className : null,
                     text: task.innerText};
      const key = JSON.stringify(state);
      if (last.get(task) === key) continue;
      last.set(task, key);
      const cell = widgets.findIndex(w => w.node.contains(task));
      const prompt = cell >= 0 ? widgets[cell].node.querySelector('.jp-InputPrompt') : null;
      records.push({...state, t: performance.now(), cell,
        kernel: session && session.kernel ? session.kernel.status : null,
        busyCells: [...document.querySelectorAll('.jp-InputPrompt')]
                     .filter(p => p.textContent.includes('*')).length,
        prompt: prompt ? prompt.textContent.trim() : null,
        injectedImgs: document.querySelectorAll('img[src="x"]').length,
        outputScripts: document.querySelectorAll('.jp-OutputArea script').length});
    }
  };
  new MutationObserver(snap).observe(document.body,
    {subtree: true, childList: true, attributes: true, characterData: true});
}"""

EXECUTE_JS = """async ([command, ms]) => {
  const timer = new Promise((_, fail) => setTimeout(() => fail(new Error(command + ' timed out')), ms));
  return await Promise.race([window.jupyterapp.commands.execute(command), timer]);
}"""

# Videos with preload="none" (gallery cards) load nothing until asked, like a user pressing play.
VIDEOS_READY_JS = """() => [...document.querySelectorAll('.jp-OutputArea video')].every(v => {
  if (v.preload === 'none' && !v.dataset.nudged) { v.dataset.nudged = '1'; v.preload = 'metadata'; v.load(); }
  return v.readyState >= 1 && v.duration > 0;
})"""

VIDEO_EVIDENCE_JS = """() => [...document.querySelectorAll('.jp-OutputArea video')].map(v => ({
  readyState: v.readyState, networkState: v.networkState, duration: v.duration,
  error: v.error && [v.error.code, v.error.message], preload: v.preload,
  h264: v.canPlayType('video/mp4; codecs="avc1.42E01E"'), mp4: v.canPlayType('video/mp4'),
  src: (v.currentSrc || '').slice(0, 40)}))"""

# A full-size image waiting in a closed popover loads only when opened (loading="lazy").
IMAGES_READY_JS = """() => [...document.querySelectorAll('.jp-OutputArea img')]
  .every(img => (img.loading === 'lazy' && !img.checkVisibility()) || (img.complete && img.naturalWidth > 0))"""


# --- helpers -----------------------------------------------------------------------------------


def copy_notebooks(lab, tmp_path: Path) -> str:
    """The notebooks folder without anything a previous run left in it (journal, outputs)."""
    src = tmp_path / "notebooks"
    shutil.copytree(
        NOTEBOOKS_DIR,
        src,
        ignore=shutil.ignore_patterns(
            ".hiapi",
            "hiapi-outputs",
            "hiapi-inputs",
            ".ipynb_checkpoints",
            "figures",
            "results.json",
            "chain.json",
            "sketch.png",
            "my-*.png",
        ),
    )
    return lab.add_notebooks(src)


def execute(page, command: str, timeout: float = 150) -> bool:
    """Run a JupyterLab command (e.g. notebook:run-all-above) and wait until the kernel is idle."""
    ok = page.evaluate(EXECUTE_JS, [command, timeout * 1000])
    wait_idle(page, timeout)
    return bool(ok)


def activate(page, index: int) -> None:
    page.evaluate(
        """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                              nb.activeCellIndex = i; nb.deselectAll(); }""",
        index,
    )


def cells(page) -> list[dict]:
    return page.evaluate(CELLS_JS)


def records(page) -> list[dict]:
    return page.evaluate("() => window.__hiapiRecords || []")


def first_cell(all_cells: list[dict], start: str) -> dict:
    found = [c for c in all_cells if c["type"] == "code" and c["source"].startswith(start)]
    assert found, f"no code cell starts with {start!r}"
    return found[0]


def is_no_wait_cell(cell: dict) -> bool:
    """A `%%hiapi --no-wait` cell with one task, so one live status bar (-n, --sweep and
    --models show a grid instead)."""
    words = (cell["source"].splitlines() or [""])[0].split()
    return (
        cell["type"] == "code"
        and words[:1] == ["%%hiapi"]
        and "--no-wait" in words
        and not {"-n", "--sweep", "--models"} & set(words)
    )


def wait_cell_final(page, index: int, timeout: float = 60) -> None:
    """Until the live bar of cell `index` has been swapped for its static twin."""
    page.wait_for_function(
        """(i) => { const node = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
                    return node.querySelector('.hiapi-status') && !node.querySelector('.hiapi-task'); }""",
        arg=index,
        timeout=timeout * 1000,
    )


def fit_viewport(page, width: int = WIDTH, cap: int = 16000) -> None:
    """Make the window as tall as the notebook, so every cell is on screen (and in a screenshot)."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(200)
    extra = page.evaluate("""() => {
      const notebook = window.jupyterapp.shell.currentWidget.content;
      const outer = notebook.node.querySelector('.jp-WindowedPanel-outer') || notebook.node;
      const last = notebook.widgets[notebook.widgets.length - 1].node;
      const content = last.getBoundingClientRect().bottom - outer.getBoundingClientRect().top + outer.scrollTop;
      return Math.max(0, Math.ceil(content - outer.clientHeight)); }""")
    page.set_viewport_size({"width": width, "height": min(cap, 1000 + extra + 40)})
    page.evaluate("""() => { const notebook = window.jupyterapp.shell.currentWidget.content;
      (notebook.node.querySelector('.jp-WindowedPanel-outer') || notebook.node).scrollTop = 0; }""")
    page.wait_for_timeout(300)


def wait_media(page, timeout: float = 30) -> None:
    page.wait_for_function(IMAGES_READY_JS, timeout=timeout * 1000)
    try:
        page.wait_for_function(VIDEOS_READY_JS, timeout=timeout * 1000, polling=250)
    except Exception as exc:  # keep the evidence: can this Chromium play H.264 at all?
        raise AssertionError(
            f"a video did not load its metadata: {page.evaluate(VIDEO_EVIDENCE_JS)}"
        ) from exc


def check_media(all_cells: list[dict]) -> tuple[int, int]:
    """Every image decoded to a real picture, every video has metadata; returns the counts.
    A full size waiting in a closed popover (lazy) is the local copy, loaded when opened."""
    images = videos = 0
    for c in all_cells:
        for img in c["images"]:
            if img["lazy"] and not img["visible"]:
                assert "/files/" in img["src"] and "/hiapi-outputs/" in img["src"], (c["index"], img)
                continue
            assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, (c["index"], img)
            images += 1
        for v in c["videos"]:
            assert v["readyState"] >= 1 and v["duration"] > 0 and v["videoWidth"] > 0, (c["index"], v)
            assert v["controls"] and not v["error"], (c["index"], v)
            videos += 1
    return images, videos


def expected_status(cell: dict) -> str:
    return "fail" if "#fail" in cell["source"] else "success"


def check_statuses(all_cells: list[dict]) -> None:
    """Every finished task shows its static status; success in green, '#fail' prompts in red."""
    for c in all_cells:
        assert c["tasks"] == 0, f"cell {c['index']} still shows a live widget bar: {c['source'][:60]!r}"
        for s in c["statuses"]:
            want = expected_status(c)
            style = "success" if want == "success" else "danger"
            assert s["status"] == want, (c["index"], c["source"][:60], s)
            assert f"hiapi-{want}" in s["cls"].split(), (c["index"], s)
            assert any(f"hiapi-bar-{style}" in b.split() for b in s["bars"]), (c["index"], s)
            assert s["text"].splitlines()[-1].startswith(want), (c["index"], s)


def page_text(page) -> str:
    return page.evaluate("() => document.body.innerText + '\\n' + document.body.textContent")


def check_no_widget_errors(page) -> None:
    text = page_text(page)
    assert "Error displaying widget" not in text
    assert "model not found" not in text


def check_forms(page) -> int:
    """Each prompt form (`%hiapi form`, PromptForm): Generate adds a row under the form that
    goes to success and shows its picture or video, with the kernel idle. Returns the count."""
    forms = page.evaluate("() => document.querySelectorAll('.hiapi-form').length")
    for i in range(forms):
        form = page.locator(".hiapi-form").nth(i)
        prompt = form.locator(".hiapi-form-prompt textarea")
        if prompt.count() and not prompt.first.input_value().strip():
            prompt.first.fill("A green teapot on a windowsill, from the browser test")
        page.evaluate(
            """(i) => [...document.querySelectorAll('.hiapi-form')][i]
            .querySelectorAll('.hiapi-history-row').forEach(r => r.dataset.before = '1')""",
            i,
        )
        form.locator("button.hiapi-form-generate").first.click()
        page.wait_for_function(
            """(i) => {
            const form = [...document.querySelectorAll('.hiapi-form')][i];
            const row = [...form.querySelectorAll('.hiapi-history-row')].find(r => !r.dataset.before);
            if (!row) return false;
            const state = row.querySelector('.hiapi-history-state [data-status]');
            const img = row.querySelector('img'), video = row.querySelector('video');
            return state && state.dataset.status === 'success'
                   && ((img && img.complete && img.naturalWidth > 0) || (video && video.readyState >= 1));
        }""",
            arg=i,
            timeout=60_000,
        )
        assert kernel_state(page)["busyCells"] == 0
    return forms


def run_observing_no_wait(page, all_cells: list[dict]) -> tuple[int | None, bool]:
    """Run every cell, in two steps when there is a `%%hiapi --no-wait` cell: first up to and
    including it, so that the kernel is idle while its task runs; then the rest.
    Returns (index of that cell or None, whether the last step ran without a failed cell)."""
    page.evaluate(RECORDER_JS)
    no_wait = next((c["index"] for c in all_cells if is_no_wait_cell(c)), None)
    if no_wait is None or no_wait == len(all_cells) - 1:
        return no_wait, execute(page, "notebook:run-all-cells")
    activate(page, no_wait + 1)
    assert execute(page, "notebook:run-all-above"), "a cell failed before the --no-wait cell"
    # Idle within seconds: the kernel's status flickers to busy for the front end's own widget
    # messages (a closed bar's comm), never for long; the task itself runs on in the background.
    wait_idle(page, timeout=10)
    assert kernel_state(page) == {"kernel": "idle", "busyCells": 0}
    wait_cell_final(page, no_wait)
    activate(page, no_wait + 1)
    return no_wait, execute(page, "notebook:run-all-below")


def check_moved_while_idle(page, index: int) -> list[dict]:
    """The live bar of cell `index` changed at least once with the kernel idle and no cell
    running, after its own cell had finished."""
    recs = [r for r in records(page) if r["cell"] == index]
    assert recs, f"no live status bar was ever shown in cell {index}"
    idle = [
        r
        for r in recs[1:]
        if r["kernel"] == "idle" and r["busyCells"] == 0 and re.fullmatch(r"\[\d+\]:", r["prompt"] or "")
    ]
    assert idle, "the --no-wait bar never changed while the kernel was idle: " + "; ".join(
        f"{r['kernel']}/{r['prompt']} {r['width']} {r['text']!r}" for r in recs
    )
    return idle


def reopen_without_kernel(page, base_url: str, path: str):
    """The saved notebook in a new browser context whose JupyterLab does not start kernels
    (the server's own `notebookStartsKernel: false` page option), like a viewer with no kernel."""
    context = page.context.browser.new_context(base_url=base_url, viewport={"width": WIDTH, "height": 1000})
    without_kernels(context, r".*/lab/tree/.*")
    fresh = context.new_page()
    fresh.set_default_timeout(60_000)
    fresh.hiapi_dialogs = []
    fresh.on("dialog", lambda d: (fresh.hiapi_dialogs.append(d.message), d.dismiss()))
    fresh.goto(f"/lab/tree/{quote(path)}?reset")
    fresh.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        return w && w.content && w.context && w.context.isReady && w.content.widgets.length > 0; }""")
    fresh.wait_for_timeout(1000)  # let a kernel start if anything were to start one
    return context, fresh


# --- per-notebook expectations -----------------------------------------------------------------


def check_quickstart(page, all_cells: list[dict], no_wait: int | None) -> None:
    connect = first_cell(all_cells, "%load_ext hiapi_notebook")
    assert any("synthetic" in o["text"] for o in connect["outputs"]), connect["outputs"]

    fox = first_cell(all_cells, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 16:9 -o fox")
    assert [s["status"] for s in fox["statuses"]] == ["success"]
    assert "A red fox asleep in fresh snow" in fox["statuses"][0]["text"]
    (img,) = fox["images"]
    # its preview, kept in the notebook, is a link that opens the original beside it
    assert img["src"].startswith("data:image/") and "/files/" in img["link"], img
    assert "/hiapi-outputs/" in img["link"] and ".png" in img["link"], img
    assert abs(img["naturalWidth"] / img["naturalHeight"] - 16 / 9) < 0.02, img
    assert 0 < img["width"] <= 512, img  # shown at a sensible size

    owl = first_cell(all_cells, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 1:1")
    assert "A barn owl reading a tiny book" in owl["statuses"][0]["text"]  # {animal} filled in
    (img,) = owl["images"]
    assert img["naturalWidth"] == img["naturalHeight"], img

    clip = first_cell(all_cells, "%%hiapi seedance-2-0")
    assert [s["status"] for s in clip["statuses"]] == ["success"]
    (video,) = clip["videos"]
    # the poster is kept in the notebook; the clip plays from its local copy beside it
    assert video["poster"].startswith("data:image/"), video
    assert "/files/" in video["src"] and "/hiapi-outputs/" in video["src"] and ".mp4" in video["src"], video
    assert not clip["images"]  # the first frame is the poster, not a second picture

    assert no_wait is not None
    lighthouse = all_cells[no_wait]
    assert lighthouse["source"].startswith("%%hiapi gpt-image-2/text-to-image --no-wait")
    assert [s["status"] for s in lighthouse["statuses"]] == ["success"] and len(lighthouse["images"]) == 1

    trio = first_cell(all_cells, "%%hiapi gpt-image-2/text-to-image -n 3")
    page_cards = page.evaluate(
        """(i) => [...window.jupyterapp.shell.currentWidget.content.widgets[i]
        .node.querySelectorAll('figure.hiapi-card')].map(f => f.dataset.status)""",
        trio["index"],
    )
    assert page_cards == ["success"] * 3, page_cards
    assert len([i for i in trio["images"] if i["visible"]]) == 3  # three thumbnails (full size: hidden)

    failed = first_cell(all_cells, "%%hiapi gpt-image-2/text-to-image\nThis prompt asks the sandbox to fail")
    assert "asked to fail" in failed["statuses"][0]["text"]
    caught = first_cell(all_cells, "try:")
    assert any("invalid input.aspect_ratio" in o["text"] for o in caught["outputs"]), caught["outputs"]

    # The last cell: a mistake in the magic's line is one stderr line, no traceback.
    last = [c for c in all_cells if c["type"] == "code"][-1]
    texts = [o for o in last["outputs"] if o["text"].strip()]
    assert len(texts) == 1 and texts[0]["mime"] == "application/vnd.jupyter.stderr", last["outputs"]
    line = texts[0]["text"].strip()
    assert line.startswith("UsageError: invalid input.aspect_ratio '7:3'"), line
    assert "\n" not in line and "Traceback" not in line


def check_reproducible(page, all_cells: list[dict], no_wait: int | None) -> None:
    hiapi_cells = [c for c in all_cells if c["source"].startswith("%%hiapi")]
    first, again = hiapi_cells[0], hiapi_cells[1]
    assert first["statuses"] and "cached" not in first["statuses"][0]["text"]
    # the same request again is answered from the journal, and the bar says so
    assert again["statuses"] and "cached" in again["statuses"][0]["text"], again["statuses"]
    assert again["images"], "the cached result shows its picture"


def check_chaining(page, all_cells: list[dict], no_wait: int | None) -> None:
    """The chain's three results on screen: the picture, the refined picture, the clip."""
    fox = first_cell(all_cells, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 16:9 -o fox")
    woodcut = first_cell(all_cells, "%%hiapi gpt-image-2/image-to-image --input_urls fox")
    clip = first_cell(all_cells, "%%hiapi seedance-2-0 --first_frame_url woodcut")
    for cell in (fox, woodcut, clip):
        assert [s["status"] for s in cell["statuses"]] == ["success"], (cell["source"][:40], cell["statuses"])
    for cell in (fox, woodcut):
        (img,) = cell["images"]
        assert img["visible"] and img["complete"] and img["width"] > 100, img
        assert abs(img["naturalWidth"] / img["naturalHeight"] - 16 / 9) < 0.02, img  # the fox's shape, kept
    (video,) = clip["videos"]
    assert video["duration"] > 3 and video["poster"].startswith("data:image/png"), video
    assert not clip["images"]
    # the form opened with the refined picture as its input shows its thumbnail
    thumbs = page.evaluate(
        """() => [...document.querySelectorAll('.hiapi-form .hiapi-media-chosen-input_urls img')]
        .map(i => i.complete && i.naturalWidth > 0)"""
    )
    assert thumbs == [True], thumbs
    caught = first_cell(all_cells, "try:")
    assert any("is not a URL, a file or a notebook variable" in o["text"] for o in caught["outputs"])


CHECKS = {"01": check_quickstart, "03": check_reproducible, "04": check_chaining}


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_as_a_user_sees_it(lab, page, tmp_path, notebook):
    folder = copy_notebooks(lab, tmp_path)
    path = f"{folder}/{notebook.name}"
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    open_notebook(page, path)

    no_wait, _ = run_observing_no_wait(page, cells(page))
    if no_wait is not None:
        check_moved_while_idle(page, no_wait)

    fit_viewport(page)
    wait_media(page)
    shown = cells(page)
    code = [c for c in shown if c["type"] == "code"]
    assert all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in code), [
        (c["index"], c["prompt"]) for c in code if not re.fullmatch(r"\[\d+\]:", c["prompt"])
    ]
    tracebacks = [c["index"] for c in shown for o in c["outputs"] if "Traceback" in o["text"]]
    assert not tracebacks, f"cells {tracebacks} show a traceback"
    check_statuses(shown)
    images, videos = check_media(shown)
    assert images > 0
    check_no_widget_errors(page)
    check = CHECKS.get(notebook.stem[:2])
    if check:
        check(page, shown, no_wait)
    check_forms(page)
    assert not page.hiapi_dialogs
    screenshot(page, f"notebook-{notebook.stem}")
    if notebook.stem.startswith("01") and os.environ.get("UPDATE_SCREENSHOT") == "1":
        readme_screenshot(page, shown)

    # Saved, kernel gone, reopened: the same pictures and videos, as static outputs.
    save(page)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.sessionContext.session")
    context, fresh = reopen_without_kernel(page, lab.url, path)
    try:
        assert fresh.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session") is None
        assert "No Kernel" in fresh.locator(".jp-NotebookPanel-toolbar").inner_text()
        fit_viewport(fresh)
        wait_media(fresh)
        again = cells(fresh)
        check_media(again)
        # A form's results live in widgets while the kernel runs; the saved notebook shows
        # them from the form's static history copy instead (thumbnails and full size), so
        # those cells must show at least one picture per picture seen live. Every other
        # cell shows exactly what it showed live.
        lost = [
            (
                c["index"],
                c["source"][:40],
                len(live["images"]),
                len(c["images"]),
                len(live["videos"]),
                len(c["videos"]),
            )
            for c, live in zip(again, shown)
            if (
                live["widgets"]
                and (len(c["images"]) < len(live["images"]) or len(c["videos"]) < len(live["videos"]))
            )
            or (
                not live["widgets"]
                and (len(c["images"]), len(c["videos"])) != (len(live["images"]), len(live["videos"]))
            )
        ]
        assert not lost, f"pictures or videos lost on reopening: {lost}"
        assert [[s["status"] for s in c["statuses"]] for c in again] == [
            [s["status"] for s in c["statuses"]] for c in shown
        ]
        check_statuses(again)
        check_no_widget_errors(fresh)
        # Status bars and results are static; only a cell that showed an interactive widget
        # (a form) may show one that waits for a kernel.
        left = [
            (c["index"], c["source"][:50])
            for c, live in zip(again, shown)
            if c["widgets"] and not live["widgets"]
        ]
        assert not left, f"widgets left behind in the saved notebook: {left}"
        assert not fresh.hiapi_dialogs
        screenshot(fresh, f"notebook-{notebook.stem}-reopened")
    except Exception:
        screenshot(fresh, f"FAILED-notebook-{notebook.stem}-reopened")
        raise
    finally:
        context.close()


def readme_screenshot(page, shown: list[dict]) -> None:
    """docs/screenshot.png: the quickstart's first image result, cropped to 1200 px wide."""
    from PIL import Image

    start = next(c["index"] for c in shown if c["source"].startswith("## An image"))
    end = first_cell(shown, "fox.task_id")["index"]
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
    page.wait_for_timeout(300)
    chrome = page.evaluate("() => innerWidth - document.querySelector('.jp-NotebookPanel').clientWidth")
    page.set_viewport_size({"width": 1200 + chrome, "height": page.viewport_size["height"]})
    activate(page, len(shown) - 1)  # no selection highlight on the cells in the picture
    page.wait_for_timeout(500)
    box = page.evaluate(
        """([a, b]) => {
      const panel = document.querySelector('.jp-NotebookPanel').getBoundingClientRect();
      const ws = window.jupyterapp.shell.currentWidget.content.widgets;
      const top = ws[a].node.getBoundingClientRect(), bottom = ws[b].node.getBoundingClientRect();
      return {x: panel.left + 1, y: top.top - 4, height: bottom.bottom - top.top + 12}; }""",
        [start, end],
    )
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(README_SHOT), clip={"x": box["x"], "y": box["y"], "width": 1200, "height": box["height"]}
    )
    if README_SHOT.stat().st_size > 400_000:  # keep the repository small: 256 colours is plenty
        Image.open(README_SHOT).convert("RGB").quantize(256).save(README_SHOT, optimize=True)
    assert README_SHOT.stat().st_size < 400_000
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
    fit_viewport(page)


def test_prompt_html_is_shown_as_text(lab, page, tmp_path):
    """A prompt with an <img onerror> and a <script> is text in the live bar, the final bar, the
    grid's captions and the history table; nothing is injected and no dialog opens."""
    sources = (
        "%load_ext hiapi_notebook\n%hiapi connect",
        f"%%hiapi gpt-image-2/text-to-image --no-wait -o evil\n{EVIL}",
        f"%%hiapi gpt-image-2/text-to-image -n 2 --fresh -o pair\n{EVIL}",
        "pair",  # a gallery, captioned with the prompt
        f"%%hiapi gpt-image-2/text-to-image\n{EVIL} #fail",
        "%hiapi history 5",
    )
    folder = write_notebook(tmp_path / "security" / "xss.ipynb", sources).parent
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    open_notebook(page, f"{lab.add_notebooks(folder)}/xss.ipynb")

    no_wait, ok = run_observing_no_wait(page, cells(page))
    assert no_wait == 1 and ok
    live = [r for r in records(page) if r["cell"] == 1]
    assert any(EVIL in r["text"] for r in live), [r["text"] for r in live]
    for r in records(page):  # at every moment a live bar changed
        assert r["injectedImgs"] == 0 and r["outputScripts"] == 0, r
    page.wait_for_timeout(1000)  # an onerror would fire by now

    fit_viewport(page)
    shown = cells(page)
    for index in (1, 2, 4):
        assert not shown[index]["tasks"], f"cell {index} still shows a live bar"
    assert EVIL in shown[1]["statuses"][0]["text"] and shown[1]["statuses"][0]["status"] == "success"
    assert EVIL in shown[4]["statuses"][0]["text"] and shown[4]["statuses"][0]["status"] == "fail"
    grid = "\n".join(o["text"] for o in shown[2]["outputs"])
    assert "2/2 done" in grid, grid
    # captions are one line (the model); the prompt is in their hover text, as text
    captions = page.evaluate("""() => [...window.jupyterapp.shell.currentWidget.content.widgets[3]
        .node.querySelectorAll('figcaption')].map(f => f.title)""")
    assert len(captions) == 2 and all(EVIL in c for c in captions), captions
    history = "\n".join(o["text"] for o in shown[5]["outputs"])
    assert "<img src=x onerror=alert(1)>" in history, history
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.evaluate("() => document.querySelectorAll('.jp-OutputArea script').length") == 0
    assert (
        page.evaluate("() => [...document.scripts].filter(s => s.textContent.includes('alert(')).length") == 0
    )
    assert not page.hiapi_dialogs
    screenshot(page, "prompt-html-as-text")
