"""Media that show where files beside the notebook do not load (VS Code's webview, Colab's
iframe): nothing in the HTML points at a path beside the notebook; pictures are embedded
previews, a video an embedded preview clip (the original when small, else re-encoded small),
else its poster linked to its URL while that lives, saying until when. "Open the original"
says where the file is. JupyterLab keeps its links to the local copies."""

from __future__ import annotations

import base64
import dataclasses
import re
import time

import imageio_ffmpeg
import pytest

import hiapi_notebook as hn
from hiapi_notebook.sandbox import SandboxServer
from hiapi_notebook.session import reset_session
from hiapi_notebook.views import clip as clip_module
from hiapi_notebook.views import frontend
from hiapi_notebook.views.gallery import Gallery
from hiapi_notebook.views.render import card_html, media_bundle

IMAGE = "gpt-image-2/text-to-image"
VIDEO = "seedance-2-0"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as mp, SandboxServer(speed=50, detail="full") as srv:
        mp.chdir(folder)
        mp.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
        reset_session().configure(base_url=srv.url, api_key="sandbox", poll_interval=0.02)
        picture = hn.generate("A red fox in snow", model=IMAGE, resolution="2K", aspect_ratio="16:9")
        clip = hn.generate("A paper boat", model=VIDEO, resolution="720p", duration=4)
        yield {"folder": folder, "picture": picture, "clip": clip}
        reset_session()


def sources(html: str) -> list[str]:
    return re.findall(r'(?:src|href|poster)="([^"]*)"', html)


def assert_no_file_routes(html: str) -> None:
    """Every source is embedded or a live URL: none is a path beside the notebook."""
    for src in sources(html):
        assert src.startswith(("data:", "http://", "https://", "#")), src[:80]


def test_jupyterlab_keeps_its_links_to_the_local_copies(results, monkeypatch):
    monkeypatch.chdir(results["folder"])
    frontend.force("jupyterlab")
    try:
        html = media_bundle(results["clip"].job)[0]["text/html"]
    finally:
        frontend.force(None)
    (video,) = re.findall(r"<video [^>]*>", html)
    assert ' src="hiapi-outputs/' in video  # plays from the copy beside the notebook, as before


def test_a_picture_is_its_preview_and_says_where_the_original_is(results, monkeypatch):
    monkeypatch.chdir(results["folder"])
    frontend.force("vscode")
    try:
        data, _ = media_bundle(results["picture"].job)
    finally:
        frontend.force(None)
    html = data["text/html"]
    assert_no_file_routes(html)
    path = results["picture"].outputs[0].path  # relative to the notebook's folder
    assert not path.is_absolute() and "<code" in html and str(path) in html and "beside the notebook" in html
    assert "open the original" not in html
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', html)) == 1


def test_a_small_video_is_embedded_as_it_is(results, monkeypatch):
    monkeypatch.chdir(results["folder"])
    html = media_bundle(results["clip"].job, files=False)[0]["text/html"]
    assert_no_file_routes(html)
    (video,) = re.findall(r"<video [^>]*>", html)
    src = re.search(r' src="data:video/mp4;base64,([^"]+)"', video)[1]
    assert base64.b64decode(src) == results["clip"].outputs[0].path.read_bytes()
    assert 'poster="data:image/' in video and "beside the notebook" in html


def test_a_big_video_is_re_encoded_small(results, monkeypatch, tmp_path):
    monkeypatch.chdir(results["folder"])
    original = results["clip"].outputs[0].path
    monkeypatch.setattr(clip_module, "CLIP_BYTES", original.stat().st_size - 1)  # "too big"
    html = media_bundle(results["clip"].job, files=False)[0]["text/html"]
    src = re.search(r'<video [^>]* src="data:video/mp4;base64,([^"]+)"', html)[1]
    small = tmp_path / "small.mp4"
    small.write_bytes(base64.b64decode(src))
    reader = imageio_ffmpeg.read_frames(str(small))
    meta = next(reader)
    reader.close()
    assert max(meta["size"]) == clip_module.CLIP_PX and meta["duration"] > 3
    assert small.stat().st_size < original.stat().st_size
    assert "a small preview plays here" in html


def test_without_a_clip_the_poster_links_to_the_url_saying_until_when(results, monkeypatch):
    monkeypatch.chdir(results["folder"])
    monkeypatch.setattr(clip_module, "CLIP_BYTES", 1000)
    monkeypatch.setattr(clip_module, "_ffmpeg", lambda: None)  # imageio-ffmpeg not installed
    job = results["clip"].job
    html = media_bundle(job, files=False)[0]["text/html"]
    assert_no_file_routes(html)
    assert "<video" not in html and '<img src="data:image/' in html
    assert f'href="{job.files[0].url}"' in html
    expire = job.files[0].output.expire_at
    assert expire and time.strftime("%Y-%m-%d %H:%M", time.localtime(expire)) in html
    # once the URL is dead, the poster says where the video is instead
    dead = dataclasses.replace(job.files[0].output, expire_at=int(time.time()) - 10)
    monkeypatch.setattr(job.files[0], "output", dead)
    html = media_bundle(job, files=False)[0]["text/html"]
    assert_no_file_routes(html)
    assert job.files[0].url not in html and "the video: <code" in html


def test_gallery_cards_point_at_no_file(results, monkeypatch):
    monkeypatch.chdir(results["folder"])
    for generation in (results["picture"], results["clip"]):
        assert_no_file_routes(card_html(generation.job, files=False))
    frontend.force("colab")
    try:
        html = Gallery([results["picture"], results["clip"]]).render_html()
    finally:
        frontend.force(None)
    assert_no_file_routes(html)
    assert "data:video/mp4;base64," in html


@pytest.mark.parametrize(
    "front_end, plain",
    [("jupyterlab", False), ("notebook", False), ("vscode", False), ("colab", False), ("headless", True)],
)
def test_a_lone_picture_is_kept_once_where_every_viewer_draws_html(results, monkeypatch, front_end, plain):
    """Issue 22, item 11: the preview goes into the saved notebook once, inside the HTML; a
    headless run (whose notebook may become a PDF or LaTeX report, which draw no HTML) also
    keeps it as a plain image output."""
    monkeypatch.chdir(results["folder"])
    frontend.force(front_end)
    try:
        data, metadata = media_bundle(results["picture"].job)
    finally:
        frontend.force(None)
    (inline,) = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)"', data["text/html"])
    if plain:
        assert data["image/jpeg"] == inline and metadata == {"image/jpeg": {"width": 512}}
    else:
        assert set(data) == {"text/html", "text/plain"} and metadata == {}
