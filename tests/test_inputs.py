"""Media inputs from the package's side, against the sandbox: every accepted form of value
reaches the server as the right bytes; bad values are one line and nothing is sent; the
journal keys on content and keeps references, never the base64."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import hiapi_notebook as h
from hiapi_notebook import api
from hiapi_notebook.config import Settings
from hiapi_notebook.errors import RequestValidationError
from hiapi_notebook.session import get_session
from hiapi_notebook.views.gallery import Gallery
from hiapi_notebook.views.render import key_settings

T2I = "gpt-image-2/text-to-image"
I2I = "gpt-image-2/image-to-image"
VIDEO = "seedance-2-0"
I2V_ONE = "happyhorse-1.1/image-to-video"  # image_urls: exactly one


def png_bytes(colour=(200, 30, 30), size=(48, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def received(sandbox, field: str) -> list[bytes]:
    """The bytes behind each value of ``field`` in the last create the server got."""
    value = sandbox.last_inputs[-1]["input"][field]
    found = []
    for item in value if isinstance(value, list) else [value]:
        if item.startswith("data:"):
            head, _, payload = item.partition(",")
            assert head.endswith(";base64"), head
            found.append(base64.b64decode(payload))
        else:
            found.append(httpx.get(item).content)
    return found


def posts(sandbox) -> int:
    return sum(1 for method, _ in sandbox.requests if method == "POST")


@pytest.fixture
def fox(session):
    return h.generate("a red fox asleep in snow", model=T2I)


# --- every accepted form -----------------------------------------------------------------------


def test_files_bytes_pil_images_and_numpy_arrays_arrive_as_their_bytes(session, sandbox, tmp_path):
    cat = png_bytes((10, 200, 40))
    (tmp_path / "cat.png").write_bytes(cat)
    dog = png_bytes((40, 40, 220))
    (tmp_path / "dog.png").write_bytes(dog)
    pil = Image.new("RGBA", (20, 10), (1, 2, 3, 128))
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    rgba = np.full((3, 2, 4), 77, dtype=np.uint8)
    data_uri = "data:image/png;base64," + base64.b64encode(png_bytes((9, 9, 9))).decode()
    h.generate(
        "mix them",
        model=I2I,
        input_urls=["cat.png", Path("dog.png"), cat, pil, rgb, rgba, data_uri],
    )
    got = received(sandbox, "input_urls")
    assert got[0] == cat and got[1] == dog and got[2] == cat
    with Image.open(io.BytesIO(got[3])) as im:
        assert im.mode == "RGBA" and im.size == (20, 10) and im.getpixel((0, 0)) == (1, 2, 3, 128)
    with Image.open(io.BytesIO(got[4])) as im:
        assert np.array_equal(np.asarray(im), rgb)
    with Image.open(io.BytesIO(got[5])) as im:
        assert np.array_equal(np.asarray(im), rgba)
    assert sandbox.last_inputs[-1]["input"]["input_urls"][6] == data_uri  # sent as written


def test_a_result_is_sent_as_its_url_on_its_own_server(session, sandbox, fox):
    h.generate("refined", model=I2I, input_urls=fox)  # one value for a list field
    [url] = sandbox.last_inputs[-1]["input"]["input_urls"]
    assert url == fox.outputs[0].url and url.startswith(sandbox.root_url)
    assert received(sandbox, "input_urls") == [fox.outputs[0].path.read_bytes()]
    # one of its outputs, named directly, and a plain URL are sent as written too
    h.generate("refined again", model=I2I, input_urls=[fox.outputs[0], fox.outputs[0].url])
    assert sandbox.last_inputs[-1]["input"]["input_urls"] == [fox.outputs[0].url] * 2


def test_a_video_result_gives_an_image_field_its_first_frame(session, sandbox):
    clip = h.generate("waves at night", model=VIDEO)
    h.generate("a still of it", model=I2I, input_urls=[clip])
    [url] = sandbox.last_inputs[-1]["input"]["input_urls"]
    first = next(o for o in clip.outputs if o.type == "first_frame")
    assert url == first.url and received(sandbox, "input_urls") == [first.path.read_bytes()]


def test_a_result_from_another_server_or_near_expiry_goes_inline(session, sandbox, sandbox_factory, fox):
    kept = fox.outputs[0].path.read_bytes()
    other = sandbox_factory()
    session.configure(base_url=other.url)
    h.generate("elsewhere", model=I2I, input_urls=[fox])
    assert other.last_inputs[-1]["input"]["input_urls"][0].startswith("data:image/png;base64,")
    assert received(other, "input_urls") == [kept]

    short = sandbox_factory(url_ttl=60)  # its URLs die in a minute: too soon to hand them on
    session.configure(base_url=short.url)
    soon = h.generate("short lived", model=T2I)
    h.generate("from it", model=I2I, input_urls=soon)
    assert short.last_inputs[-1]["input"]["input_urls"][0].startswith("data:")
    assert received(short, "input_urls") == [soon.outputs[0].path.read_bytes()]


def test_an_asset_id_is_sent_as_written(session, sandbox):
    h.generate("from an asset", model=VIDEO, first_frame_url="asset://a-1234")
    assert sandbox.last_inputs[-1]["input"]["first_frame_url"] == "asset://a-1234"


def test_pil_and_numpy_are_imported_only_when_such_a_value_is_given(tmp_path):
    (tmp_path / "cat.png").write_bytes(png_bytes())
    script = textwrap.dedent(
        """
        import sys
        from hiapi_notebook import api
        from hiapi_notebook.media import png
        api.build_request("gpt-image-2/image-to-image", "p", input_urls=[
            "cat.png", png(bytes(12), 2, 2, 3), "https://example.com/a.png", "asset://x"])
        print("PIL" in sys.modules, "numpy" in sys.modules)
        import numpy
        api.build_request("gpt-image-2/image-to-image", "p", input_urls=numpy.zeros((2, 2, 3), "uint8"))
        print("PIL" in sys.modules)
        """
    )
    env = {"HIAPI_JOURNAL": "0", "HIAPI_BASE_URL": "http://127.0.0.1:9/v1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]  # a numpy array needs no Pillow either


# --- bad values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, needle",
    [
        (
            {"input_urls": "nope"},
            "input.input_urls: 'nope' is not a URL, a file or a notebook variable (no file 'nope' in ",
        ),
        ({"input_urls": ["cat.png", "notes.txt"]}, "input.input_urls: notes.txt is not a media file"),
        (
            {"first_frame_url": "clip.mp4"},
            "input.first_frame_url: clip.mp4 is a MP4 video; it takes PNG, JPEG, WebP or GIF images",
        ),
        (
            {"reference_audio_urls": ["cat.png"]},
            "input.reference_audio_urls: cat.png is a PNG image; it takes WAV, MP3",
        ),
        ({"input_urls": "big.png"}, "input.input_urls: big.png is 1.5 MB, over the 1 MB limit per input"),
        ({"image_urls": ["cat.png", "cat.png"]}, "input.image_urls: got 2 items; it takes at most 1 item"),
        ({"first_frame_url": ["cat.png", "cat.png"]}, "input.first_frame_url: got a list of 2; it takes one"),
        ({"input_urls": np.zeros((4, 4), "float32")}, "it takes numpy arrays of H×W×3 or H×W×4 uint8"),
        ({"input_urls": 42}, "input.input_urls: a int is not a media value; it takes an http(s) URL"),
        ({"input_urls": "folder"}, "input.input_urls: folder is a folder, not a file"),
    ],
)
def test_bad_values_are_one_line_and_nothing_is_sent(session, sandbox, tmp_path, fields, needle):
    (tmp_path / "cat.png").write_bytes(png_bytes())
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(64))
    (tmp_path / "big.png").write_bytes(png_bytes() + bytes(int(1.5 * 2**20)))
    (tmp_path / "folder").mkdir()
    session.configure(max_input_mb="1")
    model = {
        "image_urls": I2V_ONE,
        "first_frame_url": VIDEO,
        "reference_audio_urls": VIDEO,
    }.get(next(iter(fields)), I2I)
    with pytest.raises(RequestValidationError) as caught:
        h.generate("a prompt", model=model, **fields)
    message = str(caught.value)
    assert needle in message and "\n" not in message and "; it takes " in message
    assert posts(sandbox) == 0 and sandbox.task_count == 0


def test_the_size_limit_is_a_validated_setting(session, monkeypatch):
    for bad in ("0", "-1", "5000", "none", "lots", "nan"):  # megabytes per media input, with its range
        with pytest.raises(RequestValidationError, match="max_input_mb must be a number from 0.001 to 1024"):
            session.configure(max_input_mb=bad)
    assert session.configure(max_input_mb="2.5").max_input_mb == 2.5
    monkeypatch.setenv("HIAPI_MAX_INPUT_MB", "0")
    with pytest.raises(
        RequestValidationError, match="HIAPI_MAX_INPUT_MB must be a number from 0.001 to 1024"
    ):
        Settings.from_env()
    monkeypatch.setenv("HIAPI_MAX_INPUT_MB", "8")
    assert Settings.from_env().max_input_mb == 8


# --- the journal keys on content ---------------------------------------------------------------


def test_the_same_file_is_cached_and_a_changed_file_is_a_new_request(session, sandbox, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes((250, 0, 0)))
    first = h.generate("restyle it", model=I2I, input_urls="photo.png")
    again = h.generate("restyle it", model=I2I, input_urls="photo.png")
    assert again.cached and again.task_id == first.task_id and sandbox.task_count == 1
    (tmp_path / "copy.png").write_bytes(photo.read_bytes())  # the same bytes under another name
    assert h.generate("restyle it", model=I2I, input_urls="copy.png").cached
    photo.write_bytes(png_bytes((0, 0, 250)))  # the file changed: another request
    changed = h.generate("restyle it", model=I2I, input_urls="photo.png")
    assert not changed.cached and changed.task_id != first.task_id and sandbox.task_count == 2
    assert received(sandbox, "input_urls") == [photo.read_bytes()]


def test_the_journal_keeps_a_reference_never_the_base64(session, sandbox, tmp_path):
    noise = np.random.default_rng(7).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    data = (tmp_path / "noise.png").read_bytes()
    assert len(data) > 2 * 2**20
    h.generate("denoise", model=I2I, input_urls="noise.png")
    encoded = base64.b64encode(data)
    folder = tmp_path / ".hiapi"
    journal_bytes = b"".join(p.read_bytes() for p in folder.glob("journal.sqlite3*"))
    assert encoded[1000:1100] not in journal_bytes and b"base64" not in journal_bytes
    assert sum(p.stat().st_size for p in folder.glob("journal.sqlite3*")) < 200_000
    [rec] = get_session().journal.records()
    [ref] = rec.input["input_urls"]
    assert ref["$media"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert ref["source"] == "file noise.png" and ref["name"] == "noise.png" and ref["bytes"] == len(data)
    assert ref["type"] == "image/png" and ref["sent"] == "data"
    thumb = folder / ref["thumb"]
    assert thumb.stat().st_size < 5_000 and max(Image.open(thumb).size) <= 64


def test_export_lists_each_inputs_hash_and_source(session, sandbox, tmp_path, fox):
    (tmp_path / "cat.png").write_bytes(png_bytes())
    h.generate("both", model=I2I, input_urls=["cat.png", fox, "https://example.com/x.png"])
    manifest = json.loads(get_session().journal.export(tmp_path / "out.json").read_text())
    inputs = manifest["results"][-1]["inputs"]
    assert [i["field"] for i in inputs] == ["input_urls[0]", "input_urls[1]", "input_urls[2]"]
    assert inputs[0]["sha256"] == hashlib.sha256(png_bytes()).hexdigest()
    assert inputs[0]["source"] == "file cat.png"
    assert inputs[1]["sha256"] == hashlib.sha256(fox.outputs[0].path.read_bytes()).hexdigest()
    assert inputs[1]["bytes"] == fox.outputs[0].path.stat().st_size and inputs[1]["sent"] == "url"
    assert inputs[1]["source"] == f"result {fox.task_id} (image output 0)"
    assert inputs[2] == {
        "field": "input_urls[2]",
        "sha256": None,
        "source": "https://example.com/x.png",
        "sent": "url",
    }
    assert "base64" not in json.dumps(manifest)


def test_captions_name_media_inputs_not_their_bytes(session, sandbox, tmp_path):
    for name, colour in (("a.png", (255, 0, 0)), ("b.png", (0, 255, 0))):
        (tmp_path / name).write_bytes(png_bytes(colour))
    grid = api.generate_many(h.grid(model=I2I, prompt="p", input_urls=[Path("a.png"), Path("b.png")]))
    assert [g.status for g in grid] == ["success", "success"]
    captions = [key_settings(g.job) for g in grid]
    assert captions == ['input_urls=["a.png"]', 'input_urls=["b.png"]']
    html = Gallery(grid).render_html()
    assert "input_urls=[&quot;a.png&quot;]" in html and "base64,iVBORw0KGgo" not in html.split("<img")[0]
