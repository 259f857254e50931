"""The sandbox over real HTTP on loopback: contract, errors, media, faults, callbacks, CLI."""

import hashlib
import hmac
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest
from PIL import Image

from hiapi_notebook.sandbox import Faults, media
from hiapi_notebook.sandbox import server as server_module

TASK_ID = re.compile(r"^tk-hiapi-[0-9A-HJKMNP-TV-Z]{26}$")
IMAGE = "gpt-image-2/text-to-image"
TERMINAL = ("success", "fail")


def api(server, key="test-key"):
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def create(client, model=IMAGE, input=None, **extra):
    body = {"model": model, "input": input or {"prompt": "a lighthouse at dusk"}, **extra}
    return client.post("/tasks", json=body)


def wait(client, task_id, timeout=10.0):
    """Poll until terminal; returns the task and the statuses seen, in order, without repeats."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/tasks/{task_id}").json()["data"]
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in TERMINAL:
            return task, seen
        time.sleep(0.01)
    raise AssertionError(f"task still {seen[-1]} after {timeout} s")


def run(client, **kwargs):
    response = create(client, **kwargs)
    assert response.status_code == 200, response.text
    return wait(client, response.json()["data"]["taskId"])[0]


def assert_error(response, status, error_code=None, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["data"] is None
    assert body["error_code"] == error_code
    for word in words:
        assert word in body["message"], body["message"]
    return body["message"]


# -- the contract -----------------------------------------------------------------------------


def test_create_answers_the_envelope_and_a_ulid_task_id(sandbox_factory):
    sandbox = sandbox_factory(speed=1)  # still queued when asked right away
    with api(sandbox) as client:
        response = create(client)
        assert response.status_code == 200
        assert response.headers["x-hiapi-sandbox"] == "1"
        body = response.json()
        assert body["code"] == 200 and body["message"] == "success"
        task_id = body["data"]["taskId"]
        assert TASK_ID.match(task_id) and len(task_id) == 35
        task = client.get(f"/tasks/{task_id}").json()["data"]
    assert task["taskId"] == task_id and task["model"] == IMAGE
    assert task["status"] == "queued" and task["completed"] == 0 and task["storage"] == "temp"
    assert abs(task["created"] - time.time()) < 5
    assert "output" not in task and "error" not in task and "route" not in task
    assert sandbox.task_count == 1
    assert sandbox.last_inputs == [{"model": IMAGE, "input": {"prompt": "a lighthouse at dusk"}}]
    assert sandbox.requests == [("POST", "/v1/tasks"), ("GET", f"/v1/tasks/{task_id}")]


def test_an_image_task_goes_through_every_status_to_a_png(sandbox_factory):
    server = sandbox_factory(speed=5)  # 0.2 s queued, 0.8 s handling, 0.2 s archiving
    with api(server) as client:
        task_id = create(client).json()["data"]["taskId"]
        task, seen = wait(client, task_id)
    assert seen == ["queued", "handling", "archiving", "success"]
    assert task["completed"] >= task["created"] > 0
    [output] = task["output"]
    assert output["type"] == "image"
    assert output["url"] == f"{server.root_url}/files/{task_id}/0.png"
    assert output["expireAt"] - task["created"] == pytest.approx(7 * 24 * 3600, abs=2)
    image = httpx.get(output["url"])
    assert image.headers["content-type"] == "image/png"
    assert int(image.headers["content-length"]) == len(image.content) < 200_000
    assert Image.open(io.BytesIO(image.content)).size == (512, 512)


def test_same_request_same_image_other_prompt_other_image(sandbox):
    def png(client, prompt, aspect_ratio="auto"):
        task = run(client, input={"prompt": prompt, "aspect_ratio": aspect_ratio})
        return httpx.get(task["output"][0]["url"]).content

    with api(sandbox) as client:
        first = png(client, "a red fox in the snow")
        again = png(client, "a red fox in the snow")
        other = png(client, "a blue whale in the deep")
        wide = png(client, "a red fox in the snow", "16:9")
    assert first == again
    assert first != other
    assert Image.open(io.BytesIO(other)).size == (512, 512)
    assert Image.open(io.BytesIO(wide)).size == (640, 360)


def test_a_video_task_serves_an_h264_mp4_and_a_first_frame(sandbox, tmp_path):
    with api(sandbox) as client:
        task = run(client, model="seedance-2-0", input={"prompt": "a cyan glass data center"})
    video, first = task["output"]
    assert (video["type"], first["type"]) == ("video", "first_frame")
    assert video["url"].endswith("/0.mp4") and first["url"].endswith("/1.png")
    clip = httpx.get(video["url"])
    assert clip.headers["content-type"] == "video/mp4"
    (tmp_path / "clip.mp4").write_bytes(clip.content)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "clip.mp4")],
        capture_output=True,
        text=True,
    )
    assert "Video: h264" in probe.stderr and "yuv420p" in probe.stderr
    duration = re.search(r"Duration: 00:00:(\d+\.\d+)", probe.stderr)
    assert 4.5 < float(duration[1]) < 5.5  # no duration sent: the model's default (5 s), as HiAPI's does
    frame = Image.open(io.BytesIO(httpx.get(first["url"]).content))
    assert frame.size == (320, 180)
    part = httpx.get(video["url"], headers={"Range": "bytes=0-99"})  # how browsers fetch video
    assert part.status_code == 206 and part.content == clip.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(clip.content)}"


def test_a_video_lasts_the_duration_asked_for(sandbox, tmp_path):
    with api(sandbox) as client:
        task = run(client, model="seedance-2-0", input={"prompt": "a slow pan", "duration": 7})
    (tmp_path / "clip.mp4").write_bytes(httpx.get(task["output"][0]["url"]).content)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "clip.mp4")],
        capture_output=True,
        text=True,
    )
    duration = re.search(r"Duration: 00:00:(\d+\.\d+)", probe.stderr)
    assert 6.5 < float(duration[1]) < 7.5


def test_an_audio_task_serves_a_wav(sandbox):
    with api(sandbox) as client:
        task = run(client, model="minimax-music-2.6", input={"prompt": "calm piano"})
    [audio] = task["output"]
    sound = httpx.get(audio["url"])
    assert audio["type"] == "audio" and sound.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(sound.content)) as wav:
        assert wav.getnframes() > 0


def test_a_prompt_with_fail_tag_fails(sandbox):
    with api(sandbox) as client:
        task = run(client, input={"prompt": "please #fail"})
    assert task["status"] == "fail" and task["completed"] >= task["created"]
    assert task["error"] == {
        "code": "TASK_FAILED",
        "message": "upstream rejected the prompt (sandbox: the prompt asked to fail)",
    }
    assert "output" not in task


def test_rate_fail_fails_tasks(sandbox_factory):
    with api(sandbox_factory(faults=Faults(rate_fail=1.0))) as client:
        task = run(client)
    assert task["status"] == "fail" and task["error"]["code"] == "TASK_FAILED"


def test_route_and_storage_are_echoed(sandbox):
    with api(sandbox) as client:
        routed = run(client, route="ext", storage="persistent")
        suffixed = run(client, model=f"{IMAGE}@beta")
        default = run(client, route="default")
    assert (routed["model"], routed["route"], routed["storage"]) == (f"{IMAGE}@ext", "ext", "persistent")
    assert suffixed["model"] == f"{IMAGE}@beta" and "route" not in suffixed
    assert (default["model"], default["route"]) == (IMAGE, "default")


def test_list_pages_newest_first(sandbox):
    with api(sandbox) as client:
        ids = [create(client, input={"prompt": f"p{i}"}).json()["data"]["taskId"] for i in range(5)]
        first = client.get("/tasks", params={"page": 1, "size": 2}).json()["data"]
        last = client.get("/tasks", params={"page": 3, "size": 2}).json()["data"]
        default = client.get("/tasks").json()["data"]
        clamped = [
            client.get("/tasks", params={"size": size}).json()["data"]["size"] for size in (0, 101, "x")
        ]
    assert (first["page"], first["size"], first["total"]) == (1, 2, 5)
    assert [t["taskId"] for t in first["tasks"]] == ids[::-1][:2]
    assert [t["taskId"] for t in last["tasks"]] == ids[:1]
    assert default["size"] == 10 and len(default["tasks"]) == 5
    assert clamped == [10, 10, 10]


def test_output_urls_expire_after_url_ttl(sandbox_factory):
    server = sandbox_factory(url_ttl=1)
    with api(server) as client:
        task = run(client)
    output = task["output"][0]
    assert output["expireAt"] - task["created"] <= 2
    assert httpx.get(output["url"]).status_code == 200
    time.sleep(max(0.0, output["expireAt"] - time.time()) + 0.05)
    assert_error(httpx.get(output["url"]), 410, None, "expired")


def test_files_and_public_url(sandbox_factory):
    server = sandbox_factory(public_url="https://cdn.example.test/")
    with api(server) as client:
        task = run(client)
        assert task["output"][0]["url"].startswith("https://cdn.example.test/files/tk-hiapi-")
        assert httpx.get(f"{server.root_url}/files/{task['taskId']}/0.png").status_code == 200
        assert httpx.get(f"{server.root_url}/files/{task['taskId']}/5.png").status_code == 404
        assert httpx.head(f"{server.root_url}/files/{task['taskId']}/0.png").status_code == 200
        assert_error(client.get("/nowhere"), 404)
        assert_error(client.delete("/tasks"), 405)


def test_many_clients_at_once(sandbox):
    def submit(n):
        with api(sandbox, key=f"key-{n % 4}") as client:
            return create(client, input={"prompt": f"p{n}"}).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        assert set(pool.map(submit, range(80))) == {200}
    assert sandbox.task_count == 80


def test_stop_hangs_up_and_start_again_keeps_the_tasks(sandbox):
    with api(sandbox) as client:
        task_id = create(client).json()["data"]["taskId"]
        sandbox.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"/tasks/{task_id}")
        sandbox.start()
        assert client.get(f"/tasks/{task_id}").json()["data"]["taskId"] == task_id


# -- what a plain install can draw --------------------------------------------------------------
# A plain `pip install hiapi-notebook` has Pillow but not imageio-ffmpeg (the `sandbox` extra);
# tests/test_package.py runs that install for real. Here a module is made unimportable in this
# process the way Python itself spells it: None in sys.modules.


def without(monkeypatch, *prefixes):
    """Make every module under these names fail to import for the rest of the test."""
    for prefix in prefixes:
        for name in [prefix, *(m for m in list(sys.modules) if m.startswith(prefix + "."))]:
            monkeypatch.setitem(sys.modules, name, None)


def sample_files():
    folder = Path(media.__file__).with_name("sample")
    return (folder / "clip.mp4").read_bytes(), (folder / "first_frame.png").read_bytes()


def test_the_shipped_sample_clip_is_a_real_h264_mp4(tmp_path):
    clip, first_frame = sample_files()
    assert clip[4:8] == b"ftyp" and len(clip) < 100_000
    (tmp_path / "clip.mp4").write_bytes(clip)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "clip.mp4")],
        capture_output=True,
        text=True,
    )
    assert "Video: h264" in probe.stderr and "yuv420p" in probe.stderr
    assert Image.open(io.BytesIO(first_frame)).size == media.SAMPLE_SIZE


def test_without_imageio_ffmpeg_videos_are_the_sample_clip_and_a_note_says_why(
    monkeypatch, sandbox_factory, capsys
):
    without(monkeypatch, "imageio_ffmpeg")
    monkeypatch.setattr(server_module, "_said", set())
    server = sandbox_factory()
    note = capsys.readouterr().out
    assert note.count("\n") == 1 and "pip install 'hiapi-notebook[sandbox]'" in note
    assert "imageio-ffmpeg" in note and "sample clip" in note
    sandbox_factory()  # a second sandbox in the same process does not say it again
    assert capsys.readouterr().out == ""
    with api(server) as client:
        video = run(client, model="seedance-2-0", input={"prompt": "a paper boat", "duration": 5})
        image = run(client, input={"prompt": "a red fox"})
    clip, first_frame = sample_files()
    served = httpx.get(video["output"][0]["url"])
    assert video["status"] == "success" and served.headers["content-type"] == "video/mp4"
    assert served.content == clip
    assert httpx.get(video["output"][1]["url"]).content == first_frame
    picture = httpx.get(image["output"][0]["url"])  # pictures still show the prompt: Pillow is there
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).size == (512, 512)


def test_with_everything_installed_the_sandbox_says_nothing(monkeypatch, sandbox_factory, capsys):
    monkeypatch.setattr(server_module, "_said", set())
    sandbox_factory()
    assert capsys.readouterr().out == ""
    assert media.extra_note() is None


def test_an_ffmpeg_that_fails_gives_the_sample_clip_not_a_500(monkeypatch, sandbox):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", shutil.which("false"))
    with api(sandbox) as client:
        video = run(client, model="seedance-2-0", input={"prompt": "a paper boat"})
    served = httpx.get(video["output"][0]["url"])
    assert served.status_code == 200 and served.content == sample_files()[0]


def test_without_pillow_image_tasks_are_refused_with_the_fix(monkeypatch, sandbox):
    without(monkeypatch, "PIL")
    with api(sandbox) as client:
        refused = create(client, input={"prompt": "a red fox"})
        video = run(client, model="seedance-2-0", input={"prompt": "a paper boat"})
        audio = run(client, model="minimax-music-2.6", input={"prompt": "calm piano"})
    assert_error(refused, 503, "MODEL_UNAVAILABLE", "Pillow", "pip install pillow")
    assert sandbox.task_count == 2  # nothing was made for the refused create
    assert httpx.get(video["output"][0]["url"]).content == sample_files()[0]
    assert httpx.get(audio["output"][0]["url"]).headers["content-type"] == "audio/wav"


# -- errors -----------------------------------------------------------------------------------


def test_400_for_bad_requests(sandbox):
    with api(sandbox) as client:
        assert_error(
            create(client, model="gpt-imag-2"),
            400,
            "INVALID_REQUEST",
            "unknown model 'gpt-imag-2'",
            "did you mean 'gpt-image-2'?",
        )
        assert_error(
            create(client, input={"prompt": "x", "aspect_ratio": "7:3"}),
            400,
            "INVALID_REQUEST",
            "invalid input.aspect_ratio '7:3': allowed values are auto, 1:1, 3:2",
        )
        assert_error(
            create(client, input={"aspect_ratio": "1:1"}), 400, "INVALID_REQUEST", "input.prompt is required"
        )
        assert_error(
            create(client, input={"prompt": "x", "callback_url": "https://x.test"}),
            400,
            "INVALID_REQUEST",
            "input.callback_url is not allowed",
        )
        assert_error(
            create(client, model="seedance-2-0", input={"prompt": "a cat", "duration": 99}),
            400,
            "INVALID_REQUEST",
            "input.duration 99 is out of range: allowed 4 to 15",
        )
        assert_error(
            create(client, route="pro"),
            400,
            "INVALID_REQUEST",
            "unknown route 'pro'",
            "available routes are default, beta, ext",
        )
        assert_error(
            create(client, model="seedance-2-0", route="fast"),
            400,
            "INVALID_REQUEST",
            "available routes are default",
        )
        assert_error(create(client, callback={"url": "ftp://x.test/hook"}), 400, "INVALID_REQUEST", "http(s)")
        assert_error(
            create(client, callback={"url": "https://x.test/hook", "when": "always"}),
            400,
            "INVALID_REQUEST",
            "callback.when",
        )
        assert_error(create(client, storage="forever"), 400, "INVALID_REQUEST", "storage")
        assert_error(
            client.post("/tasks", json={"input": {"prompt": "x"}}),
            400,
            "INVALID_REQUEST",
            "model is required",
        )
        assert_error(client.post("/tasks", content=b"{not json"), 400, "INVALID_REQUEST", "JSON")
        assert_error(
            client.post("/tasks", json={"model": IMAGE}), 400, "INVALID_REQUEST", "input is required"
        )
        assert_error(
            client.post(
                "/tasks",
                json={"model": IMAGE, "input": {"prompt": "x"}},
                headers={"Idempotency-Key": "k" * 256},
            ),
            400,
            "INVALID_REQUEST",
            "255 bytes",
        )
    assert sandbox.task_count == 0


def test_401_without_a_key_or_with_the_wrong_one(sandbox_factory):
    open_server = sandbox_factory()
    assert_error(httpx.get(f"{open_server.url}/tasks"), 401, None, "Authorization: Bearer")
    assert_error(httpx.get(f"{open_server.url}/tasks", headers={"Authorization": "Bearer"}), 401)
    assert_error(httpx.get(f"{open_server.url}/tasks", headers={"Authorization": "Basic abc"}), 401)
    locked = sandbox_factory(key="the-key")
    with api(locked, key="another-key") as client:
        assert_error(client.get("/tasks"), 401, None, "invalid API key")
    with api(locked, key="the-key") as client:
        assert client.get("/tasks").status_code == 200


def test_402_once_the_balance_is_spent(sandbox_factory):
    server = sandbox_factory(balance=0.12)
    flare = "gpt-image-2.5-flare/text-to-image"  # $0.05 an image at 1K
    with api(server) as client:
        assert create(client, model=flare).status_code == 200
        assert create(client, model=flare).status_code == 200
        assert_error(create(client, model=flare), 402, None, "insufficient balance", "top up")
    assert server.task_count == 2
    assert server.balance == pytest.approx(0.02)


def test_403_for_a_suspended_account(sandbox):
    with api(sandbox, key="suspended-account") as client:
        assert_error(create(client), 403, None, "suspended")


def test_404_for_unknown_tasks_and_other_accounts(sandbox):
    with api(sandbox, key="alice") as alice, api(sandbox, key="bob") as bob:
        task_id = create(alice).json()["data"]["taskId"]
        assert alice.get(f"/tasks/{task_id}").status_code == 200
        assert_error(bob.get(f"/tasks/{task_id}"), 404, None, "task not found")
        assert_error(alice.get("/tasks/tk-hiapi-00000000000000000000000000"), 404)
        assert bob.get("/tasks").json()["data"]["total"] == 0


def test_idempotent_replay_returns_the_first_task(sandbox):
    with api(sandbox) as client:
        first = client.post(
            "/tasks", json={"model": IMAGE, "input": {"prompt": "x"}}, headers={"Idempotency-Key": "order-1"}
        )
        again = client.post(
            "/tasks",
            content=json.dumps(  # same body, other key order
                {"input": {"prompt": "x"}, "model": IMAGE}
            ),
            headers={"Idempotency-Key": "order-1"},
        )
        assert "idempotent-replay" not in first.headers
        assert again.headers["idempotent-replay"] == "true"
        assert again.json()["data"]["taskId"] == first.json()["data"]["taskId"]
        assert_error(
            client.post(
                "/tasks",
                json={"model": IMAGE, "input": {"prompt": "y"}},
                headers={"Idempotency-Key": "order-1"},
            ),
            422,
            "IDEMPOTENCY_KEY_MISMATCH",
        )
    with api(sandbox, key="other-account") as other:  # keys are per account
        fresh = other.post(
            "/tasks", json={"model": IMAGE, "input": {"prompt": "x"}}, headers={"Idempotency-Key": "order-1"}
        )
        assert fresh.json()["data"]["taskId"] != first.json()["data"]["taskId"]
    assert sandbox.task_count == 2


def test_409_while_the_first_request_with_the_key_is_in_flight(sandbox):
    sandbox.inject("slow:0.5", method="POST")
    body = {"model": IMAGE, "input": {"prompt": "x"}}
    headers = {"Idempotency-Key": "slow-1"}
    answers = {}
    with api(sandbox) as client:
        first = threading.Thread(
            target=lambda: answers.update(first=client.post("/tasks", json=body, headers=headers))
        )
        first.start()
        while not sandbox.requests:  # the first request has arrived and is being slowed
            time.sleep(0.01)
        time.sleep(0.05)
        second = client.post("/tasks", json=body, headers=headers)
        first.join()
        third = client.post("/tasks", json=body, headers=headers)
    assert_error(second, 409, "IDEMPOTENCY_KEY_PROCESSING")
    assert second.headers["retry-after"] == "1"
    assert answers["first"].status_code == 200
    assert third.json()["data"]["taskId"] == answers["first"].json()["data"]["taskId"]
    assert sandbox.task_count == 1


def test_injected_status_faults_with_retry_after_in_both_forms(sandbox):
    http_date = "Wed, 21 Oct 2026 07:28:00 GMT"
    sandbox.inject("429", retry_after=2)
    sandbox.inject("503", retry_after=http_date)
    sandbox.inject("500")
    sandbox.inject("409", method="POST")
    with api(sandbox) as client:
        limited = client.get("/tasks")
        busy = client.get("/tasks")
        broken = client.get("/tasks")
        processing = create(client)
        fine = client.get("/tasks")
    assert_error(limited, 429)
    assert limited.headers["retry-after"] == "2"
    assert_error(busy, 503)
    assert busy.headers["retry-after"] == http_date
    assert_error(broken, 500)
    assert "retry-after" not in broken.headers
    assert_error(processing, 409, "IDEMPOTENCY_KEY_PROCESSING")
    assert processing.headers["retry-after"] == "1"
    assert fine.status_code == 200
    assert sandbox.task_count == 0


def test_injected_faults_match_method_path_and_times(sandbox):
    sandbox.inject("503", method="GET", path="/v1/tasks/", times=2)
    with api(sandbox) as client:
        task_id = create(client).json()["data"]["taskId"]
        assert client.get("/tasks").status_code == 200
        assert client.get(f"/tasks/{task_id}").status_code == 503
        assert client.get(f"/tasks/{task_id}").status_code == 503
        assert client.get(f"/tasks/{task_id}").status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        sandbox.inject("418")


def test_drop_closes_without_creating_a_task(sandbox):
    sandbox.inject("drop", method="POST")
    with api(sandbox) as client:
        with pytest.raises(httpx.TransportError):
            create(client)
        assert client.get("/tasks").json()["data"]["total"] == 0
    assert sandbox.task_count == 0
    assert sandbox.requests[0] == ("POST", "/v1/tasks")


def test_drop_after_creates_the_task_but_never_answers(sandbox):
    sandbox.inject("drop_after", method="POST")
    with api(sandbox) as client:
        with pytest.raises(httpx.TransportError):
            create(client, input={"prompt": "lost answer"})
        listed = client.get("/tasks").json()["data"]
    assert sandbox.task_count == 1 and listed["total"] == 1
    assert sandbox.last_inputs[0]["input"] == {"prompt": "lost answer"}


def test_slow_answers_late(sandbox):
    sandbox.inject("slow:0.3", path="/v1/tasks")
    with api(sandbox) as client:
        started = time.monotonic()
        assert client.get("/tasks").status_code == 200
        assert time.monotonic() - started >= 0.3


def test_random_faults_hit_api_requests_only(sandbox_factory):
    server = sandbox_factory(faults=Faults(rate_429=1.0, retry_after=3, seed=1))
    with api(server) as client:
        limited = client.get("/tasks")
    assert_error(limited, 429)
    assert limited.headers["retry-after"] == "3"
    assert httpx.get(f"{server.root_url}/files/none/0.png").status_code == 404  # not 429


# -- callbacks --------------------------------------------------------------------------------


def test_callbacks_fire_without_polling_and_are_signed(sandbox_factory, callback_receiver):
    secret = "whsec-sandbox-test"
    server = sandbox_factory(webhook_secret=secret)
    receiver = callback_receiver()
    with api(server) as client:
        ok_id = create(client, callback={"url": receiver.url, "when": "final"}).json()["data"]
        failed_id = create(client, input={"prompt": "#fail"}, callback={"url": receiver.url}).json()["data"]
    calls = receiver.wait(2)
    tasks = {}
    for headers, body in calls:
        timestamp = headers["X-HiAPI-Timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-HiAPI-Signature"], expected)
        assert abs(int(timestamp) - time.time()) < 60
        task = json.loads(body)
        assert "code" not in task  # the bare task, no envelope
        tasks[task["taskId"]] = task
    assert tasks[ok_id["taskId"]]["status"] == "success" and tasks[ok_id["taskId"]]["output"]
    assert tasks[failed_id["taskId"]]["status"] == "fail"


def test_callbacks_are_retried_after_a_refusal(sandbox, callback_receiver):
    receiver = callback_receiver(statuses=[500])
    with api(sandbox) as client:
        create(client, callback={"url": receiver.url, "when": "final"})
    (first_headers, first), (_, second) = receiver.wait(2)
    assert first == second
    assert "X-HiAPI-Signature" not in first_headers  # no secret, no signature


# -- the command line -------------------------------------------------------------------------


def test_the_cli_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "hiapi_notebook.sandbox", "--port", "0", "--speed", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.search(
            r"HiAPI sandbox on (http://127\.0\.0\.1:\d+/v1) \(synthetic results; "
            r"any non-empty key\)",
            line,
        ).group(1)
        answer = httpx.get(f"{url}/tasks", headers={"Authorization": "Bearer cli"})
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ""  # nothing logged per request
    finally:
        process.kill()
        process.wait()


def test_the_hiapi_notebook_command_has_a_sandbox_subcommand():
    helped = subprocess.run(
        [sys.executable, "-m", "hiapi_notebook", "sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert helped.returncode == 0
    assert "--webhook-secret" in helped.stdout and "--rate-429" in helped.stdout
