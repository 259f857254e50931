"""Outputs made from inputs have the size HiAPI's would (at the sandbox's full detail, its
default): image-to-image at its resolution's long side and the aspect ratio asked, else the
input's shape; image-to-video at its resolution's short side (720p by default) the same way."""

from __future__ import annotations

import io

import httpx
import imageio_ffmpeg
import pytest
from PIL import Image
from test_sandbox_inputs import I2I, KLING, VIDEO, data_uri, png, run

from hiapi_notebook.sandbox.detail import made_from


@pytest.fixture
def full(sandbox_factory):
    return sandbox_factory(detail="full")


WAIT = 120  # seconds: a big clip is drawn when first asked for, on a busy machine too


def size_of(url: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(httpx.get(url, timeout=WAIT).content)) as im:
        return im.size


def clip_size(url: str, tmp_path) -> tuple[int, int]:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(httpx.get(url, timeout=WAIT).content)
    reader = imageio_ffmpeg.read_frames(str(clip))
    size = tuple(next(reader)["size"])
    reader.close()
    return size


def picture_of(w: int, h: int) -> str:
    image = Image.new("RGB", (w, h), (30, 90, 160))
    image.paste((240, 200, 40), (w // 4, h // 4, w // 2, h // 2))
    return data_uri(png(image))


WIDE = picture_of(1024, 576)


@pytest.mark.parametrize(
    "asked, expected",
    [
        ({}, (1024, 576)),  # 1K and the input's own 16:9
        ({"aspect_ratio": "auto"}, (1024, 576)),
        ({"resolution": "2K"}, (2048, 1152)),
        ({"aspect_ratio": "1:1"}, (1024, 1024)),
        ({"aspect_ratio": "9:16", "resolution": "2K"}, (1152, 2048)),
    ],
)
def test_image_to_image_follows_the_resolution_the_ratio_and_else_the_input(full, asked, expected):
    urls = run(full, I2I, {"prompt": "as a woodcut", "input_urls": [WIDE], **asked})
    assert size_of(urls["image"]) == expected


@pytest.mark.parametrize(
    "model, field, source, asked, expected",
    [
        (VIDEO, "first_frame_url", (1024, 576), {}, (1280, 720)),  # 720p by default, the input's 16:9
        (VIDEO, "first_frame_url", (1024, 576), {"resolution": "480p"}, (854, 480)),
        (VIDEO, "first_frame_url", (640, 480), {"aspect_ratio": "adaptive"}, (960, 720)),
        (VIDEO, "first_frame_url", (1024, 576), {"aspect_ratio": "9:16"}, (720, 1280)),
        (KLING, "image_urls", (900, 600), {"resolution": "1080p"}, (1620, 1080)),  # it follows the source
    ],
)
def test_image_to_video_follows_the_resolution_the_ratio_and_else_the_input(
    full, tmp_path, model, field, source, asked, expected
):
    start = picture_of(*source)
    value = [start] if field == "image_urls" else start
    urls = run(full, model, {"prompt": "it moves", field: value, "duration": 4, **asked})
    assert size_of(urls["first_frame"]) == expected
    assert clip_size(urls["video"], tmp_path) == expected


def test_fast_detail_keeps_small_stand_ins(sandbox):
    urls = run(sandbox, I2I, {"prompt": "as a woodcut", "input_urls": [WIDE]})
    assert size_of(urls["image"]) == (640, 360)


def test_odd_shapes_stay_within_bounds():
    assert made_from({}, (10_000, 10), "image") == (1024, 16)  # a sliver stays a drawable picture
    assert made_from({"resolution": "4K"}, (100, 100), "image") == (3840, 3840)
    assert made_from({"size": "99999x99999"}, (100, 100), "image")[0] <= 6400  # huge: scaled down
    assert made_from({"resolution": "nonsense"}, (1600, 900), "video") == (1280, 720)
