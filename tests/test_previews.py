"""Light notebooks: previews in the notebook, originals beside it; and a sandbox that draws
at the sizes asked for, so that the difference shows.

One sandbox at full detail draws a 4K picture (about 15 MB), a transparent one and a short
clip once for the module; every test then looks at how a view keeps them.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest
from PIL import Image

import hiapi_notebook as hn
from hiapi_notebook.config import Settings
from hiapi_notebook.errors import RequestValidationError
from hiapi_notebook.sandbox import SandboxServer
from hiapi_notebook.sandbox.detail import image_size, video_seconds, video_size
from hiapi_notebook.sandbox.media import draw
from hiapi_notebook.session import reset_session
from hiapi_notebook.views import shown as shown_module
from hiapi_notebook.views.gallery import Gallery
from hiapi_notebook.views.history import HistoryView
from hiapi_notebook.views.preview import box, preview
from hiapi_notebook.views.render import card_html, media_bundle

IMAGE = "gpt-image-2/text-to-image"
VIDEO = "seedance-2-0"


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def data_uris(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'"data:[\w/+.-]+;base64,([A-Za-z0-9+/=]+)"', html)]


# --- the sandbox at full detail ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("input", "size"),
    [
        ({}, (1024, 1024)),  # 1K, and "auto" is square
        ({"resolution": "1K", "aspect_ratio": "16:9"}, (1024, 576)),
        ({"resolution": "2K", "aspect_ratio": "16:9"}, (2048, 1152)),  # HiAPI's 2048x1152
        ({"resolution": "4K", "aspect_ratio": "16:9"}, (3840, 2160)),  # and 3840x2160
        ({"resolution": "4K", "aspect_ratio": "9:16"}, (2160, 3840)),
        ({"resolution": "2K", "aspect_ratio": "21:9"}, (2048, 878)),
        ({"size": "1536x1024"}, (1536, 1024)),  # an explicit size wins
        ({"size": "2688*1536"}, (2688, 1536)),
        ({"aspect_ratio": "1152x2048"}, (1152, 2048)),
        ({"size": "99999x99999"}, (6324, 6324)),  # drawn no bigger than 40 megapixels
    ],
)
def test_image_sizes_follow_resolution_and_aspect_ratio(input, size):
    assert image_size(input) == size


@pytest.mark.parametrize(
    ("input", "size", "seconds"),
    [
        ({}, (1280, 720), 5),
        ({"resolution": "1080p", "duration": 8}, (1920, 1080), 8),
        ({"resolution": "1080p", "aspect_ratio": "9:16"}, (1080, 1920), 5),
        ({"resolution": "480p", "aspect_ratio": "1:1", "duration": "4s"}, (480, 480), 4),
        ({"resolution": "4k", "aspect_ratio": "adaptive", "duration": 30}, (3840, 2160), 30),
        ({"resolution": "720p", "duration": -1}, (1280, 720), 5),  # -1: the model decides
    ],
)
def test_video_sizes_and_durations_follow_the_request(input, size, seconds):
    assert video_size(input) == size and video_seconds(input) == seconds


def test_a_4k_picture_is_as_heavy_as_a_real_one_and_fast_detail_stays_small():
    input = {"prompt": "a red fox", "resolution": "4K", "aspect_ratio": "16:9"}
    full = draw("image", IMAGE, input)["image"]
    assert decoded(full).size == (3840, 2160)
    assert 8 * 2**20 < len(full) < 30 * 2**20  # a flat gradient would be a few hundred KB
    assert draw("image", IMAGE, input) == {"image": full}  # deterministic: a resumed download fits
    fast = draw("image", IMAGE, input, detail="fast")["image"]
    assert decoded(fast).size == (640, 360) and len(fast) < 200_000


def test_a_transparent_background_keeps_its_alpha():
    picture = decoded(draw("image", IMAGE, {"prompt": "a teapot", "background": "transparent"})["image"])
    assert picture.mode == "RGBA" and picture.getchannel("A").getextrema() == (0, 255)


def test_a_clip_has_the_asked_size_duration_and_a_real_bit_rate(tmp_path):
    input = {"prompt": "a paper boat", "resolution": "480p", "aspect_ratio": "9:16", "duration": 3}
    files = draw("video", VIDEO, input)
    (tmp_path / "clip.mp4").write_bytes(files["video"])
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "clip.mp4"))
    meta = next(reader)
    reader.close()
    assert tuple(meta["size"]) == (480, 854) and meta["fps"] == 24
    assert 2.9 < meta["duration"] < 3.1
    # 0.1 bit per pixel per frame: about 370 KB for these 3 s (a flat clip would be a tenth)
    assert 250_000 < len(files["video"]) < 600_000
    assert decoded(files["first_frame"]).size == (480, 854)


def test_detail_is_checked_and_the_cli_can_ask_for_fast_media(monkeypatch):
    with pytest.raises(ValueError, match="detail must be one of full, fast"):
        SandboxServer(detail="huge")
    monkeypatch.delenv("HIAPI_SANDBOX_DETAIL")
    assert SandboxServer().detail == "full"  # what a notebook gets by default
    monkeypatch.setenv("HIAPI_SANDBOX_DETAIL", "fast")
    assert SandboxServer().detail == "fast" and SandboxServer(detail="full").detail == "full"
    monkeypatch.setenv("HIAPI_SANDBOX_DETAIL", "full")
    process = subprocess.Popen(
        [sys.executable, "-m", "hiapi_notebook.sandbox", "--port", "0", "--speed", "50", "--fast-media"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"HiAPI sandbox on (http://\S+/v1) ", process.stdout.readline())[1]
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer cli"}) as client:
            body = {"model": IMAGE, "input": {"prompt": "a fox", "resolution": "4K", "aspect_ratio": "16:9"}}
            task_id = client.post("/tasks", json=body).json()["data"]["taskId"]
            for _ in range(100):
                task = client.get(f"/tasks/{task_id}").json()["data"]
                if task["status"] == "success":
                    break
                time.sleep(0.05)
            picture = decoded(httpx.get(task["output"][0]["url"]).content)
        assert picture.size == (640, 360)  # --fast-media wins over the environment
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- what a notebook keeps --------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A session in a fresh folder (the notebook's) against a full-detail sandbox: a 4K picture,
    a transparent one, and a clip with its first frame, all kept as local copies."""
    folder = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as mp, SandboxServer(speed=50, detail="full") as srv:
        mp.chdir(folder)
        mp.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
        session = reset_session()
        session.configure(base_url=srv.url, api_key="sandbox", poll_interval=0.02)
        big = hn.generate("A red fox in snow", model=IMAGE, resolution="4K", aspect_ratio="16:9")
        clear = hn.generate("A glass teapot", model=IMAGE, background="transparent")
        clip = hn.generate("A paper boat", model=VIDEO, resolution="480p", duration=4)
        yield {"session": session, "folder": folder, "big": big, "clear": clear, "clip": clip, "server": srv}
        reset_session()


def test_an_image_keeps_a_sharp_preview_linked_to_its_original(results):
    big = results["big"]
    original = big.outputs[0].path
    assert decoded(original.read_bytes()).size == (3840, 2160) and original.stat().st_size > 8 * 2**20
    data, metadata = media_bundle(big.job)
    html = data["text/html"]
    # a link that opens the original beside the notebook, around the preview
    (href,) = set(re.findall(r'<a class="hiapi-original" href="([^"]+)"', html))
    assert (results["folder"] / href).resolve() == original.resolve()
    assert 'width="512" height="288"' in html and "3840×2160" in html
    (inline,) = data_uris(html)
    preview = decoded(inline)
    assert preview.format == "JPEG" and preview.size == (1024, 576)  # twice 512 px: sharp on a 2x screen
    # the same preview as a plain image output, for a front end that shows no HTML
    assert base64.b64decode(data["image/jpeg"]) == inline and metadata == {"image/jpeg": {"width": 512}}
    assert sum(map(len, data.values())) < 250_000  # the original alone is 15 MB as base64 would be 20


def test_embed_full_keeps_the_original_and_none_keeps_nothing(results):
    big = results["big"]
    data, metadata = media_bundle(big.job, embed="full")
    assert base64.b64decode(data["image/png"]) == big.outputs[0].path.read_bytes()
    data, _ = media_bundle(big.job, embed="none")
    assert "data:" not in data["text/html"] and "image/jpeg" not in data
    assert re.search(r'<img src="hiapi-outputs/[^"]+/0-image.png" loading="lazy"', data["text/html"])


def test_a_transparent_picture_keeps_a_png_preview(results):
    data, _ = media_bundle(results["clear"].job)
    preview = decoded(base64.b64decode(data["image/png"]))
    assert preview.size == (1024, 1024) and ("transparency" in preview.info or preview.mode == "RGBA")
    assert len(base64.b64decode(data["image/png"])) < 300_000  # 256 colours: not 2 MB


def test_a_clip_keeps_its_poster_and_plays_from_its_local_copy(results):
    clip = results["clip"]
    html = media_bundle(clip.job)[0]["text/html"]
    (video,) = re.findall(r"<video [^>]*>", html)
    src = re.search(r' src="([^"]+)"', video)[1]
    assert (results["folder"] / src).resolve() == clip.outputs[0].path.resolve()
    (poster,) = data_uris(video)
    assert decoded(poster).format == "JPEG" and decoded(poster).size == (854, 480)  # within 1024 px
    full = media_bundle(clip.job, embed="full")[0]["text/html"]
    assert 'src="data:video/mp4;base64,' in full


def test_without_a_local_copy_the_link_is_the_url_and_the_preview_stays(results, monkeypatch):
    big = results["big"]
    file = big.job.files[0]
    monkeypatch.setattr(file, "data", file.path.read_bytes())  # as with the journal off: bytes only
    monkeypatch.setattr(file, "path", None)
    monkeypatch.setattr(file, "sha256", None)
    html = media_bundle(big.job)[0]["text/html"]
    (href,) = set(re.findall(r'<a class="hiapi-original" href="([^"]+)"', html))
    assert href == file.url and href.startswith(results["server"].root_url)
    assert decoded(data_uris(html)[0]).size == (1024, 576)


def test_galleries_grids_and_history_follow_the_session_setting(results):
    session, big, clip = results["session"], results["big"], results["clip"]
    try:
        light = Gallery([big, clip]).render_html()
        thumbs = [decoded(d) for d in data_uris(light)]
        assert thumbs and all(max(t.size) <= 384 for t in thumbs)  # a 192 px card, drawn at twice that
        assert re.search(r'<img src="hiapi-outputs/[^"]+/0-image.png" loading="lazy"', light)
        assert len(light) < 100_000
        session.configure(embed="full")
        assert big.embed == "full"
        heavy = Gallery([big]).render_html()
        assert big.outputs[0].path.read_bytes() in data_uris(heavy)  # self-contained
        records = session.journal.history(10)
        assert big.outputs[0].path.read_bytes() in data_uris(HistoryView(records, embed="full")._repr_html_())
        session.configure(embed="none")
        assert "data:" not in Gallery([big, clip]).render_html()
        assert "data:" not in HistoryView(records, embed="none")._repr_html_()
    finally:
        session.configure(embed="preview")
    listed = HistoryView(session.journal.history(10))._repr_html_()
    # 56 px square crops (object-fit: cover), drawn with their shorter side at twice that
    assert all(min(decoded(d).size) == 112 for d in data_uris(listed)) and len(listed) < 60_000


@pytest.mark.parametrize(
    ("size", "px", "fit", "most"),
    [
        ((3840, 2160), 1024, "contain", (1024, 1024)),  # a cell: within a 512 px square, at 2x
        ((2160, 3840), 384, "width", (384, 1536)),  # a card: its column's width decides
        ((3840, 2160), 112, "cover", (199, 112)),  # a square crop: the shorter side decides
    ],
)
def test_a_preview_has_the_pixels_its_place_needs(size, px, fit, most):
    assert box(size, px, fit) == most


def test_a_tall_card_is_as_sharp_as_a_wide_one():
    tall = Image.new("RGB", (2160, 3840), "teal")
    out = io.BytesIO()
    tall.save(out, format="PNG")
    made = preview(("tall card",), out.getvalue, 384, "width")
    assert (made.width, made.height) == (384, 683)  # 192 px wide in the card: 2x


def test_a_preview_is_made_once_however_often_a_view_is_drawn(results, monkeypatch):
    big = results["big"]
    card_html(big.job)  # made (or already made by an earlier test)
    reads = []
    real = shown_module.read_within
    monkeypatch.setattr(shown_module, "read_within", lambda f, limit: reads.append(limit) or real(f, limit))
    for _ in range(3):
        card_html(big.job)
        media_bundle(big.job)
    assert reads == []  # no original read again: a gallery's updates stay cheap


def test_the_embed_setting_takes_three_words():
    assert Settings().embed == "preview"
    assert Settings().with_changes(embed="None").embed == "none"  # a word here, not "no value"
    with pytest.raises(RequestValidationError, match=r"^embed takes preview, full, none, not 'half'$"):
        Settings().with_changes(embed="half")


def test_a_generated_file_saves_where_it_was_kept(results, tmp_path):
    # The original is still one call away from Python too, whatever the notebook keeps.
    saved = results["big"].outputs[0].save(tmp_path)
    assert Path(saved).read_bytes() == results["big"].outputs[0].path.read_bytes()
    assert httpx.get(results["big"].outputs[0].url).content == Path(saved).read_bytes()
