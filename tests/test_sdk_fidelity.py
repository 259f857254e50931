"""HiAPI's own Python SDK, unchanged, against the sandbox: proof that the sandbox speaks HiAPI."""

import io
import json
import urllib.request

import hiapi
import pytest
from PIL import Image

MODEL = "gpt-image-2/text-to-image"
FAST = {"poll_interval": 0.02, "timeout": 10}


@pytest.fixture
def client(sandbox):
    return hiapi.HiAPI(api_key="sdk-test-key", base_url=sandbox.url)


def test_run_to_success_with_status_updates(client):
    seen = []
    task = client.tasks.run(
        model=MODEL, input={"prompt": "a paper boat"}, on_update=lambda t: seen.append(t.status), **FAST
    )
    assert task.succeeded and task.is_terminal and task.model == MODEL
    assert seen[-1] == "success" and set(seen) <= {"queued", "handling", "archiving", "success"}
    assert task.completed_at >= task.created_at and task.storage == "temp"
    [output] = task.output
    assert output.type == "image" and output.expire_at > task.created_at
    with urllib.request.urlopen(output.url) as answer:
        assert Image.open(io.BytesIO(answer.read())).format == "PNG"


def test_a_base_url_without_v1_works_too(sandbox):
    client = hiapi.HiAPI(api_key="sdk-test-key", base_url=sandbox.root_url)
    task = client.tasks.run(model="seedance-2-0", input={"prompt": "waves"}, **FAST)
    assert [o.type for o in task.output] == ["video", "first_frame"]


def test_create_with_an_idempotency_key_replays(client, sandbox):
    first = client.tasks.create(model=MODEL, input={"prompt": "once"}, idempotency_key="sdk-1")
    again = client.tasks.create(model=MODEL, input={"prompt": "once"}, idempotency_key="sdk-1")
    assert first.task_id.startswith("tk-hiapi-") and not first.idempotent_replay
    assert again.task_id == first.task_id and again.idempotent_replay
    assert sandbox.task_count == 1
    with pytest.raises(hiapi.IdempotencyKeyMismatchError):
        client.tasks.create(model=MODEL, input={"prompt": "twice"}, idempotency_key="sdk-1")


def test_list_and_retrieve(client):
    ids = [client.tasks.create(model=MODEL, input={"prompt": f"p{i}"}).task_id for i in range(3)]
    page = client.tasks.list(page=1, size=20)
    assert [t.task_id for t in page.items] == ids[::-1]
    assert (page.page, page.size, page.total) == (1, 20, 3)
    task = client.tasks.retrieve(ids[0])
    assert (
        task.task_id == ids[0]
        and task.model == MODEL
        and task.status in ("queued", "handling", "archiving", "success")
    )


def test_routes_as_the_sdk_sends_them(client):
    created = client.tasks.create(model=MODEL, input={"prompt": "x"}, route="ext")
    task = client.tasks.retrieve(created.task_id)
    assert (task.model, task.route) == (f"{MODEL}@ext", "ext")
    with pytest.raises(hiapi.InvalidRequestError, match="available routes"):
        client.tasks.create(model=MODEL, input={"prompt": "x"}, route="pro")


def test_sdk_errors_map_from_sandbox_answers(client, sandbox_factory):
    with pytest.raises(hiapi.InvalidRequestError, match="aspect_ratio"):
        client.tasks.create(model=MODEL, input={"prompt": "x", "aspect_ratio": "7:3"})
    with pytest.raises(hiapi.NotFoundError):
        client.tasks.retrieve("tk-hiapi-00000000000000000000000000")
    with pytest.raises(hiapi.TaskFailed):
        client.tasks.run(model=MODEL, input={"prompt": "#fail"}, **FAST)
    locked = sandbox_factory(key="right")
    with pytest.raises(hiapi.AuthenticationError):
        hiapi.HiAPI(api_key="wrong", base_url=locked.url).tasks.list()


def test_the_sdk_retries_injected_faults(client, sandbox):
    sandbox.inject("429", method="POST", retry_after=0.05)
    sandbox.inject("409", method="POST", retry_after=0.05)
    created = client.tasks.create(model=MODEL, input={"prompt": "x"}, idempotency_key="k-2")
    sandbox.inject("503", method="GET", retry_after="0")
    assert client.tasks.retrieve(created.task_id).task_id == created.task_id
    assert sandbox.task_count == 1
    assert [m for m, _ in sandbox.requests] == ["POST", "POST", "POST", "GET", "GET"]


def test_verify_webhook_accepts_the_sandbox_callbacks(sandbox_factory, callback_receiver):
    secret = "whsec-sdk-fidelity"
    server = sandbox_factory(webhook_secret=secret)
    receiver = callback_receiver()
    client = hiapi.HiAPI(api_key="sdk-test-key", base_url=server.url, webhook_secret=secret)
    created = client.tasks.create(
        model=MODEL, input={"prompt": "hook"}, callback={"url": receiver.url, "when": "final"}
    )
    [(headers, body)] = receiver.wait(1)
    task = hiapi.verify_webhook(
        body, signature=headers["X-HiAPI-Signature"], timestamp=headers["X-HiAPI-Timestamp"], secret=secret
    )
    assert task.task_id == created.task_id and task.succeeded and task.output
    assert client.webhooks.verify(body, dict(headers)).task_id == created.task_id
    with pytest.raises(hiapi.WebhookVerificationError):
        client.webhooks.verify(body.replace(b"success", b"fail"), dict(headers))
    assert json.loads(body)["taskId"] == created.task_id
