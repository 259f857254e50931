"""User errors as IPython ``UsageError``s: one line, no traceback (as jupysql's
``exception_factory``). Every magic handler goes through ``one_line_errors``.

A problem the cell already shows (a refused create in its red bar, an interrupted
wait noted beside the status) is raised as ``ShownInCell``: the cell still counts as
failed, so Run All stops there, but nothing is printed a second time."""

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


class ShownInCell(UsageError):
    """A problem already on screen in the cell's status views; printed by nobody."""


def quiet_handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """IPython's handler for ``ShownInCell``: show nothing (the views did), yet the cell
    fails, so queued cells are not run. Other custom exceptions go to the handler that
    was registered before ours."""
    previous = getattr(shell, "_hiapi_previous_custom", None)
    if not issubclass(etype, ShownInCell) and previous is not None:
        return previous[1](etype, value, tb, tb_offset)
    return []


def install_quiet_handler(shell: Any) -> None:
    """Register ``quiet_handler`` for ``ShownInCell``, keeping any custom handler already there."""
    if ShownInCell in shell.custom_exceptions:
        return
    if shell.custom_exceptions:
        shell._hiapi_previous_custom = (shell.custom_exceptions, shell.CustomTB)
    shell.set_custom_exc((*shell.custom_exceptions, ShownInCell), quiet_handler)


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
