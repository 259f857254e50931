"""Session settings: where to send tasks, how to show and keep results.

The API key lives here in memory only: never printed (the repr says whether
it is set), never written to the journal or to a notebook.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import RequestValidationError

BUDGET_RANGE = (0.1, 1000.0)  # requests a second per key: creates and polls together
POLL_MODES = ("list", "detail")


def _env_number(name: str, default: float) -> float | str:
    """A number from the environment; text that is not one is returned as is, to be
    refused by ``check_setting`` with the variable's name."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        return text


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    default_model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 600.0  # how long a cell waits for one task
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    request_budget: float = 2.0  # requests a second per key, creates and polls together
    poll_mode: str = "list"  # "detail": one request per task, for a server whose list misbehaves
    embed_limit: int = 20 * 2**20  # media up to this size are embedded in the notebook
    outputs_dir: str = "hiapi-outputs"
    max_output_mb: float = 2048.0  # a local copy larger than this is not kept
    journal: bool = True  # record, cache and keep local copies
    home: str | None = None  # journal folder; HIAPI_HOME, else .hiapi/

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            default_model=os.environ.get("HIAPI_DEFAULT_MODEL") or None,
            poll_interval=_env_float("HIAPI_POLL_INTERVAL", 1.0),
            max_poll_interval=_env_float("HIAPI_MAX_POLL_INTERVAL", 10.0),
            request_budget=check_setting(
                "request_budget", _env_number("HIAPI_REQUEST_BUDGET", 2.0), "HIAPI_REQUEST_BUDGET"
            ),
            poll_mode=check_setting(
                "poll_mode", os.environ.get("HIAPI_POLL_MODE", "list").lower(), "HIAPI_POLL_MODE"
            ),
            journal=os.environ.get("HIAPI_JOURNAL", "1").lower() not in ("0", "false", "off", "no"),
        )

    def with_changes(self, **changes: Any) -> Settings:
        names = {f.name for f in fields(self)}
        for key, value in list(changes.items()):
            if key not in names:
                raise RequestValidationError(
                    f"unknown setting {key!r}; settings are: {', '.join(sorted(names - {'api_key'}))}"
                )
            changes[key] = check_setting(key, _coerce(key, value, getattr(self, key)))
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """For display: everything but the key, which only says whether it is set."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        key_set = bool(self.api_key or os.environ.get("HIAPI_API_KEY"))
        shown["api_key"] = "set" if key_set else "missing (HIAPI_API_KEY or %hiapi login)"
        shown["base_url"] = self.base_url or os.environ.get("HIAPI_BASE_URL") or "https://api.hiapi.ai/v1"
        return shown


def _coerce(key: str, value: Any, current: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.lower() in ("none", "null", ""):
        return None
    if isinstance(current, bool) or key == "journal":
        if value.lower() in ("1", "true", "on", "yes"):
            return True
        if value.lower() in ("0", "false", "off", "no"):
            return False
        raise RequestValidationError(f"setting {key} takes true or false, not {value!r}")
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            return type(current)(float(value)) if isinstance(current, int) else float(value)
        except ValueError:
            if key == "request_budget":
                return value  # check_setting refuses it, naming the range
            raise RequestValidationError(f"setting {key} takes a number, not {value!r}") from None
    return value


def check_setting(key: str, value: Any, source: str | None = None) -> Any:
    """Refuse a value outside its range with one line that names the range."""
    name = source or f"setting {key}"
    if key == "request_budget":
        low, high = BUDGET_RANGE
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise RequestValidationError(
                f"{name} takes requests per second from {low:g} to {high:g} (default 2), not {value!r}"
            )
        return float(value)
    if key == "poll_mode" and value not in POLL_MODES:
        raise RequestValidationError(
            f"{name} takes list (one request for every task) or detail (one per task), not {value!r}"
        )
    return value
