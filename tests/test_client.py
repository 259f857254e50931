"""The client against the sandbox over real HTTP: every error class, retries
honouring Retry-After in both forms, idempotent creates, polling, webhooks."""

import asyncio
import hashlib
import hmac
import json
import time
from email.utils import formatdate

import pytest

from hiapi_notebook import _loop, errors
from hiapi_notebook.client import AsyncHiAPI, HiAPI, verify_webhook

IMAGE = "gpt-image-2/text-to-image"


def client_for(srv, key="k", **kw) -> HiAPI:
    kw.setdefault("poll_interval", 0.02)
    return HiAPI(api_key=key, base_url=srv.root_url, **kw)  # /v1 is appended


def test_run_to_success_and_list(sandbox):
    with client_for(sandbox) as client:
        seen = []
        task = client.tasks.run(IMAGE, {"prompt": "a fox"}, on_update=lambda t: seen.append(t.status))
        assert task.succeeded and task.output[0].type == "image"
        assert seen[-1] == "success" and len(seen) == len(set(seen))
        assert client.tasks.retrieve(task.task_id).status == "success"
        page = client.tasks.list(page=1, size=5)
        assert page.total == 1 and page.items[0].task_id == task.task_id


class ScriptedServer:
    """A tiny HiAPI stand-in that answers detail calls with a fixed list of
    statuses, one per poll, to show what the sandbox never sends. It has no list
    endpoint (404), so the poller falls back to detail requests."""

    def __init__(self, statuses):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        script = list(statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0].rstrip("/").endswith("/tasks"):
                    body = b'{"code": 404, "message": "not found", "data": null}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                status = script.pop(0) if len(script) > 1 else script[0]
                body = json.dumps(
                    {
                        "code": 200,
                        "message": "success",
                        "data": {
                            "taskId": "tk-hiapi-scripted",
                            "status": status,
                            "created": int(time.time()),
                            "completed": 0,
                            "novel": True,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_on_update_hears_unknown_statuses_and_polls_on():
    server = ScriptedServer(["queued", "rendering", "rendering", "handling", "fail"])
    seen = []
    with HiAPI(api_key="k", base_url=server.url, poll_interval=0.01) as client:
        with pytest.raises(errors.TaskFailed) as info:
            client.tasks.wait("tk-hiapi-scripted", on_update=lambda t: seen.append(t.status))
    server.httpd.shutdown()
    assert seen == ["queued", "rendering", "handling", "fail"]
    assert info.value.task.raw["novel"] is True and "no reason given" in str(info.value)


@pytest.mark.parametrize(
    "setup, call, exc",
    [
        (dict(), lambda c: c.tasks.create("no-such-model", {"prompt": "x"}), errors.InvalidRequestError),
        (dict(), lambda c: c.tasks.create(IMAGE, {}), errors.InvalidRequestError),
        (dict(key="right"), lambda c: c.tasks.list(), errors.AuthenticationError),
        (dict(balance=0.0), lambda c: c.tasks.create(IMAGE, {"prompt": "x"}), errors.PaymentRequiredError),
        (dict(), lambda c: c.tasks.retrieve("tk-hiapi-00000000000000000000000000"), errors.NotFoundError),
    ],
)
def test_error_classes_from_real_answers(sandbox_factory, setup, call, exc):
    srv = sandbox_factory(**setup)
    with client_for(srv, key="wrong" if "key" in setup else "k", max_retries=0) as client:
        with pytest.raises(exc) as info:
            call(client)
    err = info.value
    assert err.status == exc.status and err.server_message
    assert "wrong" not in str(err)


def test_permission_denied(sandbox):
    with client_for(sandbox, key="suspended-account") as client:
        with pytest.raises(errors.PermissionDeniedError) as info:
            client.tasks.list()
    assert info.value.status == 403 and "suspended-account" not in str(info.value)


def test_another_accounts_task_is_not_found(sandbox):
    with client_for(sandbox, key="alice") as alice, client_for(sandbox, key="bob") as bob:
        created = alice.tasks.create(IMAGE, {"prompt": "mine"})
        with pytest.raises(errors.NotFoundError):
            bob.tasks.retrieve(created.task_id)


def test_missing_key_names_the_variable(sandbox, monkeypatch):
    monkeypatch.delenv("HIAPI_API_KEY", raising=False)
    with HiAPI(base_url=sandbox.url) as client:
        with pytest.raises(errors.MissingAPIKeyError, match="HIAPI_API_KEY"):
            client.tasks.list()
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "status, exc",
    [("429", errors.RateLimitError), ("503", errors.ServiceUnavailableError), ("500", errors.ServerError)],
)
def test_retryable_statuses_give_up_with_their_class(sandbox, status, exc):
    sandbox.inject(status, times=10, retry_after=0)
    with client_for(sandbox, max_retries=2) as client:
        with pytest.raises(exc) as info:
            client.tasks.list()
    assert len(sandbox.requests) == 3  # the first try and two retries
    if status == "429":
        assert "gave up after 3 attempts" in str(info.value)


@pytest.mark.parametrize("retry_after", ["seconds", "http-date"])
def test_retry_after_is_honoured_in_both_forms(sandbox, retry_after):
    value = 1 if retry_after == "seconds" else formatdate(time.time() + 2, usegmt=True)
    sandbox.inject("429", retry_after=value)
    with client_for(sandbox) as client:
        started = time.monotonic()
        client.tasks.list()
        waited = time.monotonic() - started
    assert len(sandbox.requests) == 2
    assert waited >= 0.9, waited  # an HTTP-date has one-second resolution


def test_409_processing_is_retried_until_the_replay(sandbox):
    sandbox.inject("409", method="POST", retry_after=0)
    with client_for(sandbox) as client:
        created = client.tasks.create(IMAGE, {"prompt": "x"}, idempotency_key="same")
    assert created.task_id.startswith("tk-hiapi-") and sandbox.task_count == 1


def test_create_retried_after_a_dropped_answer_creates_one_task(sandbox):
    """The server made the task but the answer was lost: the resend carries the
    same Idempotency-Key, so the server replays it instead of billing twice."""
    sandbox.inject("drop_after", method="POST")
    with client_for(sandbox) as client:
        created = client.tasks.create(IMAGE, {"prompt": "x"})
        assert created.idempotent_replay is True
        assert sandbox.task_count == 1
        assert client.tasks.list().total == 1
    posts = [r for r in sandbox.requests if r[0] == "POST"]
    assert len(posts) == 2


def test_get_retried_after_a_dropped_connection(sandbox):
    sandbox.inject("drop", method="GET")
    with client_for(sandbox) as client:
        assert client.tasks.list().total == 0


def test_idempotency_replay_and_mismatch(sandbox):
    with client_for(sandbox) as client:
        first = client.tasks.create(IMAGE, {"prompt": "x"}, idempotency_key="key-1")
        again = client.tasks.create(IMAGE, {"prompt": "x"}, idempotency_key="key-1")
        assert again.task_id == first.task_id and again.idempotent_replay
        with pytest.raises(errors.IdempotencyKeyMismatchError) as info:
            client.tasks.create(IMAGE, {"prompt": "other"}, idempotency_key="key-1")
        assert info.value.status == 422
    assert sandbox.task_count == 1


def test_network_failure_is_a_connection_error():
    with HiAPI(api_key="k", base_url="http://127.0.0.1:9", max_retries=1) as client:
        with pytest.raises(errors.APIConnectionError, match="Could not reach HiAPI"):
            client.tasks.list()


def test_failed_task_and_poll_timeout(sandbox_factory):
    srv = sandbox_factory(speed=1)
    with client_for(srv) as client:
        with pytest.raises(errors.PollTimeout) as info:
            client.tasks.run(IMAGE, {"prompt": "slow"}, timeout=0.3)
        assert info.value.task_id.startswith("tk-hiapi-")
    fast = sandbox_factory()
    with client_for(fast) as client:
        with pytest.raises(errors.TaskFailed) as failed:
            client.tasks.run(IMAGE, {"prompt": "please #fail"})
        assert failed.value.task.failed and "asked to fail" in str(failed.value)


def test_callback_must_be_http_and_is_checked_before_sending(sandbox):
    with client_for(sandbox) as client:
        with pytest.raises(errors.RequestValidationError, match="http"):
            client.tasks.create(IMAGE, {"prompt": "x"}, callback={"url": "ftp://nope"})
    assert sandbox.requests == []


def test_webhook_signed_by_the_sandbox_verifies(sandbox_factory, callback_receiver):
    receiver = callback_receiver()
    srv = sandbox_factory(webhook_secret="s3cret")
    with client_for(srv) as client:
        created = client.tasks.create(IMAGE, {"prompt": "x"}, callback={"url": receiver.url, "when": "final"})
    ((headers, body),) = receiver.wait(1)
    task = verify_webhook(body, dict(headers), "s3cret")
    assert task.task_id == created.task_id and task.is_terminal
    with pytest.raises(errors.WebhookVerificationError):
        verify_webhook(body + b" ", dict(headers), "s3cret")
    with pytest.raises(errors.WebhookVerificationError):
        verify_webhook(body, dict(headers), "wrong")
    stale = dict(headers)
    old = str(int(time.time()) - 1000)
    stale["X-HiAPI-Timestamp"] = old
    stale["X-HiAPI-Signature"] = hmac.new(b"s3cret", old.encode() + b"." + body, hashlib.sha256).hexdigest()
    with pytest.raises(errors.WebhookVerificationError, match="tolerance"):
        verify_webhook(body, stale, "s3cret")


def test_key_never_in_repr_or_errors(sandbox_factory):
    srv = sandbox_factory(key="the-right-key")
    client = client_for(srv, key="sk-very-secret-value", max_retries=0)
    assert "sk-very-secret-value" not in repr(client)
    with pytest.raises(errors.AuthenticationError) as info:
        client.tasks.list()
    assert "sk-very-secret-value" not in str(info.value) and "sk-very" not in repr(info.value)
    client.close()


def test_hundreds_of_concurrent_runs_share_one_client(sandbox_factory):
    srv = sandbox_factory(speed=100)

    async def scenario():
        # the key's budget is set high: this is about sharing one client, not about the budget
        client = AsyncHiAPI(api_key="k", base_url=srv.url, poll_interval=0.05, request_budget=500)
        async with client:
            return await asyncio.gather(*(client.tasks.run(IMAGE, {"prompt": f"n{i}"}) for i in range(200)))

    tasks = _loop.run_sync(scenario())  # not asyncio.run: the browser tests' loop may be running
    assert len({t.task_id for t in tasks}) == 200 and all(t.succeeded for t in tasks)


def test_downloads_stream_to_disk(sandbox, tmp_path):
    with client_for(sandbox) as client:
        task = client.tasks.run(IMAGE, {"prompt": "save me"})

    async def fetch():
        async with AsyncHiAPI(api_key="k", base_url=sandbox.url) as c:
            return await c.download(task.output[0].url, tmp_path / "a.png")

    got = _loop.run_sync(fetch())
    data = (tmp_path / "a.png").read_bytes()
    assert data.startswith(b"\x89PNG") and got.bytes == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.content_type == "image/png"
    assert not list(tmp_path.glob("*.part"))
