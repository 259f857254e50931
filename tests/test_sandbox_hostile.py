"""The sandbox under hostile inputs, over real HTTP: a loopback server of the test's own
redirects it elsewhere, trickles bytes, serves bombs. The sandbox fetches only loopback URLs
at every hop, says "cannot fetch" alike for every reason a URL gave no file, gives up on a
URL after its time limit whatever the URL sends meanwhile, refuses a picture declaring too
many pixels from its header, and keeps a reduced copy of a create, not the request (its
memory measured in a child process by ``bench/sandbox_memory.py``)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from test_sandbox_inputs import create, data_uri, halves, picture, png, region, run

from hiapi_notebook.catalog import get_model
from hiapi_notebook.sandbox.inputs import SandboxInputs
from hiapi_notebook.sandbox.kept import stand_in
from hiapi_notebook.sandbox.wire import ApiError

I2I = "gpt-image-2/image-to-image"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from sandbox_memory import declared_bomb  # noqa: E402

RED = png(Image.new("RGB", (64, 64), (230, 20, 20)))
TRICKLE_FOR = 30.0  # the most a trickling answer lasts, whoever stops listening


class Hostile:
    """A loopback server that misbehaves on cue, by path:

    ``/red.png`` a picture; ``/go?to=URL`` a 302 to URL; ``/loop`` a redirect to itself;
    ``/drip-body`` headers, then one body byte every ``drip`` seconds; ``/drip-head`` one
    byte of the status line and headers every ``drip`` seconds; ``/short`` fewer bytes than
    its Content-Length says; a path in ``files`` that file; anything else 404. ``hits``
    counts the requests per path.
    """

    def __init__(self, drip: float = 0.2):
        self.hits: dict[str, int] = {}
        self.files: dict[str, bytes] = {}
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                url = urlsplit(self.path)
                hostile.hits[url.path] = hostile.hits.get(url.path, 0) + 1
                if url.path == "/red.png":
                    self._answer(200, RED)
                elif url.path == "/go":
                    self._answer(302, b"", {"Location": parse_qs(url.query)["to"][0]})
                elif url.path == "/loop":
                    self._answer(302, b"", {"Location": "/loop"})
                elif url.path == "/drip-body":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    self._drip(RED * 2000)
                elif url.path == "/drip-head":
                    self._drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 10000)
                elif url.path == "/short":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + RED)
                    self.close_connection = True
                elif url.path in hostile.files:
                    self._answer(200, hostile.files[url.path])
                else:
                    self._answer(404, b"not here")

            def _answer(self, status, body, headers=None):
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _drip(self, data):
                end = time.monotonic() + TRICKLE_FOR
                for byte in data:
                    if time.monotonic() > end:
                        break
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the sandbox hung up: what it should do
                        break
                    time.sleep(drip)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile():
    server = Hostile()
    yield server
    server.close()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refusal(sandbox, url: str) -> str:
    answer = create(sandbox, I2I, {"prompt": "fetched", "input_urls": [url]})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_REQUEST"
    return answer.json()["message"]


# --- every hop is checked -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://0.0.0.0:{port}/red.png",  # reaches this machine, but is not a loopback address
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://10.0.0.1:{port}/red.png",
        "file:///etc/passwd",
        "ftp://127.0.0.1:{port}/red.png",
        "http://127.0.0.1:99999999/red.png",  # no such port
        "http://[::1/red.png",  # not a URL
    ],
)
def test_a_redirect_off_loopback_is_not_followed(sandbox, hostile, target):
    target = target.format(port=hostile.port)
    message = refusal(sandbox, f"{hostile.url}/go?to={target}")
    assert "input.input_urls[0]: cannot fetch" in message, message
    assert hostile.hits == {"/go": 1}  # asked once; the target was never fetched
    assert sandbox.task_count == 0


def test_a_redirect_on_loopback_is_followed_a_few_times(sandbox, hostile):
    urls = run(sandbox, I2I, {"prompt": "hop", "input_urls": [f"{hostile.url}/go?to=/red.png"]})
    assert region(picture(urls["image"]), 0, 0, 0.2, 0.2)[0] > 150  # drawn from the red picture
    assert "cannot fetch" in refusal(sandbox, f"{hostile.url}/loop")
    assert 2 <= hostile.hits["/loop"] <= 6  # given up after a few hops, not forever


def test_a_refused_port_reads_as_a_404_and_as_a_refused_redirect(sandbox, hostile):
    closed = f"http://127.0.0.1:{free_port()}/a.png"
    told = {
        url: refusal(sandbox, url).replace(url, "URL")
        for url in (
            closed,
            f"{hostile.url}/gone.png",
            f"{hostile.url}/short",
            f"{hostile.url}/go?to=http://0.0.0.0:{hostile.port}/red.png",
            f"{hostile.url}/loop",
        )
    }
    assert len(set(told.values())) == 1, told  # nothing tells one reason from another
    assert hostile.hits["/short"] == 1  # a cut-short file is no file either
    (said,) = set(told.values())
    assert said.startswith("input.input_urls[0]: cannot fetch URL") and "10 s" in said


# --- the whole fetch is bounded in time -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/drip-body", "/drip-head"])
def test_a_trickling_url_is_given_up_at_the_time_limit(hostile, path):
    inputs = SandboxInputs(lambda url: None, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"cannot fetch .* within 1.5 s"):
        inputs.check(get_model(I2I), {"input_urls": [f"{hostile.url}{path}"]})
    took = time.monotonic() - started
    assert took < 4, f"the fetch took {took:.1f} s with a 1.5 s limit"  # a byte every 0.2 s kept it alive


def test_the_sandbox_answers_a_create_with_a_trickling_input_within_its_10_s(sandbox, hostile):
    started = time.monotonic()
    answer = httpx.post(
        f"{sandbox.url}/tasks",
        json={"model": I2I, "input": {"prompt": "slow", "input_urls": [f"{hostile.url}/drip-body"]}},
        headers={"Authorization": "Bearer k"},
        timeout=60,
    )
    took = time.monotonic() - started
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert "cannot fetch" in message and 9 < took < 14, (took, message)  # the README's 10 s


# --- pictures that declare too many pixels ----------------------------------------------------------


def test_a_picture_declaring_12000_by_12000_is_a_400_from_its_header(sandbox, hostile):
    bomb = declared_bomb()
    assert len(bomb) < 64 * 1024  # a few KB that would decode to 432 MB
    hostile.files["/bomb.png"] = bomb
    for value in (data_uri(bomb), f"{hostile.url}/bomb.png"):
        message = refusal(sandbox, value)
        assert "input.input_urls[0] declares 12000x12000 pixels, over the sandbox's 25-megapixel limit" in (
            message
        )
    assert sandbox.task_count == 0


def test_a_big_picture_within_the_limit_still_draws_from_its_reduced_copy(sandbox):
    big = halves("red", "blue", size=(4000, 2000))
    urls = run(sandbox, I2I, {"prompt": "a woodcut", "input_urls": [data_uri(png(big))]})
    out = picture(urls["image"])
    assert out.shape[:2] == (320, 640)  # the input's shape, as from the full picture
    left, right = region(out, 0.02, 0.05, 0.3, 0.3), region(out, 0.7, 0.05, 0.98, 0.3)
    assert left[0] > left[2] + 80 and right[2] > right[0] + 80


# --- what a create leaves behind --------------------------------------------------------------------


def test_a_task_keeps_digests_of_its_data_uris_and_the_same_request_draws_the_same(sandbox):
    sent = data_uri(png(Image.new("RGB", (600, 400), (20, 200, 20))))
    first = run(sandbox, I2I, {"prompt": "kept small", "input_urls": [sent]})
    again = run(sandbox, I2I, {"prompt": "kept small", "input_urls": [sent]})
    assert httpx.get(first["image"]).content == httpx.get(again["image"]).content
    kept = [t["input"]["input_urls"][0] for t in sandbox.tasks()]
    assert kept == [stand_in(sent)] * 2 and len(kept[0]) < 200
    assert sandbox.last_inputs[-1]["input"]["input_urls"] == [sent]  # a small body, as sent


def test_bodies_beyond_a_few_megabytes_are_kept_reduced(sandbox):
    small = {"prompt": "small", "input_urls": [data_uri(RED)]}
    assert create(sandbox, I2I, small).status_code == 200
    for n in range(3):  # 3 MB each of short strings in an unknown field: 9 MB, over the 8 MB kept as sent
        padded = {"prompt": f"padded {n}", "input_urls": [data_uri(RED)], "notes": ["x" * 30_000] * 100}
        answer = create(sandbox, I2I, padded)
        assert answer.status_code == 200, answer.text
    assert len(sandbox.last_inputs) == 4  # one per task, as before
    first, second = (json.dumps(body) for body in sandbox.last_inputs[:2])
    assert "sha256" in first and len(first) < 2000  # its data: URI as a digest
    assert "sha256" in second and len(second) < 2000  # its notes too: one digest in all
    assert len(json.dumps(sandbox.last_inputs[-1])) > 3_000_000  # the newest as sent
    kept = sandbox.tasks()[-1]["input"]
    assert isinstance(kept["notes"], str) and "sha256" in kept["notes"] and len(json.dumps(kept)) < 2000
    not_media = "data:image/png;base64," + "A" * (6 * 2**20)
    assert "is not a media file" in refusal(sandbox, not_media)
    assert len(sandbox.last_inputs) == 4  # a refused create leaves nothing behind


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads a process's memory from /proc")
def test_sixteen_creates_of_25_mb_grow_the_sandbox_by_tens_of_mb_not_hundreds():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sandbox_memory.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["creates"] == 16 and figures["data_uri_mb"] > 24
    assert figures["bomb_status"] == 400
    assert figures["after_bomb_mb"] - figures["start_mb"] < 20  # refused from its header: nothing decoded
    grown = figures["after_creates_mb"] - figures["start_mb"]
    assert grown < 100, figures  # it was 525 MB when every body was kept
    assert figures["peak_mb"] < 400, figures  # one create at a time decodes one picture


def test_a_lone_surrogate_is_a_400_not_a_task_whose_file_never_draws(sandbox):
    def send(prompt_json: str) -> httpx.Response:
        body = '{"model": "gpt-image-2/text-to-image", "input": {"prompt": ' + prompt_json + "}}"
        return httpx.post(
            f"{sandbox.url}/tasks",
            content=body.encode(),
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        )

    answer = send('"a \\ud800 fox"')
    assert answer.status_code == 400 and "lone surrogate" in answer.json()["message"]
    assert sandbox.task_count == 0
    for fine in ('"a \\ud83e\\udd8a fox"', '"the text \\\\ud800 itself"'):  # a pair; an escaped backslash
        answer = send(fine)
        assert answer.status_code == 200, answer.text
    task_id = answer.json()["data"]["taskId"]
    deadline = time.monotonic() + 30
    while (task := httpx.get(f"{sandbox.url}/tasks/{task_id}", headers={"Authorization": "Bearer k"}).json())[
        "data"
    ]["status"] != "success":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert httpx.get(task["data"]["output"][0]["url"]).status_code == 200


def test_big_references_draw_from_their_reduced_copies(sandbox):
    """Over 2 MB each, so each is kept reduced: the picture at 1024 px, the clip as its
    first frame, the sound as its waveform's samples; the strip shows them as before."""
    import wave

    import numpy as np

    magenta = Image.new("RGB", (3000, 2000), (255, 0, 255))
    magenta.putpixel((0, 0), (0, 0, 0))
    big_picture = io.BytesIO()
    magenta.save(big_picture, format="PNG", compress_level=0)  # 18 MB: no compression
    green = run(
        sandbox,
        "seedance-2-0",
        {"prompt": "green", "first_frame_url": data_uri(png(Image.new("RGB", (160, 120), (0, 220, 0))))},
    )
    clip = httpx.get(green["video"]).content + b"\0" * (3 * 2**20)  # past the clip: ignored by players
    tone = io.BytesIO()
    with wave.open(tone, "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(8000)
        wav.writeframes((np.sin(np.arange(8000 * 160) / 5) * 20000).astype("<i2").tobytes())  # 2.5 MB
    assert min(len(big_picture.getvalue()), len(clip), len(tone.getvalue())) > 2 * 2**20
    urls = run(
        sandbox,
        "seedance-2-0",
        {
            "prompt": "a dance with big references",
            "aspect_ratio": "16:9",
            "reference_image_urls": [data_uri(big_picture.getvalue())],
            "reference_video_urls": [data_uri(clip, "video/mp4")],
            "reference_audio_urls": [data_uri(tone.getvalue(), "audio/wav")],
        },
    )
    frame = picture(urls["first_frame"])  # 320×180: tiles 45 px high, 60 wide, from (6, 6)
    tiles = [frame[10:40, 10 + i * 64 : 60 + i * 64].reshape(-1, 3).mean(axis=0) for i in range(3)]
    assert tiles[0][0] > 200 and tiles[0][2] > 200 and tiles[0][1] < 60  # the magenta picture
    assert tiles[1][1] > 170 and tiles[1][0] < 80  # the green clip's first frame
    wave_pixels = frame[10:45, 136:186].reshape(-1, 3)
    assert (np.abs(wave_pixels - [120, 200, 255]).sum(axis=1) < 60).mean() > 0.2  # the waveform


def test_a_big_clips_first_frame_comes_out_of_ffmpeg_no_bigger_than_a_kept_picture(tmp_path):
    import imageio_ffmpeg

    from hiapi_notebook.sandbox import derive

    clip = tmp_path / "big.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi"]
        + ["-i", "testsrc=size=2560x1440:rate=1", "-frames:v", "1", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
        timeout=60,
    )
    frame = derive._first_frame(clip.read_bytes())
    assert frame is not None and frame.size == (1024, 576)  # the clip's shape, at most 1024 px
