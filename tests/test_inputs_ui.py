"""Media inputs as a user gives them, in process: words on the magic's line (a notebook
variable first, then a file beside the notebook), and the form's upload, picker of earlier
results, URL box and "use as input" (driven by setting widget values, as a front end's
messages do; tests/test_inputs_kernel.py sends the real comm messages)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json

import pytest
from IPython.core.error import UsageError
from PIL import Image

from hiapi_notebook.errors import RequestValidationError
from hiapi_notebook.form import PromptForm
from hiapi_notebook.grammar import parse_line
from hiapi_notebook.subcommands import help_text

T2I = "gpt-image-2/text-to-image"
I2I = "gpt-image-2/image-to-image"
VIDEO = "seedance-2-0"


def png_bytes(colour, size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def sent(sandbox, field):
    return sandbox.last_inputs[-1]["input"][field]


def open_picker(form, field="input_urls"):
    """Open a media field's picker of earlier results: its cards, newest first."""
    control = form._fields[field]
    control.pick.value = True
    return control, control.picker_view.cards


def inline(value: str) -> bytes:
    head, _, payload = value.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64"), head[:40]
    return base64.b64decode(payload)


def posts(sandbox) -> int:
    return sum(1 for method, _ in sandbox.requests if method == "POST")


IPYTHON_API_KEY = "k"


# --- the magic ---------------------------------------------------------------------------------


def test_magic_words_are_variables_then_files_then_refused(ip, sandbox, tmp_path):
    cat = png_bytes((20, 180, 20))
    (tmp_path / "cat.png").write_bytes(cat)
    ip.run_cell_magic("hiapi", f"{T2I} -o fox", "A red fox asleep in snow")
    fox = ip.user_ns["fox"]

    ip.run_cell_magic("hiapi", f"{I2I} --input_urls fox -o refined", "the fox, as a woodcut")
    assert sent(sandbox, "input_urls") == [fox.outputs[0].url]
    ip.run_cell_magic("hiapi", f"{I2I} --input_urls cat.png", "the cat, as a woodcut")
    assert [inline(v) for v in sent(sandbox, "input_urls")] == [cat]
    ip.run_cell_magic("hiapi", f'{I2I} --input_urls \'["fox", "cat.png"]\'', "both, as a woodcut")
    first, second = sent(sandbox, "input_urls")
    assert first == fox.outputs[0].url and inline(second) == cat

    # a word that is both a variable and a file: the variable
    (tmp_path / "fox").write_bytes(png_bytes((0, 0, 255)))
    ip.run_cell_magic("hiapi", f"{I2I} --input_urls fox", "which fox?")
    assert sent(sandbox, "input_urls") == [fox.outputs[0].url]

    # chain on: the refined picture as a clip's first frame, and a PIL image variable
    ip.run_cell_magic("hiapi", f"{VIDEO} --first_frame_url refined -o clip", "the fox wakes up")
    assert sent(sandbox, "first_frame_url") == ip.user_ns["refined"].outputs[0].url
    ip.user_ns["sketch"] = Image.new("RGB", (16, 8), (250, 200, 0))
    ip.run_cell_magic("hiapi", f"{I2I} --input_urls sketch", "colour it in")
    with Image.open(io.BytesIO(inline(sent(sandbox, "input_urls")[0]))) as im:
        assert im.size == (16, 8) and im.getpixel((3, 3)) == (250, 200, 0)

    count = posts(sandbox)
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("hiapi", f"{I2I} --input_urls kitten.png", "nothing to send")
    message = str(caught.value)
    assert message.startswith("input.input_urls: 'kitten.png' is not a URL, a file or a notebook variable")
    assert "\n" not in message and posts(sandbox) == count

    ip.run_line_magic("hiapi", "export report.json")
    results = json.loads((tmp_path / "report.json").read_text())["results"]
    sources = [i["source"] for r in results for i in r["inputs"]]
    assert f"variable fox: result {fox.task_id} (image output 0)" in sources
    assert "file cat.png" in sources and "variable sketch" in " ".join(sources)
    names = {i["name"] for r in results for i in r["inputs"] if i["source"].startswith("variable fox")}
    assert names == {"fox"}  # captions and history name it as the notebook does


def test_help_says_which_comes_first():
    text = help_text()
    assert "a word that is both a variable and a file means the variable" in " ".join(text.split())
    assert "data: URI" in text and "asset://" in text


# --- the form ----------------------------------------------------------------------------------


def upload(control, name, data):
    """What the front end's FileUpload sends: the chosen files, content as a buffer."""
    control.upload.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.UTC),
        },
    )


def test_form_upload_is_kept_beside_the_notebook_and_sent(ip, sandbox, tmp_path):
    form = PromptForm(model=I2I, prompt="restyle it")
    control = form._fields["input_urls"]
    cat = png_bytes((200, 10, 10))
    upload(control, "my cat.png", cat)
    assert (tmp_path / "hiapi-inputs" / "my_cat.png").read_bytes() == cat
    # the button counts what the field holds from uploads ("upload (1)"), not 0 ...
    assert [f["name"] for f in control.upload.value] == ["my_cat.png"]
    assert all(len(f["content"]) == 0 for f in control.upload.value)  # ... and holds no bytes
    assert len(control.chosen.children) == 1  # a thumbnail with its remove button
    shown = "--aspect_ratio auto --resolution 1K"  # what the other controls show is sent too
    assert form.as_magic() == f"%%hiapi {I2I} --input_urls hiapi-inputs/my_cat.png {shown}\nrestyle it"
    generation = form.submit()
    generation.wait()
    assert [inline(v) for v in sent(sandbox, "input_urls")] == [cat]
    # another file of the same name keeps both
    blue = png_bytes((0, 0, 200))
    upload(control, "my cat.png", blue)
    kept = {p.name for p in (tmp_path / "hiapi-inputs").iterdir()}
    assert kept == {"my_cat.png", f"my_cat-{hashlib.sha256(blue).hexdigest()[:8]}.png"}
    assert len(control.items) == 2
    assert len(control.upload.value) == 2  # "upload (2)"
    # the magic the form wrote reads back as the same request
    args = parse_line(form.as_magic().splitlines()[0].removeprefix("%%hiapi "))
    assert args.fields["input_urls"] == [p.as_posix() for p in control.items]
    control.remove(0)  # a removed upload is no longer counted
    assert [f["name"] for f in control.upload.value] == [control.items[0].name]


def test_form_refuses_a_bad_upload_beside_its_field(ip, sandbox, tmp_path):
    form = PromptForm(model=VIDEO, prompt="a clip")
    control = form._fields["first_frame_url"]
    upload(control, "notes.txt", b"just some text")
    assert "notes.txt is not a media file" in control.error.value and "it takes PNG" in control.error.value
    assert control.items == [] and not (tmp_path / "hiapi-inputs" / "notes.txt").exists()
    form.controls["first_frame_url"].value = "missing.png"
    with pytest.raises(RequestValidationError, match="missing.png' is not a URL, a file or a notebook var"):
        form.submit()
    assert "missing.png" in control.error.value  # shown beside the field, not only below the form
    assert posts(sandbox) == 0


def test_the_picker_offers_a_plain_cells_result_that_no_name_holds(ip, sandbox, tmp_path):
    """Chaining starts from a cell run without -o: its result must still be offered once
    the cell's own views are gone (the session keeps the latest results)."""
    import gc

    ip.run_cell_magic("hiapi", T2I, "A lighthouse at dusk")
    gc.collect()
    form = PromptForm(model=I2I, prompt="the same, in fog")
    ip.user_ns["form"] = form
    control, picked = open_picker(form)
    assert len(picked) == 1
    picked[0].children[1].click()
    (value,) = control.items
    assert value.job.request.input["prompt"] == "A lighthouse at dusk"


def test_after_a_restart_the_picker_offers_the_journals_results(ip, sandbox, tmp_path):
    """A new kernel in the same folder: the results kept beside the notebook are offered
    (newest first, with their local copies), one whose copy was deleted is not, and the
    one picked is sent by its URL while it lives."""
    from hiapi_notebook.session import reset_session

    ip.run_cell_magic("hiapi", T2I, "A harbour at dawn")
    ip.run_cell_magic("hiapi", T2I, "A harbour at noon")
    ip.run_cell_magic("hiapi", T2I, "A harbour at night")
    kept = sorted((tmp_path / "hiapi-outputs").rglob("*.png"), key=lambda p: p.stat().st_mtime)
    assert len(kept) == 3
    kept[1].unlink()  # noon's local copy is gone: not offered
    reset_session()  # the kernel restarts: nothing of the last one is in memory

    form = PromptForm(model=I2I, prompt="the same harbour, in fog")
    ip.user_ns["form"] = form
    control, picked = open_picker(form)
    assert len(picked) == 2
    picked[1].children[1].click()  # the older: dawn
    (dawn,) = control.items
    assert dawn.cached and dawn.job.request.input["prompt"] == "A harbour at dawn"
    form.submit().wait()
    assert sent(sandbox, "input_urls") == [dawn.outputs[0].url]


def test_earlier_results_picker_history_rows_and_use(ip, sandbox, tmp_path):
    ip.run_cell_magic("hiapi", f"{T2I} -o fox", "A red fox asleep in snow")
    fox = ip.user_ns["fox"]
    form = PromptForm(model=T2I, prompt="an owl")
    ip.user_ns["form"] = form
    owl = form.submit()
    owl.wait()
    row = form.rows[0]
    assert row.use_button.layout.display == ""  # shown once the result is there
    row.use_button.click()  # the form's model takes no picture: one line says so
    assert "takes no media" in form.errors["form"]

    form.model_dropdown.value = I2I
    control, picked = open_picker(form)
    assert len(picked) == 2  # the owl (newest first) and the fox, each with a thumbnail
    assert picked[0].children[1].tooltip == owl.task_id
    picked[1].children[1].click()  # "use" the fox
    row.use_button.click()  # and the owl from the form's own history
    assert [getattr(v, "task_id", None) for v in control.items] == [fox.task_id, owl.task_id]
    magic = form.as_magic()
    assert magic.startswith(
        f'%%hiapi {I2I} --input_urls \'["fox", "hiapi-outputs/{owl.task_id}/0-image.png"]\''
    )
    assert form.use(fox, field="input_urls") == "input_urls" and len(control.items) == 3
    with pytest.raises(RequestValidationError, match="prompt is not a media field"):
        form.use(fox, field="prompt")
    refined = form.submit()
    refined.wait()
    assert sent(sandbox, "input_urls") == [fox.outputs[0].url, owl.outputs[0].url, fox.outputs[0].url]

    # a clip's first frame from the refined picture, through the form
    form.model_dropdown.value = VIDEO
    assert form.use(refined) == "first_frame_url"
    form.submit().wait()
    assert sent(sandbox, "first_frame_url") == refined.outputs[0].url
