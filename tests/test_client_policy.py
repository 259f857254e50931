"""Retry and polling policy as pure functions: no network, no sleep."""

import random
import time
from email.utils import formatdate

import pytest

from hiapi_notebook import errors
from hiapi_notebook.client import (
    MAX_RETRY_AFTER,
    normalize_base_url,
    parse_retry_after,
    poll_delay,
    retry_delay,
    should_retry,
)
from hiapi_notebook.models import Task, TaskPage


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    now = time.time()
    date = formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(date, now=now) <= 31
    assert parse_retry_after(formatdate(now - 100, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_delay_caps_server_hint_and_jitters_backoff():
    assert retry_delay(0, 3600) == MAX_RETRY_AFTER
    rng = random.Random(1)
    delays = [retry_delay(a, None, rng=rng) for a in range(6)]
    assert all(0 < d <= 8.0 for d in delays) and delays[3] > delays[0]


@pytest.mark.parametrize(
    "method,status,code,key,expected",
    [
        ("POST", 429, None, False, True),
        ("POST", 503, None, False, True),
        ("POST", 409, "IDEMPOTENCY_KEY_PROCESSING", True, True),
        ("POST", 500, None, False, False),  # unknown state without a key
        ("POST", 500, None, True, True),  # a key makes the resend a replay
        ("POST", None, None, False, False),  # network error, no key: never blindly
        ("POST", None, None, True, True),
        ("GET", 500, None, False, True),
        ("GET", None, None, False, True),
        ("GET", 404, None, False, False),
        ("POST", 400, "INVALID_REQUEST", True, False),
        ("POST", 503, "MODEL_UNAVAILABLE", True, False),
        ("POST", 422, "IDEMPOTENCY_KEY_MISMATCH", True, False),
    ],
)
def test_should_retry(method, status, code, key, expected):
    assert should_retry(method, status, code, idempotent_post=key) is expected


def test_polling_adapts_with_age():
    assert poll_delay(0, 1.0, 10.0) == 1.0
    assert poll_delay(60, 1.0, 10.0) == pytest.approx(6.0)
    assert poll_delay(3600, 1.0, 10.0) == 10.0


def test_base_url_gets_v1():
    assert normalize_base_url("https://api.hiapi.ai") == "https://api.hiapi.ai/v1"
    assert normalize_base_url("http://127.0.0.1:8787/v1/") == "http://127.0.0.1:8787/v1"
    with pytest.raises(errors.RequestValidationError):
        normalize_base_url("api.hiapi.ai")


def test_tolerant_parsing_of_contract_examples():
    task = Task.from_dict(
        {
            "taskId": "tk-hiapi-01HZTQ8BX2N3GM3YFK4Z9D7VQR",
            "model": "seedance-2-0",
            "status": "success",
            "created": 1777800499,
            "completed": 1777800799,
            "storage": "temp",
            "output": [
                {"url": "https://cdn/0.mp4", "type": "video", "expireAt": 1777887199},
                "not an object",
                7,
                {"url": "https://cdn/first_frame.jpg", "type": "first_frame", "expireAt": 1777887199},
            ],
            "brand_new_field": {"x": 1},
        }
    )
    assert task.succeeded and task.completed_at == 1777800799
    assert [o.type for o in task.output] == ["video", "first_frame"]
    assert task.raw["brand_new_field"] == {"x": 1}
    running = Task.from_dict({"taskId": "tk-hiapi-x", "status": "rendering", "completed": 0})
    assert running.status == "rendering" and not running.is_terminal and running.completed_at is None
    failed = Task.from_dict(
        {
            "taskId": "t",
            "status": "fail",
            "error": {"code": "TASK_FAILED", "message": "upstream rejected the prompt"},
        }
    )
    assert failed.error.message == "upstream rejected the prompt"
    page = TaskPage.from_dict({"page": 1, "size": 20, "total": 42, "tasks": [{"taskId": "a"}, None]})
    assert page.total == 42 and len(page) == 1


def test_every_error_class_is_importable_and_carries_fields():
    for name in [
        "AuthenticationError",
        "PaymentRequiredError",
        "PermissionDeniedError",
        "NotFoundError",
        "IdempotencyKeyProcessingError",
        "IdempotencyKeyMismatchError",
        "RateLimitError",
        "InvalidRequestError",
        "ModelUnavailableError",
        "ServiceUnavailableError",
        "ServerError",
        "APIConnectionError",
        "TaskFailed",
        "PollTimeout",
    ]:
        assert issubclass(getattr(errors, name), errors.HiAPIError)
    e = errors.error_for(402, None, "insufficient balance")
    assert isinstance(e, errors.PaymentRequiredError) and e.status == 402
    assert "top up" in str(e) and e.server_message == "insufficient balance"
    assert isinstance(errors.error_for(400, "MODEL_UNAVAILABLE", "busy"), errors.ModelUnavailableError)
    assert isinstance(errors.error_for(502, None, "bad gateway"), errors.ServerError)
    assert "HIAPI_API_KEY" in str(errors.MissingAPIKeyError())
