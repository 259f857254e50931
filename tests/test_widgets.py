"""The prompt form, gallery, comparison grid and generate_many, in process against the sandbox.

Widgets need no front end here: the form is driven by setting control values and calling
``button.click()``, as a front end's messages would; what reached the server is read from the
sandbox's ``last_inputs``.
"""

from __future__ import annotations

import html
import io
import re
import time

import ipywidgets as w
import pytest
from PIL import Image

import hiapi_notebook as h
from hiapi_notebook.form import PromptForm
from hiapi_notebook.grammar import interpolate, parse_line
from hiapi_notebook.sandbox import SandboxServer
from hiapi_notebook.views.gallery import Gallery, GenerationList
from hiapi_notebook.views.grid import ComparisonGrid

IMAGE = "gpt-image-2/text-to-image"
GPT_SHOWN = {"aspect_ratio": "auto", "resolution": "1K", "size": "auto"}  # what its controls show at first
PNG = b"\x89PNG"
JPEG = b"\xff\xd8\xff"


@pytest.fixture(scope="module")
def sandbox():
    srv = SandboxServer(port=0, speed=50).start()
    yield srv
    srv.stop()


def sent(sandbox, since: int) -> list[dict]:
    return list(sandbox.last_inputs)[since:]


# --- the form's controls ---------------------------------------------------------------------


def test_controls_follow_the_catalogue(session):
    form = PromptForm(model="seedance-2-0", prompt="waves")
    c = form.controls
    assert isinstance(c["aspect_ratio"], w.Dropdown) and c["aspect_ratio"].value == "16:9"
    assert isinstance(c["duration"], w.IntSlider)
    assert (c["duration"].value, c["duration"].min, c["duration"].max) == (5, 4, 15)
    assert isinstance(c["generate_audio"], w.Checkbox) and c["generate_audio"].value is False
    assert isinstance(c["first_frame_url"], w.Text)
    assert "prompt" not in c and form.prompt_area.value == "waves"
    # what the controls show is what is sent: the defaults they show included, empty ones not
    shown = {"aspect_ratio": "16:9", "duration": 5, "resolution": "720p", "generate_audio": False}
    assert form.value == {"model": "seedance-2-0", "prompt": "waves", **shown}
    assert form.request().input == {"prompt": "waves", **shown}
    c["duration"].value = 9
    assert form.request().input["duration"] == 9
    assert "PromptForm(model='seedance-2-0'" in repr(form)
    bundle = form._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/plain" in bundle


def test_changing_the_model_rebuilds_controls_and_keeps_the_prompt(session):
    form = PromptForm(model="qwen-image-2.0", prompt="a {red} fox", seed=7)
    assert isinstance(form.controls["prompt_extend"], w.Checkbox)
    assert form.controls["prompt_extend"].value is True
    form.controls["size"].value = "1536*2688"
    form.model_dropdown.value = "seedance-2.0"
    assert "prompt_extend" not in form.controls and "web_search" in form.controls
    assert form.prompt_area.value == "a {red} fox"
    assert form.controls["seed"].value == "7"  # kept: both models have a seed
    form.kind_dropdown.value = "image"
    assert form.model in h.catalog.model_names("image")
    assert form.prompt_area.value == "a {red} fox"


def test_fields_the_catalogue_does_not_describe(session):
    form = PromptForm(model=IMAGE, prompt="p", style="noir", steps=30)
    assert form.value == {"model": IMAGE, "prompt": "p", **GPT_SHOWN, "style": "noir", "steps": 30}
    form.add_field_button.click()
    extra = form._extras[-1]
    extra.key.value, extra.value.value = "guidance", "7.5"
    assert form.value["guidance"] == 7.5
    extra.remove.click()
    assert "guidance" not in form.value


# --- submitting ---------------------------------------------------------------------------


def test_generate_clicks_submit_in_the_background_and_fill_the_history(session, sandbox):
    before = len(sandbox.last_inputs)
    form = PromptForm(model=IMAGE, prompt="a lighthouse at dusk")
    form.controls["aspect_ratio"].value = "16:9"
    started = time.monotonic()
    form.generate_button.click()
    form.generate_button.click()  # a double click: one paid task, and the form says so
    assert time.monotonic() - started < 1.0, "a click must not wait for the task"
    assert len(form.generations) == 1 and "ignored a second click" in form.notice.value
    form.repeat_window = 0  # later, the same settings again: a second task, not the first's result
    form.generate_button.click()
    assert len(form.generations) == 2 and form.notice.value == ""
    assert "running" in form.status_label.value or all(g.done for g in form.generations)
    results = form.wait(30)
    expected = {
        "model": IMAGE,
        "input": {"prompt": "a lighthouse at dusk", **GPT_SHOWN, "aspect_ratio": "16:9"},
    }
    assert sent(sandbox, before) == [expected, expected]
    assert len(results) == 2 and all(g.status == "success" for g in results)
    assert len({g.task_id for g in results}) == 2
    # the history: newest first, each row ending with its image as widget bytes, at the size
    # the row shows it (twice its width, for sharp screens): never the whole original
    assert [r.generation for r in form.rows] == list(reversed(form.generations))
    assert list(form.history.children) == [r.widget for r in form.rows]
    for row in form.rows:
        shown = bytes(row.media.value)
        assert shown.startswith((PNG, JPEG)) and row.media.layout.display == ""
        assert row.media.format == ("png" if shown.startswith(PNG) else "jpeg")
        assert max(Image.open(io.BytesIO(shown)).size) <= 2 * form.thumb
        assert "success" in row.status.state.value and "download" in row.links.value
    assert "running" not in form.status_label.value


def test_submit_from_code_returns_the_generation(session, sandbox):
    form = PromptForm(model=IMAGE, prompt="one", resolution="2K")
    gen = form.submit()
    assert gen.wait(30).status == "success"
    assert sandbox.last_inputs[-1] == {
        "model": IMAGE,
        "input": {"prompt": "one", **GPT_SHOWN, "resolution": "2K"},
    }
    assert form.results == [gen]


def test_failures_stay_in_their_row(session):
    form = PromptForm(model=IMAGE, prompt="broken #fail")
    gen = form.submit()
    form.wait(30)
    assert gen.status == "fail" and form.results == [gen]
    row = form.rows[0]
    assert "fail" in row.status.state.value and "rejected" in row.status.state.value
    assert row.media.layout.display == "none"


@pytest.mark.parametrize(
    "model, setup, field, needle",
    [
        (IMAGE, {"prompt": ""}, "prompt", "required"),
        ("seedream-5.0-pro/text-to-image", {"prompt": "abc"}, "prompt", "characters"),
        ("qwen-image-2.0", {"prompt": "ok", "seed": "many"}, "seed", "whole number"),
        ("qwen-image-2.0", {"prompt": "ok", "seed": "-5"}, "seed", "out of range"),
        (IMAGE, {"prompt": "ok", "extra": ("", "5")}, "(unnamed field)", "name this field"),
        (IMAGE, {"prompt": "ok", "extra": ("aspect_ratoi", "1:1")}, "aspect_ratoi", "did you mean"),
    ],
)
def test_invalid_settings_show_inline_and_send_nothing(session, sandbox, model, setup, field, needle):
    form = PromptForm(model=model)
    form.prompt_area.value = setup["prompt"]
    if "seed" in setup:
        form.controls["seed"].value = setup["seed"]
    if "extra" in setup:
        form.add_field_button.click()
        form._extras[-1].key.value, form._extras[-1].value.value = setup["extra"]
    count = sandbox.task_count
    form.generate_button.click()
    assert form.generations == [] and sandbox.task_count == count
    assert list(form.errors) == [field] and needle in form.errors[field]
    shown = (
        form.prompt_error
        if field == "prompt"
        else form._fields[field].error
        if field in form._fields
        else form._extras[-1].error
    ).value
    assert "hiapi-form-error" in shown and needle in shown and "\n" not in shown
    with pytest.raises(ValueError):
        form.submit()
    form.prompt_area.value += " more words"  # any change clears the marks
    assert form.errors == {}


def test_missing_key_is_one_line_beside_the_button(session, monkeypatch):
    monkeypatch.delenv("HIAPI_API_KEY", raising=False)
    session.configure(api_key=None)
    form = PromptForm(model=IMAGE, prompt="p")
    form.generate_button.click()
    assert form.generations == [] and "key" in form.errors["form"].lower()


def test_estimated_cost_beside_the_button(session):
    form = PromptForm(model="seedream-5.0-pro/text-to-image", prompt="a quiet harbour")
    assert "$0.050 per task" in form.status_label.value
    form.controls["quality"].value = "high"
    assert "$0.100 per task" in form.status_label.value
    form.model_dropdown.value = IMAGE  # no price in the catalogue: no estimate
    assert "$" not in form.status_label.value


# --- copy as magic ------------------------------------------------------------------------


def test_copy_as_magic_round_trips_through_the_magic_parser(session):
    prompt = 'a "quoted" {brace} prompt\nwith two lines'
    form = PromptForm(
        model="seedance-2.0",
        prompt=prompt,
        duration=8,
        generate_audio=True,
        seed=42,
        style="5",
        negative_prompt="--no blur",
        mood=["calm", "warm"],
    )
    form.controls["resolution"].value = "1080p"
    cell = form.as_magic()
    first, body = cell.split("\n", 1)
    assert first.startswith("%%hiapi seedance-2.0 ")
    args = parse_line(first[len("%%hiapi ") :])
    assert args.model == "seedance-2.0"
    assert {**args.fields, **args.input} == {
        "aspect_ratio": "16:9",  # shown by its control, so sent, so in the cell
        "nsfw_checker": False,
        "return_last_frame": False,
        "web_search": False,
        "duration": 8,
        "generate_audio": True,
        "seed": 42,
        "style": "5",
        "negative_prompt": "--no blur",
        "mood": ["calm", "warm"],
        "resolution": "1080p",
    }
    assert interpolate(body, {"brace": "SHOULD NOT APPEAR"}).strip() == prompt
    # the cell asks for exactly what the form would send
    rebuilt = h.api.build_request(
        args.model, interpolate(body, {}).strip(), input={**args.input, **args.fields}
    )
    assert rebuilt.input == form.request().input
    # the button carries the cell; a click in the page copies it (tests/browser reads the clipboard)
    assert f'data-cell="{html.escape(cell, quote=True)}"' in form.copy_magic.value
    form.controls["duration"].value = 10  # the shown cell follows the form
    assert "--duration 10" in html.unescape(form.copy_magic.value)


# --- gallery and grid ---------------------------------------------------------------------


def test_gallery_is_static_html_with_thumbnails_captions_and_downloads(session):
    gens = h.generate_many(
        [
            {"model": IMAGE, "prompt": "<script>alert(1)</script> cat"},
            {"model": IMAGE, "prompt": "dog #fail <b>"},
        ],
        show=False,
    )
    assert isinstance(gens, GenerationList) and isinstance(gens, list)
    gallery = Gallery(gens, thumb=96)
    bundle = gallery._repr_mimebundle_()
    html, text = bundle["text/html"], bundle["text/plain"]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "dog #fail &lt;b&gt;" in html
    assert gens[0].task_id in html and gens[1].task_id in html
    # a thumbnail that opens its full size in a popover (Escape or a click beside it closes it)
    (target,) = re.findall(r'class="hiapi-zoom hiapi-lb" popovertarget="([^"]+)"', html)
    assert f'<div id="{target}" popover class="hiapi-lb-full"' in html
    assert 'class="hiapi-thumb" src="data:image/' in html  # the thumbnail is embedded
    full = html.split(f'<div id="{target}"')[1].split('<div class="hiapi-lb-caption">')[0]
    assert '<img src="hiapi-outputs/' in full  # full size: the local copy
    assert 'download="' in html and "hiapi-outputs/" in html
    caption = re.search(r'<figcaption title="([^"]*)">([^<]*)</figcaption>', html)
    assert caption[2] == IMAGE and gens[0].task_id in caption[1]  # one short line; the rest on hover
    assert "hiapi-failure" in html and "rejected" in html
    assert gens[0].task_id in text
    assert gens._repr_mimebundle_()["text/html"].count("<figure") == 2
    embedded = Gallery(gens, embed=True).render_html()
    full = embedded.split('class="hiapi-lb-full"')[1].split('<div class="hiapi-lb-caption">')[0]
    assert '<img src="data:image/' in full and "hiapi-outputs/" not in full


def test_grid_helper_and_generate_many_in_order_with_concurrency(session, sandbox, monkeypatch):
    requests = h.grid(model=IMAGE, prompt=["cat", "dog #fail"], aspect_ratio=["1:1", "16:9", "4:3"])
    assert len(requests) == 6 and requests[0] == {"model": IMAGE, "prompt": "cat", "aspect_ratio": "1:1"}
    assert h.grid(model="m", image_urls=[["a", "b"]]) == [{"model": "m", "image_urls": ["a", "b"]}]
    # Every request is claimed at once (each shows "waiting"); the gate lets at most two
    # past it. Count, as each create is sent, the batch's jobs past the gate and not done.
    from hiapi_notebook.client import AsyncTasks

    peak = [0]
    real = AsyncTasks.create

    async def counting(self, model, input, **kw):
        peak[0] = max(peak[0], sum(j.status != "waiting" for j in session.runtime.active))
        return await real(self, model, input, **kw)

    monkeypatch.setattr(AsyncTasks, "create", counting)
    before = len(sandbox.last_inputs)
    gens = h.generate_many(requests + requests[:1], concurrency=2, show=False)
    assert [g.request.input.get("aspect_ratio") for g in gens] == ["1:1", "16:9", "4:3"] * 2 + ["1:1"]
    assert [g.status for g in gens] == ["success"] * 3 + ["fail"] * 3 + ["success"]
    assert 1 <= peak[0] <= 2 and gens.gate.max_in_flight == 2
    assert len(sent(sandbox, before)) == 7  # the repeated request is a new variant, sent again
    assert gens[0].task_id != gens[6].task_id
    again = h.generate_many(requests[:3], show=False)  # recorded results are reused
    assert all(g.cached for g in again) and len(sandbox.last_inputs) == before + 7


def test_comparison_grid_labels_and_final_html(session):
    requests = h.grid(model=IMAGE, prompt="<tower>", aspect_ratio=["1:1", "16:9"], resolution=["1K", "2K"])
    gens = h.generate_many(requests, show=False)
    grid = ComparisonGrid.from_sweep(
        gens, sweeps={"aspect_ratio": ["1:1", "16:9"], "resolution": ["1K", "2K"]}
    )
    row_dim, col_dims, rows, cols = grid.layout()
    assert row_dim[0] == "aspect_ratio" and [d[0] for d in col_dims] == ["resolution"]
    assert rows == [("1:1",), ("16:9",)] and cols == [("1K",), ("2K",)]
    assert grid.cell(("16:9",), ("1K",))[0].request.input == {
        "prompt": "<tower>",
        "aspect_ratio": "16:9",
        "resolution": "1K",
    }
    html = grid.render_html()
    assert 'data-row="16:9"' in html and 'data-col="2K"' in html and "aspect_ratio ↓" in html
    assert html.count('<figure class="hiapi-card" data-status="success"') == 4
    assert "hiapi-pending" not in html and "<tower>" not in html
    derived = ComparisonGrid.from_requests(gens, requests)
    assert [d[0] for d in derived.dims] == ["aspect_ratio", "resolution"]
    one = ComparisonGrid.from_sweep(gens[:2], sweeps={"resolution": ["1K", "2K"]})
    assert one.layout()[2] == [()]  # one sweep: a single row
    n_only = ComparisonGrid.from_sweep(gens[:3], n=3)
    assert n_only.layout()[3] == [(1,), (2,), (3,)]
    models = ComparisonGrid.from_sweep(gens, models=["a", "b"], sweeps={"resolution": ["1K", "2K"]})
    assert models.layout()[0][0] == "model"


def test_a_failure_stays_in_its_cell(session):
    gens = h.generate_many(h.grid(model=IMAGE, prompt=["fine", "broken #fail <i>x</i>"]), show=False)
    grid = ComparisonGrid.from_requests(gens, h.grid(model=IMAGE, prompt=["fine", "broken #fail <i>x</i>"]))
    html = grid.render_html()
    cell = html.split('data-col="broken #fail &lt;i&gt;x&lt;/i&gt;"')[-1]
    assert "hiapi-failure" in cell and "rejected" in cell and "<i>x</i>" not in html
    assert "1 failed" in html and 'data-status="success"' in html


def test_every_card_carries_its_download_links_outside_the_enlarged_view(session, sandbox):
    from hiapi_notebook.views.grid import ComparisonGrid

    pics = h.generate_many([{"model": IMAGE, "prompt": f"kite {i}"} for i in range(2)], show=False)
    clip = h.generate("a kite flying", model="seedance-2-0", duration=4, show=False)
    html = Gallery([*pics, clip]).render_html()
    cards = re.findall(r'<figure class="hiapi-card".*?</figure>', html, flags=re.S)
    assert len(cards) == 3
    for card, gen in zip(cards, [*pics, clip]):
        outside = re.sub(
            r'<div id="[^"]+" popover class="hiapi-lb-full".*?</div></div>', "", card, flags=re.S
        )
        (links,) = re.findall(r'<div class="hiapi-card-links">(.*?)</div>', outside)
        kind = "video" if gen is clip else "image"
        assert (
            f'download="{gen.task_id}-0-{kind}.' in links
            and f"hiapi-outputs/{gen.task_id}/0-{kind}." in links
        )
    grid = ComparisonGrid([((i,), g) for i, g in enumerate(pics)], [("variant", [0, 1])]).render_html()
    assert grid.count('<div class="hiapi-card-links"><a href="hiapi-outputs/') == 2  # grid cards too
