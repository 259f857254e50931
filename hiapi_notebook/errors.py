"""Every error hiapi-notebook raises, in one tree.

    HiAPIError                          base; ``status``, ``error_code``, ``message``
    ├── MissingAPIKeyError              no key configured (never sent anything)
    ├── APIError                        the server answered with a non-2xx status
    │   ├── InvalidRequestError         400 / INVALID_REQUEST: fix the request
    │   ├── AuthenticationError         401: missing or invalid key
    │   ├── PaymentRequiredError        402: balance too low, top up
    │   ├── PermissionDeniedError       403: no permission / account suspended
    │   ├── NotFoundError               404: unknown task or another account's
    │   ├── IdempotencyKeyProcessingError  409: first request with this key in flight
    │   ├── IdempotencyKeyMismatchError 422: key reused with another body
    │   ├── RateLimitError              429 that outlasted the retries
    │   ├── ModelUnavailableError       MODEL_UNAVAILABLE: later, or another model
    │   ├── ServiceUnavailableError     503
    │   └── ServerError                 other 5xx
    ├── APIConnectionError              network failure, nothing usable came back
    │   └── OutputRefusedError          an output deliberately not kept (not media, too big)
    ├── RequestValidationError          refused before sending (also a ValueError)
    │   └── SpendLimitError             the estimate would pass the session's spend_limit
    ├── OutputExpiredError              an output URL is gone (they last ~7 days)
    ├── TaskFailed                      a polled task ended in ``fail``, ``cancelled``… (``.task``)
    ├── PollTimeout                     waiting gave up (``.task_id``; task may finish)
    ├── NotSubmitted                    a batch stopped before this request's turn came
    └── WebhookVerificationError        a callback's signature or time is wrong

Names follow HiAPI's own SDK so its users feel at home. Every message says what
to do next; none ever contains the API key.
"""

from __future__ import annotations

import re
import sys
from typing import Any


def in_ipython() -> bool:
    """True inside IPython (a notebook or terminal IPython): advice may name ``%hiapi``
    there; a plain script gets advice it can follow (environment, the sandbox command)."""
    ipython = sys.modules.get("IPython")
    try:
        return ipython is not None and ipython.get_ipython() is not None
    except Exception:
        return False


def key_help() -> str:
    if in_ipython():
        return (
            "set the HIAPI_API_KEY environment variable, run %hiapi login, "
            "or use the local sandbox (%hiapi sandbox)"
        )
    return (
        "set the HIAPI_API_KEY environment variable; to try things with no key, start the local "
        "sandbox (hiapi-notebook sandbox) and set HIAPI_BASE_URL to the URL it prints"
    )


class HiAPIError(Exception):
    """Base class: catch this to handle anything hiapi-notebook raises."""

    status: int | None = None
    error_code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_code is not None:
            self.error_code = error_code


class MissingAPIKeyError(HiAPIError):
    def __init__(self) -> None:
        super().__init__(f"No HiAPI key: {key_help()}.")


class APIError(HiAPIError):
    """The server refused; ``server_message`` is its own words."""

    hint = ""

    def advice(self, server_message: str) -> str:
        """What to do next, in words that fit where the code runs (notebook or script)."""
        return self.hint

    def __init__(
        self,
        server_message: str = "",
        *,
        status: int | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.server_message = server_message
        self.retry_after = retry_after
        status = status if status is not None else type(self).status
        parts = [f"HiAPI {status}" + (f" {error_code}" if error_code else "")]
        text = ": ".join(p for p in (parts[0], server_message) if p)
        advice = self.advice(server_message)
        if advice:
            text += f" ({advice})"
        super().__init__(text, status=status, error_code=error_code)


class InvalidRequestError(APIError):
    status = 400

    def advice(self, server_message: str) -> str:
        unknown_model = "model" in server_message.lower() and "unknown" in server_message.lower()
        if in_ipython():
            return (
                "%hiapi models lists the models"
                if unknown_model
                else ("fix the request; %hiapi models MODEL lists a model's fields")
            )
        if unknown_model:
            return "hiapi_notebook.catalog.model_names() lists the models"
        return "fix the request; hiapi_notebook.catalog.get_model(NAME) describes a model's fields"


class AuthenticationError(APIError):
    status = 401

    def advice(self, server_message: str) -> str:
        return f"the key was refused: {key_help()}"


TOP_UP = "top up your HiAPI account at https://www.hiapi.ai"
_BALANCE = re.compile(r"balance[^0-9$]{0,20}\$?\s?(-?[0-9]{1,12}(?:\.[0-9]{1,8})?)(?![0-9])", re.IGNORECASE)


class PaymentRequiredError(APIError):
    """402: the balance cannot cover the task's estimated cost. ``balance`` is what the
    server's message says is left (None when it does not say)."""

    status = 402

    @property
    def balance(self) -> float | None:
        found = _BALANCE.search(self.server_message[:2000])
        return float(found.group(1)) if found else None

    def balance_text(self) -> str:
        balance = self.balance
        if balance is None:
            return "your balance cannot cover this task and the server did not say what is left"
        return f"your balance (${balance:.4f}, as the server reported) cannot cover this task"

    def advice(self, server_message: str) -> str:
        return f"{self.balance_text()}; {TOP_UP}"


class PermissionDeniedError(APIError):
    status = 403
    hint = "this key may not use this model or the account is suspended: check your HiAPI account"


class NotFoundError(APIError):
    status = 404
    hint = "check the task id; tasks of another account are not visible"


class IdempotencyKeyProcessingError(APIError):
    status = 409
    hint = "the first request with this idempotency key is still in flight; retry shortly"


class IdempotencyKeyMismatchError(APIError):
    status = 422
    hint = "this idempotency key was used with a different request; use a new key"


class RateLimitError(APIError):
    status = 429
    hint = "rate limited, and it outlasted the retries; wait a minute or lower concurrency"


class ModelUnavailableError(APIError):
    status = 503
    hint = "the model is temporarily unavailable; try again later or pick another model"


class ServiceUnavailableError(APIError):
    status = 503
    hint = "HiAPI is busy and it outlasted the retries; try again shortly"


class ServerError(APIError):
    status = 500
    hint = "a server error outlasted the retries; try again shortly"


class APIConnectionError(HiAPIError):
    """No usable answer came back (refused, reset, timed out, not JSON)."""


class OutputRefusedError(APIConnectionError):
    """An output the client chose not to keep (not media, over the size limit): a
    deliberate refusal, so a re-run does not fetch it again."""


class RequestValidationError(HiAPIError, ValueError):
    """The request is wrong in a way the client can tell; nothing was sent."""


class SpendLimitError(RequestValidationError):
    """A submission whose estimated cost would take the session past its ``spend_limit``:
    nothing was sent. ``--yes`` / ``yes=True`` sends it anyway."""


class OutputExpiredError(HiAPIError):
    """Output URLs expire about 7 days after creation; local copies outlive them."""

    def __init__(self, url: str, status: int) -> None:
        # Says nothing about local copies: whoever raises this cannot know whether one exists.
        super().__init__(
            f"The output URL has expired or is gone (HTTP {status}): this output can no longer be "
            "downloaded (output URLs last about 7 days; keep the journal on so local copies are "
            'made while they live, or create tasks with storage="persistent")',
            status=status,
        )
        self.url = url


class TaskFailed(HiAPIError):
    """A task being waited on ended without a result (``fail``, ``cancelled``, ``error``…);
    ``.task`` holds it and ``.task_status`` the server's own word."""

    def __init__(self, task: Any) -> None:
        err = getattr(task, "error", None)
        self.task = task
        self.task_id = getattr(task, "task_id", None)
        self.task_status = str(getattr(task, "status", None) or "fail")
        self.code = getattr(err, "code", None)
        reason = getattr(err, "message", None) or "no reason given"
        ended = "failed" if self.task_status == "fail" else f"ended {self.task_status!r}"
        super().__init__(f"Task {self.task_id} {ended}: {reason}", error_code=self.code)


class PollTimeout(HiAPIError):
    """Waiting gave up; the task itself may still finish on the server."""

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        self.timeout = timeout
        super().__init__(
            f"Task {task_id} did not finish within {timeout:g}s; it may still complete: "
            + (
                f"%hiapi status {task_id} (or client.tasks.wait) resumes watching it"
                if in_ipython()
                else f"client.tasks.wait({task_id!r}) resumes watching it"
            )
        )


class NotSubmitted(HiAPIError):
    """A request that waited for a concurrency slot and was never sent: its batch stopped."""


class WebhookVerificationError(HiAPIError):
    """A callback could not be verified; do not trust its body."""


_BY_ERROR_CODE: dict[str, type[APIError]] = {
    "INVALID_REQUEST": InvalidRequestError,
    "MODEL_UNAVAILABLE": ModelUnavailableError,
    "IDEMPOTENCY_KEY_PROCESSING": IdempotencyKeyProcessingError,
    "IDEMPOTENCY_KEY_MISMATCH": IdempotencyKeyMismatchError,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: IdempotencyKeyProcessingError,
    422: IdempotencyKeyMismatchError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_for(
    status: int, error_code: str | None, message: str, retry_after: float | None = None
) -> APIError:
    """The exception for a non-2xx answer: the error code wins over the status."""
    cls = _BY_ERROR_CODE.get(error_code or "") or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(message, status=status, error_code=error_code, retry_after=retry_after)
