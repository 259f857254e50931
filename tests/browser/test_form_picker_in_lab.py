"""The prompt form with many results, in JupyterLab in headless Chromium, as a returning user
meets it: another notebook in the folder made 26 pictures, this one 4; the media field's
picker of earlier results is one grid that scrolls as one, with a card per result (this
notebook's first, the folder's marked), a filter box, and a click on the 17th card picks the
17th. An upload is counted on its button, a chip's label is whole, and gpt-image-2's two image
fields say which to use.

Screenshots (look at them): test-artifacts/screenshots/form-picker-*.png
"""

from __future__ import annotations

import pytest
from harness import BUILTIN_SANDBOX_ENV, open_notebook, run_all, screenshot, wait_idle, write_notebook

pytestmark = pytest.mark.browser
WIDTH = 1400
T2I = "gpt-image-2/text-to-image"
I2I = "gpt-image-2/image-to-image"

OTHER = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    "import hiapi_notebook as h\n"
    f"made = h.generate_many([{{'model': '{T2I}', 'prompt': f'folder picture number{{i:02d}}'}}"
    " for i in range(26)], show=False)\nprint(sum(1 for g in made if g.status == 'success'), 'made')",
)
MINE = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    "import hiapi_notebook as h\n"
    f"mine = h.generate_many([{{'model': '{T2I}', 'prompt': f'my own picture {{i}}'}} for i in range(4)],"
    " show=False)",
    f"form = h.PromptForm(model='{I2I}', prompt='the same, as a woodcut')\nform",
)

# Run code in the notebook's kernel and give back what it printed.
KERNEL_PRINT_JS = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let out = '';
  const future = kernel.requestExecute({code, store_history: false});
  future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
  await future.done;
  return out;
}"""

# Where each card of the picker is, and whether anything inside a card scrolls.
CARDS_JS = """() => [...document.querySelectorAll('.hiapi-media-picker-input_urls .hiapi-media-pick-item')]
  .filter(c => c.offsetParent !== null).map(c => { const r = c.getBoundingClientRect();
    return {x: r.x, y: r.y, w: r.width, h: r.height, scrolls: c.scrollHeight > c.clientHeight + 1,
            task: c.querySelector('.hiapi-media-pick-use').title,
            folder: c.classList.contains('hiapi-media-pick-folder')}; })"""


@pytest.fixture(scope="module")
def lab_env() -> dict[str, str]:
    return dict(BUILTIN_SANDBOX_ENV)


def kernel_print(page, code: str) -> str:
    return page.evaluate(KERNEL_PRINT_JS, code)


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"] + 0.5
        or b["x"] + b["w"] <= a["x"] + 0.5
        or a["y"] + a["h"] <= b["y"] + 0.5
        or b["y"] + b["h"] <= a["y"] + 0.5
    )


def test_thirty_results_in_the_folder_and_the_17th_is_picked_by_a_click(lab, page, tmp_path):
    folder = tmp_path / "returning"
    write_notebook(folder / "other.ipynb", OTHER)
    write_notebook(folder / "mine.ipynb", MINE)
    (folder / "hiapi-inputs").mkdir()
    served = lab.add_notebooks(folder)
    page.set_viewport_size({"width": WIDTH, "height": 1400})

    open_notebook(page, f"{served}/other.ipynb")
    assert run_all(page, 180)
    assert "26 made" in kernel_print(page, "print(sum(1 for g in made if g.status == 'success'), 'made')")
    open_notebook(page, f"{served}/mine.ipynb")
    assert run_all(page, 180)
    form = page.locator(".hiapi-form")
    form.wait_for()

    # --- the picker: one grid of 30 cards, mine first, scrolling as one ----------------------------
    form.locator(".hiapi-media-pick-input_urls").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.hiapi-media-picker-input_urls .hiapi-media-pick-item').length === 30"
    )
    page.wait_for_timeout(500)
    cards = page.evaluate(CARDS_JS)
    assert len(cards) == 30 and len({c["task"] for c in cards}) == 30  # one card per result
    assert [c["folder"] for c in cards] == [False] * 4 + [True] * 26
    assert all(c["w"] >= 100 and c["h"] >= 100 for c in cards), cards[:3]  # not squashed
    assert not any(c["scrolls"] for c in cards)  # no card has its own scrollbar
    assert not any(overlap(a, b) for i, a in enumerate(cards) for b in cards[i + 1 :])
    grid = form.locator(".hiapi-media-picker-input_urls")
    assert grid.evaluate("g => g.scrollHeight > g.clientHeight + 50")  # the grid scrolls, as one
    headings = grid.locator(".hiapi-media-pick-heading").all_inner_texts()
    assert headings[0].startswith("this notebook (4)") and "folder" in headings[1] and "(26)" in headings[1]
    filter_box = form.locator(".hiapi-media-pick-filter-input_urls input")
    assert filter_box.is_visible()
    assert filter_box.evaluate("""i => { const c = document.createElement('canvas').getContext('2d');
        const s = getComputedStyle(i); c.font = `${s.fontSize} ${s.fontFamily}`;
        return c.measureText(i.placeholder).width <= i.clientWidth - parseFloat(s.paddingLeft)
                                                   - parseFloat(s.paddingRight); }""")  # not cut
    screenshot(page, "form-picker-open")

    # --- a click on the 17th card's picture picks the 17th -----------------------------------------
    seventeenth = grid.locator(".hiapi-media-pick-item").nth(16)
    seventeenth.scroll_into_view_if_needed()
    task = seventeenth.locator(".hiapi-media-pick-use").get_attribute("title")
    assert task == cards[16]["task"]
    # A click where the user sees the 17th picture: what is there is that card's own button
    # (stretched over the card), so the click picks this card and no neighbour.
    picture = seventeenth.locator(".hiapi-media-thumb").bounding_box()
    x, y = picture["x"] + picture["width"] / 2, picture["y"] + picture["height"] / 2
    hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).title", [x, y])
    assert hit == task
    page.mouse.click(x, y)
    chip = form.locator(".hiapi-media-chosen-input_urls .hiapi-media-item")
    chip.wait_for()
    page.wait_for_function(
        "(t) => document.querySelector('.hiapi-form .hiapi-copy-button').dataset.cell.includes(t)", arg=task
    )
    cell = form.locator(".hiapi-copy-button").get_attribute("data-cell")
    assert cell.startswith(f"%%hiapi {I2I} --input_urls hiapi-outputs/{task}/"), cell
    assert chip.locator(".hiapi-media-label").inner_text() == f"hiapi-outputs/{task}/0-image.png"
    printed = kernel_print(
        page,
        "import base64\n"
        "c = form._fields['input_urls']\n"
        "sent = form.request().input['input_urls'][0]\n"
        "copy = open(c.items[0].outputs[0].path, 'rb').read()\n"
        "print(len(c.items), c.items[0].task_id, c.items[0].prompt, "
        "sent == 'data:image/png;base64,' + base64.b64encode(copy).decode())",
    )
    count, picked, *prompt, is_copy = printed.split()
    assert (count, picked, " ".join(prompt)) == ("1", task, "folder picture number13")
    # Made by the other notebook's kernel on its own sandbox, whose URLs die with it: the
    # form sends that result's local copy, byte for byte.
    assert is_copy == "True"

    # --- the filter ------------------------------------------------------------------------------
    filter_box.fill("number07")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.hiapi-media-picker-input_urls .hiapi-media-pick-item')]"
        ".filter(c => c.offsetParent !== null).length === 1"
    )
    assert "1 of 30 match" in form.locator(".hiapi-media-pick-summary-input_urls").inner_text()
    filter_box.fill("")
    form.locator(".hiapi-media-pick-input_urls").click()  # close the picker

    # --- an upload: counted on the button, its chip's label whole ---------------------------------
    photo = tmp_path / "my_photo_of_the_harbour.png"
    kernel_print(
        page,
        "from PIL import Image; import io; b = io.BytesIO(); Image.new('RGB', (64, 48), (0, 90, 160)).save(b, 'PNG');"
        f" open({str(photo)!r}, 'wb').write(b.getvalue())",
    )
    upload = form.locator(".hiapi-media-upload-input_urls")
    assert upload.inner_text().strip().endswith("(0)")
    with page.expect_file_chooser() as chooser:
        upload.click()
    chooser.value.set_files(str(photo))
    page.wait_for_function(
        "() => document.querySelectorAll('.hiapi-media-chosen-input_urls .hiapi-media-item').length === 2"
    )
    page.wait_for_function(
        "() => document.querySelector('.hiapi-media-upload-input_urls').innerText.trim().endsWith('(1)')"
    )
    label = form.locator(".hiapi-media-chosen-input_urls .hiapi-media-label").nth(1)
    assert label.inner_text() == "hiapi-inputs/my_photo_of_the_harbour.png"
    assert label.evaluate("l => l.scrollWidth <= l.clientWidth + 1 && l.scrollHeight <= l.clientHeight + 1")
    # --- which of the two image fields to use ------------------------------------------------------
    assert "use this one" in form.locator(".hiapi-media-note-input_urls").inner_text()
    assert "use input_urls" in form.locator(".hiapi-media-note-image_urls").inner_text()
    form.scroll_into_view_if_needed()
    screenshot(page, "form-picker-chosen")

    # Generate sends the two chosen: the picked result and the upload
    form.locator(".hiapi-form-generate").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.hiapi-form .hiapi-history-row')].some(r =>"
        " r.querySelector('[data-status=\"success\"]'))",
        timeout=60_000,
    )
    wait_idle(page)
    sent = kernel_print(
        page,
        "sent = form.generations[-1].job.request.input['input_urls']\n"
        "print(len(sent), sent[0] == 'data:image/png;base64,' + base64.b64encode(copy).decode())",
    )
    assert sent.split() == ["2", "True"]  # the picked result's copy first, then the upload


# --- a reopened notebook: no dead form, the twin instead ------------------------------------------

FORM_CELLS = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    f"import hiapi_notebook as h\nform = h.PromptForm(model='{T2I}', prompt='A lighthouse on a cliff at dusk')\nform",
)

# What the form's cell shows: visible live controls, visible disconnected marks, the twin.
FORM_SHOWS_JS = """() => {
  const seen = e => !!e && e.offsetParent !== null && e.getBoundingClientRect().height > 0;
  const form = document.querySelector('.hiapi-form');
  const twin = document.querySelector('.hiapi-form-kept');
  return {
    form: seen(form),
    dead: [...document.querySelectorAll('.jupyter-widgets-disconnected')].filter(seen).length,
    errors: [...document.querySelectorAll('.jp-OutputArea-output')].filter(o => seen(o)
              && /Error displaying widget|Loading widget/.test(o.textContent)).length,
    twin: seen(twin),
    twinText: twin ? twin.innerText : '',
    twinPictures: twin ? [...twin.querySelectorAll('img')].filter(i => seen(i) && i.naturalWidth > 0).length : 0,
  };
}"""


def settled(page) -> dict:
    """What the form's cell shows once the widget manager has restored the saved state: the
    twin shows within seconds (or the test fails on what is shown then)."""
    try:
        page.wait_for_function(f"() => ({FORM_SHOWS_JS})().twin", timeout=20_000)
    except Exception:
        pass
    page.wait_for_timeout(1000)  # and it stays so
    return page.evaluate(FORM_SHOWS_JS)


def test_a_reopened_notebook_shows_the_forms_twin_not_a_dead_form(lab, page, tmp_path):
    from harness import save
    from test_product import reopen_without_kernel

    folder = write_notebook(tmp_path / "reopened" / "form.ipynb", FORM_CELLS).parent
    path = f"{lab.add_notebooks(folder)}/form.ipynb"
    page.set_viewport_size({"width": WIDTH, "height": 1400})
    open_notebook(page, path)
    assert run_all(page)
    form = page.locator(".hiapi-form")
    for _ in range(2):
        form.locator(".hiapi-form-generate").click()
        page.wait_for_timeout(1600)  # past the double-click window: a second task
    page.wait_for_function(
        "() => document.querySelectorAll('.hiapi-form .hiapi-history-row [data-status=\"success\"]').length === 2",
        timeout=60_000,
    )
    wait_idle(page)
    page.wait_for_timeout(1000)  # the twin's last update
    live = page.evaluate(FORM_SHOWS_JS)
    assert live["form"] and not live["twin"] and live["dead"] == 0, live  # live: the form alone
    save(page)
    import json

    saved = json.loads((lab.root / path).read_text())
    assert "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {})  # saveState

    # no kernel at all (a viewer): the twin, with the form's two pictures and its settings
    context, fresh = reopen_without_kernel(page, lab.url, path)
    try:
        shown = settled(fresh)
        screenshot(fresh, "form-reopened-no-kernel")
        assert not shown["form"] and shown["dead"] == 0 and shown["errors"] == 0, shown
        assert shown["twin"] and shown["twinPictures"] == 2, shown
        assert (
            f"%%hiapi {T2I}" in shown["twinText"] and "A lighthouse on a cliff at dusk" in shown["twinText"]
        )
        assert "needs a running kernel" in shown["twinText"] or "need a running kernel" in shown["twinText"]
    finally:
        context.close()

    # reopened the next day: a new kernel, which gets the saved widgets (JupyterLab opens a
    # comm for each); the frozen form they draw is hidden, the twin shows
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    page.wait_for_timeout(1000)
    open_notebook(page, path)
    shown = settled(page)
    screenshot(page, "form-reopened-new-kernel")
    assert not shown["form"] and shown["dead"] == 0 and shown["errors"] == 0, shown
    assert shown["twin"] and shown["twinPictures"] == 2, shown
    # the first cell (%load_ext) closes whatever of the saved form the new kernel holds
    kernel_print(page, "%load_ext hiapi_notebook")
    left = kernel_print(
        page,
        "import sys\nw = sys.modules.get('ipywidgets.widgets.widget')\n"
        "print(sum('hiapi-form' in getattr(x, '_dom_classes', ()) for x in (w._instances.values() if w else ())))",
    )
    assert left.strip() == "0", left
    assert settled(page)["twin"]
    # and the form's cell run again gives a live form, the twin hidden again
    assert run_all(page)
    page.wait_for_function(f"() => ({FORM_SHOWS_JS})().form", timeout=20_000)
    page.wait_for_timeout(1000)
    shown = page.evaluate(FORM_SHOWS_JS)
    assert shown["form"] and not shown["twin"] and shown["dead"] == 0, shown
