"""The sandbox honours media inputs as HiAPI does: URL fields take http(s) URLs (fetched,
within limits: loopback only here) and data: URIs, and anything else is a 400 that names the
field. Outputs visibly derive from the inputs (checked on their pixels): a restyled picture,
a clip that starts on the given first frame and moves, references shown in the frames."""

from __future__ import annotations

import base64
import io
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import hiapi
import httpx
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageOps

from hiapi_notebook.catalog import get_model
from hiapi_notebook.sandbox.inputs import SandboxInputs
from hiapi_notebook.sandbox.wire import ApiError

T2I = "gpt-image-2/text-to-image"
I2I = "gpt-image-2/image-to-image"
VIDEO = "seedance-2-0"
KLING = "kling-3.0-omni/image-to-video"


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def halves(left, right, size=(200, 100)) -> Image.Image:
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def create(server, model, input):
    return httpx.post(
        f"{server.url}/tasks", json={"model": model, "input": input}, headers={"Authorization": "Bearer k"}
    )


def run(server, model, input) -> dict:
    answer = create(server, model, input)
    assert answer.status_code == 200, answer.json()
    task_id = answer.json()["data"]["taskId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = httpx.get(f"{server.url}/tasks/{task_id}", headers={"Authorization": "Bearer k"}).json()[
            "data"
        ]
        if task["status"] in ("success", "fail"):
            assert task["status"] == "success", task
            return {o["type"]: o["url"] for o in task["output"]}
        time.sleep(0.05)
    raise AssertionError("the task did not finish")


def picture(url: str) -> np.ndarray:
    with Image.open(io.BytesIO(httpx.get(url).content)) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def frames(url: str, tmp_path) -> list[np.ndarray]:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(httpx.get(url).content)
    reader = imageio_ffmpeg.read_frames(str(clip))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3).astype(int) for f in reader]


def region(pixels: np.ndarray, x0, y0, x1, y1) -> np.ndarray:
    """The mean colour of a box given in fractions of the picture."""
    h, w = pixels.shape[:2]
    return pixels[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)].reshape(-1, 3).mean(axis=0)


class Files:
    """A loopback HTTP server with files to fetch (and 404 for the rest)."""

    def __init__(self, files: dict[str, bytes]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files():
    made = []

    def make(mapping):
        made.append(Files(mapping))
        return made[-1]

    yield make
    for server in made:
        server.close()


# --- what a URL field takes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, input, needle",
    [
        (I2I, {"input_urls": ["cat.png"]}, "input.input_urls[0] must be a public http(s) URL or a data: URI"),
        (
            VIDEO,
            {"first_frame_url": "/home/me/cat.png"},
            "input.first_frame_url must be a public http(s) URL",
        ),
        (I2I, {"input_urls": ["file:///etc/passwd"]}, "input.input_urls[0] must be a public http(s) URL"),
        (I2I, {"input_urls": ["ftp://example.com/a.png"]}, "input.input_urls[0] must be"),
        (I2I, {"input_urls": ["asset://a-1"]}, "input.input_urls[0] must be a public http(s) URL or a data"),
        (I2I, {"input_urls": ["data:image/png;base64,@@@"]}, "input.input_urls[0] is not a usable data: URI"),
        (I2I, {"input_urls": [data_uri(b"plain text", "text/plain")]}, "input.input_urls[0] is not a media"),
        (
            VIDEO,
            {"first_frame_url": data_uri(b"RIFF\0\0\0\0WAVEfmt ", "audio/wav")},
            "is WAV audio; it takes",
        ),
        (VIDEO, {"reference_audio_urls": [data_uri(png(Image.new("RGB", (4, 4))))]}, "is PNG image"),
    ],
)
def test_anything_but_a_url_or_data_uri_is_a_400_naming_the_field(sandbox, model, input, needle):
    answer = create(sandbox, model, {"prompt": "a prompt", **input})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error_code"] == "INVALID_REQUEST" and body["data"] is None
    assert needle in body["message"], body["message"]
    assert sandbox.task_count == 0


def test_asset_ids_pass_where_the_catalogue_says_so(sandbox):
    urls = run(sandbox, VIDEO, {"prompt": "from an asset", "first_frame_url": "asset://a-1"})
    assert set(urls) == {"video", "first_frame"}


def test_loopback_urls_are_fetched_within_limits(sandbox, files):
    red = png(Image.new("RGB", (64, 64), (230, 20, 20)))
    server = files({"/red.png": red, "/notes.txt": b"hello"})
    urls = run(sandbox, I2I, {"prompt": "fetched", "input_urls": [f"{server.url}/red.png"]})
    assert region(picture(urls["image"]), 0, 0, 0.2, 0.2)[0] > 150  # it is drawn from the red picture
    for path, needle in (("/gone.png", "cannot fetch"), ("/notes.txt", "is not a media file")):
        answer = create(sandbox, I2I, {"prompt": "fetched", "input_urls": [f"{server.url}{path}"]})
        assert answer.status_code == 400 and needle in answer.json()["message"]
        assert "input.input_urls[0]" in answer.json()["message"]
    small = SandboxInputs(lambda url: None, max_bytes=100)  # red.png is bigger
    with pytest.raises(ApiError, match=r"input_urls\[0\]: cannot fetch .* over the 100-byte limit"):
        small.check(get_model(I2I), {"input_urls": [f"{server.url}/red.png"]})
    with pytest.raises(ApiError, match=r"input.input_urls\[0\] is \d+ bytes, over the 100-byte limit"):
        small.check(get_model(I2I), {"input_urls": [data_uri(red)]})


def test_other_hosts_are_not_fetched_offline(sandbox, monkeypatch):
    fetched = []
    monkeypatch.setattr(SandboxInputs, "_fetch", lambda self, url: fetched.append(url) or b"")
    urls = run(sandbox, I2I, {"prompt": "offline", "input_urls": ["https://example.invalid/cat.png"]})
    assert fetched == [] and "image" in urls  # drawn with a labelled stand-in


# --- outputs derive from inputs -------------------------------------------------------------------


def test_image_to_image_restyles_the_input(sandbox):
    red_blue = run(
        sandbox, I2I, {"prompt": "a woodcut", "input_urls": [data_uri(png(halves("red", "blue")))]}
    )
    blue_red = run(
        sandbox, I2I, {"prompt": "a woodcut", "input_urls": [data_uri(png(halves("blue", "red")))]}
    )
    plain = run(sandbox, T2I, {"prompt": "a woodcut"})
    one, two = picture(red_blue["image"]), picture(blue_red["image"])
    assert one.shape[:2] == (320, 640)  # the input's shape (2:1), no aspect_ratio asked
    left, right = region(one, 0.02, 0.05, 0.3, 0.3), region(one, 0.7, 0.05, 0.98, 0.3)
    assert left[0] > left[2] + 80 and right[2] > right[0] + 80  # red on the left, blue on the right
    left, right = region(two, 0.02, 0.05, 0.3, 0.3), region(two, 0.7, 0.05, 0.98, 0.3)
    assert left[2] > left[0] + 80 and right[0] > right[2] + 80  # and swapped with the input
    restyled = np.asarray(ImageOps.fit(halves("red", "blue"), (640, 320))).astype(int)
    assert 5 < np.abs(one - restyled).mean() < 120  # recognisably the input, not a copy of it
    assert picture(plain["image"]).shape != one.shape or np.abs(picture(plain["image"]) - one).mean() > 20
    centre = region(one, 0.4, 0.45, 0.6, 0.55)  # the prompt's box darkens the middle
    assert centre.sum() < region(one, 0.02, 0.45, 0.2, 0.55).sum() - 60


def test_image_to_video_starts_on_the_given_frame_and_moves(sandbox, tmp_path):
    start = Image.new("RGB", (240, 160), (20, 160, 60))
    start.paste((250, 220, 0), (40, 25, 90, 60))  # a yellow patch to zoom into, clear of the prompt
    urls = run(sandbox, VIDEO, {"prompt": "the square grows", "first_frame_url": data_uri(png(start))})
    first = picture(urls["first_frame"])
    assert first.shape[:2] == (214, 320)  # the input's shape (3:2)
    expected = np.asarray(ImageOps.fit(start, (320, 214))).astype(int)
    assert np.array_equal(first, expected)  # exactly the picture given
    clip = frames(urls["video"], tmp_path)
    assert len(clip) == 5 * 12 and clip[0].shape == first.shape  # the model's default 5 s, at 12 fps
    assert np.abs(clip[0] - expected).mean() < 6  # H.264 keeps the first frame close
    assert np.abs(clip[-1] - clip[0]).mean() > 8  # and then it moves: it zooms into the picture,

    def yellow(frame):
        return ((frame[..., 0] > 200) & (frame[..., 1] > 180) & (frame[..., 2] < 90)).mean()

    assert yellow(clip[-1]) > 1.4 * yellow(clip[0]) > 0  # so the yellow patch grows


def test_a_last_frame_is_crossfaded_to(sandbox, tmp_path):
    first, last = Image.new("RGB", (160, 90), (255, 0, 0)), Image.new("RGB", (160, 90), (0, 0, 255))
    urls = run(
        sandbox, KLING, {"prompt": "red to blue", "image_urls": [data_uri(png(first)), data_uri(png(last))]}
    )
    clip = frames(urls["video"], tmp_path)
    corner = region(clip[-1], 0.05, 0.1, 0.2, 0.3)
    assert corner[2] > 200 and corner[0] < 60  # it ends on the last frame


def test_references_show_in_the_frames(sandbox, tmp_path):
    green = Image.new("RGB", (160, 120), (0, 220, 0))
    clip = run(sandbox, VIDEO, {"prompt": "green", "first_frame_url": data_uri(png(green))})
    tone = io.BytesIO()
    import wave

    with wave.open(tone, "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(8000)
        wav.writeframes((np.sin(np.arange(8000) / 5) * 20000).astype("<i2").tobytes())
    urls = run(
        sandbox,
        VIDEO,
        {
            "prompt": "a dance with references",
            "aspect_ratio": "16:9",
            "reference_image_urls": [data_uri(png(Image.new("RGB", (50, 50), (255, 0, 255))))],
            "reference_video_urls": [clip["video"]],  # a loopback URL: another task's output
            "reference_audio_urls": [data_uri(tone.getvalue(), "audio/wav")],
        },
    )
    frame = picture(urls["first_frame"])  # 320×180: tiles 45 px high, 60 wide, from (6, 6)
    tiles = [frame[10:40, 10 + i * 64 : 60 + i * 64].reshape(-1, 3).mean(axis=0) for i in range(3)]
    assert tiles[0][0] > 200 and tiles[0][2] > 200 and tiles[0][1] < 60  # the magenta picture
    assert tiles[1][1] > 170 and tiles[1][0] < 80  # the green clip's first frame
    wave_pixels = frame[10:45, 136:186].reshape(-1, 3)
    assert (np.abs(wave_pixels - [120, 200, 255]).sum(axis=1) < 60).mean() > 0.2  # the waveform


def test_hiapis_own_sdk_sends_a_data_uri_and_gets_a_derived_picture(sandbox):
    client = hiapi.HiAPI(api_key="sdk-test-key", base_url=sandbox.url)
    task = client.tasks.run(
        model=I2I,
        input={"prompt": "a woodcut", "input_urls": [data_uri(png(halves("red", "blue")))]},
        poll_interval=0.02,
        timeout=10,
    )
    assert task.succeeded
    left = region(picture(task.output[0].url), 0.02, 0.05, 0.3, 0.3)
    assert left[0] > left[2] + 80
    with pytest.raises(hiapi.HiAPIError) as caught:
        client.tasks.create(model=I2I, input={"prompt": "a woodcut", "input_urls": ["cat.png"]})
    assert "input.input_urls[0]" in str(caught.value)
