"""Hostile inputs: a FIFO, a link to ``/dev/zero``, a 20000×20000 array, a small PNG that
declares 12000×12000 pixels, a PNG cut short. Each is refused in one line before it can
block, fill memory or be sent; what could exhaust the machine if it were not runs in a
child under resource limits (``hostile.run_bounded``), so a regression fails the test."""

from __future__ import annotations

import io
import os

import pytest
from hostile import png_declaring, run_bounded, tiny_png

from hiapi_notebook import errors
from hiapi_notebook.api import build_request

EDIT = "gpt-image-2/image-to-image"
OFFLINE = {"HIAPI_JOURNAL": "0", "HIAPI_BASE_URL": "http://127.0.0.1:9/v1", "HIAPI_API_KEY": "k"}

REFUSE = """
import time
from pathlib import Path
from hiapi_notebook.api import build_request
from hiapi_notebook.errors import HiAPIError
from hiapi_notebook.inputs import resolve_words
said = []
started = time.monotonic()
for value in {values}:
    for given in (value, Path(value)):
        try:
            build_request("gpt-image-2/image-to-image", "p", input_urls=[given])
            said.append(None)
        except HiAPIError as exc:
            said.append(str(exc))
# the magic's way in: a word of the line, resolved beside the notebook
words = resolve_words("gpt-image-2/image-to-image", {{"input_urls": {values}[0]}}, None, Path("."))
try:
    build_request("gpt-image-2/image-to-image", "p", **words)
    said.append(None)
except HiAPIError as exc:
    said.append(str(exc))
report(said=said, seconds=time.monotonic() - started)
"""


def refusals(tmp_path, *names, memory_mb=800):
    code = REFUSE.format(values=repr(list(names)))
    env = {**OFFLINE, "CWD": str(tmp_path)}
    return run_bounded(code, memory_mb=memory_mb, file_mb=50, seconds=60, env=env).result()


def test_a_fifo_is_refused_before_it_is_opened_for_reading(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    os.symlink(tmp_path / "pipe.png", tmp_path / "link-to-pipe.png")
    result = refusals(tmp_path, "pipe.png", "link-to-pipe.png")  # a hang fails: the child has 60 s
    assert all(said and "FIFO" in said and "not a regular file" in said for said in result["said"]), result
    assert all("\n" not in said for said in result["said"]) and result["seconds"] < 10


def test_a_link_to_dev_zero_is_refused_before_a_byte_is_read(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.png")
    result = refusals(tmp_path, "zero.png", "/dev/zero", "/dev/urandom")  # 800 MB of memory at most
    assert all(said and "character device" in said for said in result["said"]), result
    assert result["max_rss_mb"] < 300


def test_a_regular_file_still_goes_inline(tmp_path):
    (tmp_path / "ok.png").write_bytes(tiny_png())
    os.symlink(tmp_path / "ok.png", tmp_path / "link.png")
    result = refusals(tmp_path, "ok.png", "link.png")
    assert result["said"] == [None] * 5


def test_a_huge_numpy_array_is_refused_from_its_shape(tmp_path):
    code = """
    import time
    import numpy as np
    from hiapi_notebook.api import build_request
    from hiapi_notebook.errors import HiAPIError
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20000, 20000, 3))  # no memory of its own
    started = time.monotonic()
    try:
        build_request("gpt-image-2/image-to-image", "p", input_urls=huge)
        said = None
    except HiAPIError as exc:
        said = str(exc)
    small = build_request("gpt-image-2/image-to-image", "p", input_urls=np.zeros((64, 64, 3), np.uint8))
    report(said=said, seconds=time.monotonic() - started, small=small.input["input_urls"][0][:22])
    """
    result = run_bounded(code, memory_mb=1200, seconds=60, env={**OFFLINE, "CWD": str(tmp_path)}).result()
    assert result["said"] and "numpy array" in result["said"] and "MB limit" in result["said"], result
    assert result["seconds"] < 5 and result["max_rss_mb"] < 400, result
    assert result["small"] == "data:image/png;base64,"


PREVIEWS = """
import time
from pathlib import Path
from hiapi_notebook import media
from hiapi_notebook.views.preview import preview
bomb = Path("bomb.png").read_bytes()
started = time.monotonic()
shown = preview("bomb", lambda: bomb, 512)
thumb = media.thumbnail(bomb)
took = time.monotonic() - started
big_jpeg = Path("big.jpg").read_bytes() if Path("big.jpg").exists() else None
jpeg = preview("jpeg", lambda: big_jpeg, 512) if big_jpeg else None
report(shown=shown is not None, thumb=thumb is not None, seconds=took,
       jpeg=None if jpeg is None else [jpeg.width, jpeg.height, list(jpeg.original)])
"""


def test_a_png_declaring_12000_pixels_a_side_is_not_decoded_for_a_preview(tmp_path):
    bomb = png_declaring(12000, 12000)
    assert len(bomb) < 1_000_000  # under 1 MB on the wire, 432 MB once decoded
    (tmp_path / "bomb.png").write_bytes(bomb)
    result = run_bounded(PREVIEWS, memory_mb=1500, seconds=120, env={"CWD": str(tmp_path)}).result()
    assert result["shown"] is False and result["thumb"] is False, result
    assert result["max_rss_mb"] < 250, result  # a full decode is 432 MB


def test_a_jpeg_over_the_pixel_cap_still_previews_through_draft(tmp_path):
    make = """
    from PIL import Image
    Image.new("RGB", (9000, 6000), (200, 80, 40)).save("big.jpg", quality=70)
    report(done=True)
    """
    run_bounded(make, memory_mb=1500, seconds=120, env={"CWD": str(tmp_path)}).result()
    (tmp_path / "bomb.png").write_bytes(tiny_png())
    result = run_bounded(PREVIEWS, memory_mb=1500, seconds=120, env={"CWD": str(tmp_path)}).result()
    assert result["jpeg"] is not None, result  # 54 megapixels stored, decoded at 1/8
    width, height, original = result["jpeg"]
    assert original == [9000, 6000] and max(width, height) <= 1024
    assert result["max_rss_mb"] < 250, result


def test_a_truncated_png_is_refused_before_sending(tmp_path, session):
    from hiapi_notebook.media import image_problem

    whole = tiny_png()
    assert image_problem(whole, "image/png") is None
    for cut, why in (
        (whole[:-12], "truncated PNG"),
        (whole[:20], "damaged PNG"),
        (whole[:40], "truncated PNG"),
    ):
        with pytest.raises(errors.RequestValidationError, match=why) as info:
            build_request(EDIT, "p", input_urls=[cut])
        assert "input.input_urls" in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(errors.RequestValidationError, match="cut.png is a truncated PNG"):
        build_request(EDIT, "p", input_urls=[str(tmp_path / "cut.png")])
    jpeg = io.BytesIO()
    pytest.importorskip("PIL.Image").new("RGB", (8, 8)).save(jpeg, format="JPEG")
    assert image_problem(jpeg.getvalue(), "image/jpeg") is None
    assert "damaged JPEG" in image_problem(jpeg.getvalue()[:4] + b"\x00" * 40, "image/jpeg")
    assert build_request(EDIT, "p", input_urls=[whole]).input["input_urls"][0].startswith("data:image/png")


def test_a_png_bomb_as_an_input_costs_the_client_no_decode(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_declaring(12000, 12000))
    code = """
    import time
    from hiapi_notebook.api import build_request
    started = time.monotonic()
    request = build_request("gpt-image-2/image-to-image", "p", input_urls=["bomb.png"])
    (ref,) = request.recorded_input()["input_urls"]
    took = time.monotonic() - started
    report(sent=request.input["input_urls"][0][:22], thumb=ref.get("thumb"), seconds=took)
    """
    env = {**OFFLINE, "HIAPI_JOURNAL": "1", "HIAPI_HOME": str(tmp_path / ".hiapi"), "CWD": str(tmp_path)}
    result = run_bounded(code, memory_mb=1500, seconds=120, env=env).result()
    assert result["sent"] == "data:image/png;base64,"  # sent: the server judges its size
    assert result["thumb"] is None  # no small picture of it: that would decode 432 MB
    assert result["max_rss_mb"] < 250, result
