"""The form's picker of earlier results and its media fields, in process: one card per result,
this notebook's first and the folder's marked, a filter beyond a screenful, the card clicked is
the one used; the upload count, whole chip labels, which route a media field is for, and both
ipywidgets' upload values. (tests/browser/test_form_picker.py clicks the same in JupyterLab.)"""

from __future__ import annotations

import datetime
import io

import pytest
from PIL import Image

import hiapi_notebook
from hiapi_notebook import catalog
from hiapi_notebook.form import PromptForm
from hiapi_notebook.form.fields import field_route, route_note
from hiapi_notebook.form.picker import SCREENFUL
from hiapi_notebook.form.uploads import uploaded_files

T2I = "gpt-image-2/text-to-image"
I2I = "gpt-image-2/image-to-image"
IPYTHON_API_KEY = "k"


def png_bytes(colour, size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def cards_of(form, field="input_urls"):
    control = form._fields[field]
    control.pick.value = True
    cards = [c for grid in control.picker.children for c in getattr(grid, "children", ())]
    assert cards == control.picker_view.cards  # in the order shown
    return control, [c for c in cards if "hiapi-media-pick-item" in c._dom_classes]


def shown(cards):
    return [c for c in cards if c.layout.display != "none"]


def use_button(card):
    (button,) = [c for c in card.children if "hiapi-media-pick-use" in c._dom_classes]
    return button


def make(prompts):
    return hiapi_notebook.generate_many([{"model": T2I, "prompt": p} for p in prompts], show=False)


def test_thirty_results_one_card_each_mine_first_the_folders_marked_and_the_17th_is_picked(ip, sandbox):
    from hiapi_notebook.session import reset_session

    folder = make([f"folder picture number{i:02d}" for i in range(26)])  # another notebook, say
    assert all(g.done and not g.error for g in folder)
    reset_session()  # this notebook's kernel: those are only in the folder's journal now
    ip.run_cell_magic("hiapi", T2I, "my own lighthouse")
    ip.run_cell_magic("hiapi", T2I, "my own lighthouse")  # a cached re-run: the same result
    mine = make([f"my own picture {i}" for i in range(3)])

    form = PromptForm(model=I2I, prompt="restyle it")
    control, cards = cards_of(form)
    prompts = [e.generation.prompt for e in control.picker_view.entries]
    assert len(cards) == len(prompts) == 30 == len(set(prompts))  # one card per result
    assert [e.mine for e in control.picker_view.entries] == [True] * 4 + [False] * 26
    assert set(prompts[:4]) == {"my own lighthouse", *(g.prompt for g in mine)}
    assert prompts[4:] == [f"folder picture number{i:02d}" for i in reversed(range(26))]  # newest first
    headings = [c for c in control.picker.children if "hiapi-media-pick-heading" in c._dom_classes]
    assert [h.value.count("(4)") + h.value.count("(26)") for h in headings] == [1, 1]
    assert "folder" in headings[1].value and all(
        "hiapi-media-pick-folder" in c._dom_classes and "folder</div>" in c.children[2].value
        for c in cards[4:]
    )
    assert control.picker_view.filter in control.picker_view.head.children and len(cards) > SCREENFUL

    seventeenth = control.picker_view.entries[16]
    use_button(cards[16]).click()
    (picked,) = control.items
    assert picked.task_id == seventeenth.generation.task_id and picked.prompt == "folder picture number13"
    assert form.as_magic().startswith(f"%%hiapi {I2I} --input_urls hiapi-outputs/{picked.task_id}/")
    assert control.pick.value is True  # a list field's picker stays open for more
    form.submit().wait()  # what is sent is the card clicked
    assert sandbox.last_inputs[-1]["input"]["input_urls"] == [picked.outputs[0].url]

    # the filter: words of the prompt, a model or a task id; all words must match
    view = control.picker_view
    view.filter.value = "Folder NUMBER07"  # no task id has a U
    assert [
        view.entries[i].generation.prompt for i, c in enumerate(view.cards) if c.layout.display != "none"
    ] == ["folder picture number07"]
    assert "1 of 30 match" in view.summary.value
    assert view._groups[0][0].layout.display == "none"  # no card of mine matches: no heading
    view.filter.value = seventeenth.generation.task_id.upper()
    assert len(shown(view.cards)) == 1
    view.filter.value = ""
    assert len(shown(view.cards)) == 30


def test_a_few_results_need_no_filter_and_results_the_field_cannot_take_are_left_out(ip, sandbox):
    ip.run_cell_magic("hiapi", T2I, "a single owl")
    form = PromptForm(model=I2I, prompt="restyle it")
    control, cards = cards_of(form)
    assert len(cards) == 1 and control.picker_view.filter not in control.picker_view.head.children
    assert "1 earlier results" in control.picker_view.summary.value
    video = PromptForm(model="seedance-2-0", prompt="a clip")
    control, cards = cards_of(video, "reference_video_urls")
    assert cards == []  # a picture is no reference video
    assert "no earlier results of this kind yet" in control.picker.children[0].value


def test_the_image_to_image_fields_say_which_route_they_are_for():
    spec = catalog.get_model(I2I)
    assert field_route(spec.fields["input_urls"]) == "default"
    assert field_route(spec.fields["image_urls"]) == "ext"
    assert "use this one" in route_note(spec, "input_urls")
    assert route_note(spec, "image_urls") == (
        "the ext route's field; the form sends on the default route: use input_urls"
    )
    assert route_note(catalog.get_model("seedance-2-0"), "first_frame_url") is None  # nothing to choose


def test_the_form_shows_the_route_note_beside_each_field(ip, sandbox):
    form = PromptForm(model=I2I, prompt="restyle it")
    assert "use input_urls" in form._fields["image_urls"].note.value
    assert "use this one" in form._fields["input_urls"].note.value
    assert form._fields["image_urls"].note.layout.display == ""
    clip = PromptForm(model="seedance-2-0", prompt="a clip")
    assert clip._fields["first_frame_url"].note.layout.display == "none"


def test_chip_labels_are_whole(ip, sandbox, tmp_path):
    (tmp_path / "hiapi-inputs").mkdir()
    path = tmp_path / "hiapi-inputs" / "my_photo_of_the_harbour_at_dawn.png"
    path.write_bytes(png_bytes((1, 2, 3)))
    form = PromptForm(model=I2I, prompt="restyle it")
    control = form._fields["input_urls"]
    control.widget.value = ""
    control.add(path.relative_to(tmp_path))
    label = control.chosen.children[0].children[1].value
    assert ">hiapi-inputs/my_photo_of_the_harbour_at_dawn.png</div>" in label  # not cut


# --- FileUpload values of both ipywidgets ---------------------------------------------------


def test_upload_values_of_ipywidgets_8_and_7_read_alike():
    data = png_bytes((9, 9, 9))
    eight = (
        {
            "name": "cat.png",
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.UTC),
        },
    )
    seven = {
        "cat.png": {
            "metadata": {"name": "cat.png", "type": "image/png", "size": len(data), "lastModified": 1.7e12},
            "content": data,
        }
    }
    assert uploaded_files(eight) == uploaded_files(seven) == [("cat.png", data)]
    # what is not a file is left out, whatever the front end sent
    assert uploaded_files({"x": "not a dict", "y": {"content": "text"}}) == []
    assert uploaded_files(({"name": 3, "content": b"ab"}, "junk")) == [("upload", b"ab")]
    assert uploaded_files(None) == uploaded_files(42) == []


@pytest.mark.parametrize("frontend", ["vscode", "jupyterlab"])
def test_in_vscode_the_media_fields_lead_with_the_path_box_and_say_why(ip, sandbox, monkeypatch, frontend):
    monkeypatch.setenv("HIAPI_FRONTEND", frontend)
    form = PromptForm(model="seedance-2-0", prompt="a clip")
    control = form._fields["first_frame_url"]
    first = control.row.children[0].children[0]
    assert first is control.widget  # the path / variable box leads
    if frontend == "vscode":
        assert control.upload.layout.display == "none"
        assert "vscode-jupyter issue 13469" in control.note.value and "file&#x27;s path" in control.note.value
    else:
        assert control.upload.layout.display in (None, "")
        assert "13469" not in control.note.value


# --- the same form on ipywidgets 7.7 (Google Colab's pin) ---------------------------------------

WIDGETS7_SCRIPT = r"""
import io, warnings
warnings.filterwarnings("error", message="Passing unrecognized arguments")  # a kwarg 7.7 lacks
import ipywidgets
assert ipywidgets.__version__.startswith("7."), ipywidgets.__version__
from PIL import Image
from hiapi_notebook.form import PromptForm

form = PromptForm(model="gpt-image-2/image-to-image", prompt="restyle it")
control = form._fields["input_urls"]
upload = control.upload
assert isinstance(upload.value, dict) and upload._counter == 0
out = io.BytesIO(); Image.new("RGB", (20, 20), (1, 2, 3)).save(out, "PNG"); data = out.getvalue()

def choose(counter):  # what 7.7's front end sends: the files, then _counter moves
    with upload.hold_trait_notifications():
        upload.metadata = [{"name": "my cat.png", "type": "image/png", "size": len(data), "lastModified": 1}]
        upload.data = [data]
        upload._counter = counter

choose(1)
assert [p.as_posix() for p in control.items] == ["hiapi-inputs/my_cat.png"], control.items
assert upload._counter == 1 and upload.value == {}  # the label reads "upload (1)"
choose(2)  # the same file again is taken again
assert len(control.items) == 2 and upload._counter == 2
control.remove(0)
assert upload._counter == 1, upload._counter  # a removed upload is no longer counted
assert form.as_magic().startswith("%%hiapi gpt-image-2/image-to-image --input_urls hiapi-inputs/my_cat.png")
assert open("hiapi-inputs/my_cat.png", "rb").read() == data
print("ok")
"""


def widgets7_python():
    import os
    from pathlib import Path

    given = os.environ.get("HIAPI_TEST_WIDGETS7_PYTHON")
    colab = Path(__file__).resolve().parents[1] / ".venv-colab" / "bin" / "python"
    return given or (str(colab) if colab.exists() else None)


def test_the_form_on_ipywidgets_7_reads_uploads_counts_them_and_passes_no_unknown_argument(tmp_path):
    import subprocess

    python = widgets7_python()
    if python is None:
        pytest.skip("no Python with ipywidgets 7.7 (the Colab-like venv, or HIAPI_TEST_WIDGETS7_PYTHON)")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HIAPI_API_KEY": "", "HIAPI_BASE_URL": ""}
    done = subprocess.run(
        [python, "-c", WIDGETS7_SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


# --- a reopened notebook: the twin, and no dead form ------------------------------------------


def test_the_twin_says_the_settings_and_shows_the_results_and_dead_forms_are_closed(ip, sandbox):
    import ipywidgets as w

    from hiapi_notebook.form.twin import close_dead_forms

    form = PromptForm(model=T2I, prompt="A <b>lighthouse</b> at dusk")
    html = form._kept.render_html()
    assert f"%%hiapi {T2I} --aspect_ratio auto" in html and "A &lt;b&gt;lighthouse&lt;/b&gt; at dusk" in html
    assert "jupyter-widgets-disconnected" in html  # the rule that hides a dead form, shows the twin
    form.prompt = "A lighthouse at dawn"
    assert "A lighthouse at dawn" in form._kept.render_html()  # kept current
    form.submit().wait()
    assert (
        form._kept.render_html().count("<img") >= 1 and "generated in this form" in form._kept.render_html()
    )

    # what a saved widget state hands a new kernel: a form's widgets with nothing behind them
    inner = w.Button(description="Generate")
    dead = w.VBox([w.HBox([inner])])
    dead.add_class("hiapi-form")
    assert close_dead_forms() == 1
    assert dead.comm is None and inner.comm is None  # closed, children too
    assert form.widget.comm is not None  # this kernel's own form is left alone
    ip.run_line_magic("reload_ext", "hiapi_notebook")
    hooks = ip.events.callbacks["post_run_cell"]
    assert sum(getattr(h, "__name__", "") == "close_dead_forms_after" for h in hooks) == 1
