"""Session settings: where to send tasks, how to show and keep results.

The API key lives here in memory only: never printed (the repr says whether
it is set), never written to the journal or to a notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import RequestValidationError


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


MAX_INPUT_MB = 1024.0  # the most max_input_mb may be: a data: URI travels in one JSON body


@dataclass(frozen=True)
class Settings:
    default_model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 600.0  # how long a cell waits for one task
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    embed_limit: int = 20 * 2**20  # media up to this size are embedded in the notebook
    outputs_dir: str = "hiapi-outputs"
    max_output_mb: float = 2048.0  # a local copy larger than this is not kept
    max_input_mb: float = 20.0  # a media input sent inline larger than this is refused
    journal: bool = True  # record, cache and keep local copies
    home: str | None = None  # journal folder; HIAPI_HOME, else .hiapi/

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            default_model=os.environ.get("HIAPI_DEFAULT_MODEL") or None,
            poll_interval=_env_float("HIAPI_POLL_INTERVAL", 1.0),
            max_poll_interval=_env_float("HIAPI_MAX_POLL_INTERVAL", 10.0),
            max_input_mb=_input_limit(os.environ.get("HIAPI_MAX_INPUT_MB")),
            journal=os.environ.get("HIAPI_JOURNAL", "1").lower() not in ("0", "false", "off", "no"),
        )

    def with_changes(self, **changes: Any) -> Settings:
        names = {f.name for f in fields(self)}
        for key, value in list(changes.items()):
            if key not in names:
                raise RequestValidationError(
                    f"unknown setting {key!r}; settings are: {', '.join(sorted(names - {'api_key'}))}"
                )
            changes[key] = _coerce(key, value, getattr(self, key))
        limit = changes.get("max_input_mb", self.max_input_mb)
        if "max_input_mb" in changes and not _input_limit_ok(limit):
            raise RequestValidationError(
                f"setting max_input_mb takes megabytes per media input, above 0 and at most "
                f"{MAX_INPUT_MB:g}, not {limit!r}"
            )
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """For display: everything but the key, which only says whether it is set."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        key_set = bool(self.api_key or os.environ.get("HIAPI_API_KEY"))
        shown["api_key"] = "set" if key_set else "missing (HIAPI_API_KEY or %hiapi login)"
        shown["base_url"] = self.base_url or os.environ.get("HIAPI_BASE_URL") or "https://api.hiapi.ai/v1"
        return shown


def _input_limit_ok(limit: Any) -> bool:
    return not isinstance(limit, bool) and isinstance(limit, int | float) and 0 < limit <= MAX_INPUT_MB


def _input_limit(text: str | None) -> float:
    """HIAPI_MAX_INPUT_MB, or the default when unset; a bad value is one clear line."""
    if text is None or not text.strip():
        return 20.0
    try:
        limit = float(text)
    except ValueError:
        limit = float("nan")
    if not _input_limit_ok(limit):
        raise RequestValidationError(
            f"HIAPI_MAX_INPUT_MB takes megabytes per media input, above 0 and at most "
            f"{MAX_INPUT_MB:g}, not {text!r}"
        )
    return limit


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
            raise RequestValidationError(f"setting {key} takes a number, not {value!r}") from None
    return value
