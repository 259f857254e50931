"""The first hour, in JupyterLab in headless Chromium, as a new user sees it: the prompt form's
layout and its "Copy as magic" button (read back from the real clipboard), one-line captions
with an enlarged view that Escape closes, the visual history and the models table, in the
light and the dark theme. Screenshots go to test-artifacts/screenshots/first-hour-*.png."""

from __future__ import annotations

import re

import pytest
from harness import BUILTIN_SANDBOX_ENV, open_notebook, run_all, screenshot, wait_idle, write_notebook

pytestmark = pytest.mark.browser
WIDTH = 1400

CELLS = (
    "%load_ext hiapi_notebook\n%hiapi connect",
    'import hiapi_notebook\nform = hiapi_notebook.PromptForm(model="seedance-2-0", prompt="A paper boat on a pond")\nform',
    "%%hiapi gpt-image-2/text-to-image --sweep aspect_ratio=1:1,16:9 -o pair\nA lighthouse at dusk, oil on canvas",
    "%hiapi history",
    "%hiapi models seed",
)


@pytest.fixture(scope="module")
def lab_env() -> dict[str, str]:
    return dict(BUILTIN_SANDBOX_ENV)  # one Lab server serves every module that asks for it


def output(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


def box(locator) -> dict:
    return locator.evaluate(
        "e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; }"
    )


def test_the_first_hour_in_jupyterlab(lab, page, tmp_path):
    folder = write_notebook(tmp_path / "first-hour" / "first-hour.ipynb", CELLS).parent
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    page.set_viewport_size({"width": WIDTH, "height": 2400})
    open_notebook(page, f"{lab.add_notebooks(folder)}/first-hour.ipynb")
    assert run_all(page)

    # --- the form: a usable slider, every placeholder readable, the checkbox in line -------
    form = page.locator(".hiapi-form")
    slider = form.locator(".hiapi-field-duration .slider-container, .hiapi-field-duration .widget-slider")
    assert box(slider.first)["w"] >= 150, box(slider.first)
    clipped = page.evaluate("""() => [...document.querySelectorAll('.hiapi-form input[placeholder]')].filter(i => {
        const c = document.createElement('canvas').getContext('2d');
        const s = getComputedStyle(i); c.font = `${s.fontSize} ${s.fontFamily}`;
        const room = i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
        return i.placeholder && c.measureText(i.placeholder).width > room; }).map(i => i.placeholder)""")
    assert clipped == [], clipped
    label = box(form.locator(".hiapi-field-label", has_text="generate_audio"))
    check = box(form.locator(".hiapi-field-generate_audio input[type=checkbox]"))
    assert abs((label["y"] + label["h"] / 2) - (check["y"] + check["h"] / 2)) <= 4, (label, check)
    labels = [box(form.locator(".hiapi-field-aspect_ratio .widget-label")), label]
    assert abs(labels[0]["x"] - labels[1]["x"]) <= 2 and abs(labels[0]["w"] - labels[1]["w"]) <= 2
    models = form.locator(".hiapi-form-model select option").all_inner_texts()
    names = [re.split(r"\s\(", m)[0] for m in models]
    assert names == sorted(names, key=str.lower), names  # legacy names in their place, marked

    # --- Copy as magic puts the cell on the clipboard and says so -------------------------
    copy = form.locator(".hiapi-copy-button")
    copy.click()
    page.wait_for_function("() => document.querySelector('.hiapi-copy-state').textContent === 'copied'")
    clipboard = page.evaluate("() => navigator.clipboard.readText()")
    assert clipboard == copy.get_attribute("data-cell")
    assert clipboard.startswith("%%hiapi seedance-2-0 ") and clipboard.endswith("\nA paper boat on a pond")

    # --- Generate: the running count appears without moving the buttons ---------------------
    before = box(form.locator(".hiapi-form-generate")), box(copy)
    form.locator(".hiapi-form-generate").click()
    page.wait_for_function("() => document.querySelector('.hiapi-form-status').innerText.includes('running')")
    after = box(form.locator(".hiapi-form-generate")), box(copy)
    assert [(b["x"], b["y"]) for b in before] == [(a["x"], a["y"]) for a in after]
    page.wait_for_function(
        "() => [...document.querySelectorAll('.hiapi-form .hiapi-history-row')].some(r =>"
        " r.querySelector('[data-status=\"success\"]'))",
        timeout=60_000,
    )
    wait_idle(page)

    # --- captions: one line each; a thumbnail enlarges, Escape closes it -------------------
    grid = output(page, 2)
    page.wait_for_function(
        "() => document.querySelectorAll('.hiapi-grid figure[data-status=\"success\"]').length === 2"
    )
    for caption in grid.locator("figcaption").all():
        assert caption.evaluate("c => c.scrollHeight <= parseFloat(getComputedStyle(c).lineHeight) * 1.5")
        assert "tk-hiapi-" in caption.get_attribute("title")
    grid.locator(".hiapi-zoom").first.click()
    page.wait_for_function("() => !!document.querySelector('.hiapi-lb-full:popover-open')")
    opened = page.locator(".hiapi-lb-full:popover-open")
    assert box(opened)["w"] > 400 and "tk-hiapi-" in opened.inner_text()
    screenshot(page, "first-hour-enlarged")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('.hiapi-lb-full:popover-open')")

    # --- history and models: within the output's width, looked at in both themes -----------
    history = output(page, 3)
    page.wait_for_function("() => document.querySelectorAll('.hiapi-journal-row').length === 2")
    assert history.locator(".hiapi-journal-row img.hiapi-thumb").count() >= 2
    area = box(history)
    assert box(history.locator(".hiapi-journal"))["w"] <= area["w"] + 1
    assert history.evaluate("o => o.scrollWidth <= o.clientWidth + 1")
    table = output(page, 4)
    heads = table.locator("thead th").all()
    firsts = table.locator("tbody tr").first.locator("td").all()
    assert [round(box(h)["x"]) for h in heads] == [round(box(c)["x"]) for c in firsts]
    assert "seed (0–2147483647)" in table.inner_text() and "* required" in table.inner_text()
    for name in table.locator("tbody code").all():  # model names on one line each
        assert name.evaluate("c => c.getClientRects().length === 1"), name.inner_text()
    form.scroll_into_view_if_needed()
    screenshot(page, "first-hour-light")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)
    borders = page.evaluate("""() => [...document.querySelectorAll(
        '.hiapi-form .hiapi-history-row, .hiapi-journal-row, .hiapi-journal-head')].map(e => {
        const s = getComputedStyle(e);
        return [s.borderTopColor, s.borderBottomColor].filter((c, i) => parseFloat(
            i ? s.borderBottomWidth : s.borderTopWidth) > 0); }).flat()""")
    light = [
        c for c in borders if sum(int(v) for v in c[c.index("(") + 1 : c.index(")")].split(",")[:3]) > 600
    ]
    assert borders and not light, light  # no white lines on a dark page
    screenshot(page, "first-hour-dark")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
