"""Output downloads over real HTTP: transient faults are retried like API calls, only a
real expiry says "expired", and a success whose local copy failed is fetched again by the
next run (never paid for again) while its URL lives."""

import hashlib
import time

import pytest

from hiapi_notebook import _loop, errors
from hiapi_notebook.api import generate
from hiapi_notebook.client import AsyncHiAPI, HiAPI

IMAGE = "gpt-image-2/text-to-image"


def finished_task(server, prompt="a fox to download"):
    with HiAPI(api_key="k", base_url=server.url, poll_interval=0.02) as client:
        return client.tasks.run(IMAGE, {"prompt": prompt})


def download(server, url, dest, **client_options):
    async def go():
        async with AsyncHiAPI(api_key="k", base_url=server.url, **client_options) as client:
            return await client.download(url, dest)

    return _loop.run_sync(go())


def file_requests(server):
    return [r for r in server.requests if r[1].startswith("/files/")]


@pytest.mark.parametrize("fault", ["500", "503", "429", "drop", "truncate"])
def test_a_transient_fault_on_a_download_is_tried_again(sandbox, tmp_path, fault):
    task = finished_task(sandbox)
    sandbox.inject(fault, path="/files/", times=2, retry_after=0)
    got = download(sandbox, task.output[0].url, tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data.startswith(b"\x89PNG") and got.bytes == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert len(file_requests(sandbox)) == 3  # two failures, then the whole file
    assert not list(tmp_path.glob("*.part"))


def test_a_download_gives_up_after_the_retries_and_leaves_nothing(sandbox, tmp_path):
    task = finished_task(sandbox)
    sandbox.inject("500", path="/files/", times=10)
    with pytest.raises(errors.APIConnectionError, match=r"HTTP 500.*gave up after 3 attempts") as info:
        download(sandbox, task.output[0].url, tmp_path / "a.png", max_retries=2)
    assert not isinstance(info.value, errors.OutputExpiredError)
    assert len(file_requests(sandbox)) == 3
    assert not list(tmp_path.iterdir())


def test_only_a_real_expiry_says_expired_and_it_is_not_retried(sandbox_factory, tmp_path):
    server = sandbox_factory(url_ttl=1)
    task = finished_task(server)
    time.sleep(max(0.0, task.output[0].expire_at - time.time()) + 0.05)
    with pytest.raises(errors.OutputExpiredError) as info:
        download(server, task.output[0].url, tmp_path / "a.png")
    message = str(info.value)
    assert "HTTP 410" in message and "can no longer be downloaded" in message
    assert "still show" not in message  # it cannot know whether a local copy exists
    assert len(file_requests(server)) == 1
    unknown = task.output[0].url.replace(task.task_id, "tk-hiapi-00000000000000000000000000")
    with pytest.raises(errors.OutputExpiredError, match="HTTP 404"):
        download(server, unknown, tmp_path / "b.png")
    assert len(file_requests(server)) == 2


def test_fetch_into_memory_retries_too(sandbox):
    task = finished_task(sandbox)
    sandbox.inject("drop", path="/files/")

    async def go():
        async with AsyncHiAPI(api_key="k", base_url=sandbox.url) as client:
            return await client.fetch(task.output[0].url)

    data, content_type = _loop.run_sync(go())
    assert data.startswith(b"\x89PNG") and content_type == "image/png"
    assert len(file_requests(sandbox)) == 2


# -- through the session and the journal ------------------------------------------------------


def test_a_success_without_its_copy_is_fetched_again_by_the_next_run(session, sandbox, tmp_path):
    sandbox.inject("500", path="/files/", times=5)  # outlasts the first run's four retries
    first = generate("a fox kept later", model=IMAGE, show=False)
    assert first.status == "success"
    (out,) = first.outputs
    assert out.path is None and "HTTP 500" in first.job.files[0].problem
    record = session.journal.find_task(first.task_id)
    assert record.succeeded and record.files[0]["path"] is None

    again = generate("a fox kept later", model=IMAGE, show=False)
    assert again.cached and again.task_id == first.task_id
    (out,) = again.outputs
    assert out.path is not None and out.path.is_file()
    assert out.path.read_bytes().startswith(b"\x89PNG")
    record = session.journal.find_task(first.task_id)
    assert record.files[0]["path"] == str(out.path) and record.files[0]["sha256"]
    assert sandbox.task_count == 1  # fetched again, never paid again

    third = generate("a fox kept later", model=IMAGE, show=False)
    assert third.cached and third.outputs[0].path == out.path
    assert len(file_requests(sandbox)) == 6  # five failures and one copy: the third run fetched nothing


def test_a_deleted_local_copy_is_fetched_again(session, sandbox):
    first = generate("a fox deleted later", model=IMAGE, show=False)
    path = first.outputs[0].path
    path.unlink()
    again = generate("a fox deleted later", model=IMAGE, show=False)
    assert again.cached and again.outputs[0].path == path and path.is_file()
    assert sandbox.task_count == 1


def test_an_unwritable_outputs_folder_keeps_the_result_for_the_next_run(session, sandbox, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outputs folder should be")
    session.configure(outputs_dir=str(blocker / "outputs"))
    first = generate("a fox with nowhere to go", model=IMAGE, show=False)
    assert first.status == "success" and first.outputs[0].path is None
    assert first.job.files[0].problem

    session.configure(outputs_dir=str(tmp_path / "outputs"))
    again = generate("a fox with nowhere to go", model=IMAGE, show=False)
    assert again.cached and again.outputs[0].path.is_file()
    assert again.outputs[0].path.is_relative_to(tmp_path / "outputs")
    assert sandbox.task_count == 1


def test_after_expiry_a_missing_copy_is_not_fetched_and_says_so_truly(session, sandbox_factory):
    server = sandbox_factory(url_ttl=1)
    session.configure(base_url=server.url)
    server.inject("500", path="/files/", times=5)
    first = generate("a fox that will expire", model=IMAGE, show=False)
    assert first.outputs[0].path is None
    time.sleep(max(0.0, first.task.output[0].expire_at - time.time()) + 0.05)
    fetches = len(file_requests(server))

    again = generate("a fox that will expire", model=IMAGE, show=False)
    assert again.cached and again.outputs[0].path is None
    assert len(file_requests(server)) == fetches  # the URL is dead: no attempt is made
    with pytest.raises(errors.OutputExpiredError) as info:
        again.outputs[0].data()
    assert "still show" not in str(info.value) and "can no longer be downloaded" in str(info.value)
    assert server.task_count == 1
