"""User errors as IPython ``UsageError``s: one line, no traceback (as jupysql's
``exception_factory``). Every magic handler goes through ``one_line_errors``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError

from ..errors import HiAPIError

F = TypeVar("F", bound=Callable[..., Any])


def one_line(exc: BaseException) -> str:
    """The message on one line (servers and users put newlines in odd places)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def usage_error(message: str) -> UsageError:
    return UsageError(" ".join(message.split()))


def one_line_errors(handler: F) -> F:
    """Turn what a user can cause (a bad option, a refused request, a missing key)
    into one line; anything else is a bug and keeps its traceback."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except UsageError:
            raise
        except (HiAPIError, ValueError) as exc:
            raise usage_error(one_line(exc)) from None

    return wrapper  # type: ignore[return-value]
