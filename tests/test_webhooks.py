"""``verify_webhook``: a callback the sandbox signed verifies; every bad one, however
malformed, raises ``WebhookVerificationError`` and nothing else."""

import hashlib
import hmac
import json
import time

import pytest

from hiapi_notebook import errors
from hiapi_notebook.client import HiAPI, verify_webhook

SECRET = "whsec-test"
BODY = json.dumps({"taskId": "tk-hiapi-x", "status": "success", "output": []}).encode()


def signed(body: bytes, timestamp: str | None = None, secret: str = SECRET) -> dict:
    ts = timestamp if timestamp is not None else str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-HiAPI-Timestamp": ts, "X-HiAPI-Signature": sig}


def test_a_callback_from_the_sandbox_verifies(sandbox_factory, callback_receiver):
    receiver = callback_receiver()
    server = sandbox_factory(webhook_secret=SECRET)
    with HiAPI(api_key="k", base_url=server.url) as client:
        created = client.tasks.create("gpt-image-2/text-to-image", {"prompt": "x"}, callback=receiver.url)
    ((headers, body),) = receiver.wait(1)
    assert verify_webhook(body, dict(headers), SECRET).task_id == created.task_id
    assert verify_webhook(body, list(dict(headers).items()), SECRET.encode()).task_id == created.task_id


def _bad_callbacks():
    now = str(int(time.time()))
    good = signed(BODY)
    return {
        "no headers": (BODY, {}, SECRET),
        "wrong secret": (BODY, good, "another"),
        "altered body": (BODY + b" ", good, SECRET),
        "non-ASCII signature": (BODY, {**good, "X-HiAPI-Signature": "é" * 64}, SECRET),
        "short signature": (BODY, {**good, "X-HiAPI-Signature": "ab"}, SECRET),
        "signature not hex": (BODY, {**good, "X-HiAPI-Signature": "z" * 64}, SECRET),
        "401-digit timestamp": (BODY, signed(BODY, "9" * 401), SECRET),
        "negative timestamp": (BODY, signed(BODY, "-5"), SECRET),
        "timestamp with a sign": (BODY, signed(BODY, "+" + now), SECRET),
        "non-ASCII digits": (BODY, signed(BODY, "١٢٣"), SECRET),
        "stale timestamp": (BODY, signed(BODY, str(int(time.time()) - 1000)), SECRET),
        "signed list body": (b"[1, 2]", signed(b"[1, 2]"), SECRET),
        "signed string body": (b'"a task"', signed(b'"a task"'), SECRET),
        "signed non-JSON body": (b"not json", signed(b"not json"), SECRET),
        "signed invalid UTF-8": (b"\xff\xfe{}", signed(b"\xff\xfe{}"), SECRET),
        "body with a lone surrogate": ("{\ud800}", good, SECRET),
        "body of the wrong type": (12345, good, SECRET),
        "body is None": (None, good, SECRET),
        "header values not text": (BODY, {"X-HiAPI-Timestamp": 5, "X-HiAPI-Signature": None}, SECRET),
        "headers not a mapping": (BODY, 42, SECRET),
        "no secret": (BODY, good, ""),
        "secret of the wrong type": (BODY, good, None),
    }


@pytest.mark.parametrize("case", sorted(_bad_callbacks()))
def test_every_bad_callback_raises_webhook_verification_error(case):
    body, headers, secret = _bad_callbacks()[case]
    with pytest.raises(errors.WebhookVerificationError) as info:
        verify_webhook(body, headers, secret)
    assert "\n" not in str(info.value) and str(info.value)


def test_bytes_headers_from_a_raw_server_are_read():
    headers = {k.encode(): v.encode() for k, v in signed(BODY).items()}
    assert verify_webhook(BODY, headers, SECRET).status == "success"
