"""Session settings: where to send tasks, how to show and keep results.

The API key lives here in memory only: never printed (the repr says whether
it is set), never written to the journal or to a notebook.

Every setting is checked where it enters (the environment, ``%hiapi config``,
``configure(...)``): a bad value is one line naming the allowed range, before
anything is sent. ``nan`` as a poll interval once made thousands of requests
for one task.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import RequestValidationError
from .models import MAX_WAIT_SECONDS, api_key_problem, base_url_problem, number_problem

# name: (lowest, highest, whole numbers only)
RANGES: dict[str, tuple[float, float, bool]] = {
    "timeout": (0.001, MAX_WAIT_SECONDS, False),  # seconds a cell waits for one task
    "poll_interval": (0.01, 3600.0, False),
    "max_poll_interval": (0.01, 3600.0, False),
    "embed_limit": (0, 2**30, True),
    "max_output_mb": (0.001, 10**6, False),
    "max_input_mb": (0.001, 1024.0, False),  # a media input sent inline (a data: URI) travels in one body
}
_ENV_NUMBERS = {
    "poll_interval": "HIAPI_POLL_INTERVAL",
    "max_poll_interval": "HIAPI_MAX_POLL_INTERVAL",
    "max_input_mb": "HIAPI_MAX_INPUT_MB",
}
# What a saved notebook holds of each result: previews linked to the local copies (light),
# the originals themselves (self-contained, heavy) or nothing (links to the local copies).
EMBED_MODES = ("preview", "full", "none")

# Which front end draws the outputs (views/frontend.py decides with "auto", the default):
# jupyterlab and notebook have file routes, vscode and colab do not, headless runs nobody
# watches, terminal and script get text lines.
FRONTENDS = ("jupyterlab", "notebook", "vscode", "colab", "headless", "terminal", "script")
FRONTEND_CHOICES = ("auto", *FRONTENDS)

DEFAULT_SPEND_LIMIT = 5.0  # USD a kernel session sends before it asks: a typo like -n 100 on video
MAX_SPEND_LIMIT = 1_000_000.0
BUDGET_RANGE = (0.1, 1000.0)  # requests a second per key: creates and polls together
POLL_MODES = ("list", "detail")


def _env_number(name: str, default: float | None) -> float | str | None:
    """A number from the environment; text that is not one is returned as is, to be
    refused by ``check_setting`` with the variable's name."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        return text


def _env_budget() -> float | str | None:
    text = os.environ.get("HIAPI_REQUEST_BUDGET", "").strip()
    if text.lower() in ("none", "null"):
        return None
    if not text.isascii():  # float() reads other scripts' digits: refused as typed
        return text
    return _env_number("HIAPI_REQUEST_BUDGET", None)  # unset: no ceiling


class HiddenKey(str):
    """The API key as settings hold it: a plain string everywhere but in a ``repr``,
    so a traceback that prints its frames' variables shows no key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<HiAPI key hidden>"


def hide_key(value: Any) -> Any:
    return HiddenKey(value) if isinstance(value, str) and not isinstance(value, HiddenKey) else value


def _env_float(name: str, default: float) -> float | str:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return float(text)
    except ValueError:
        return text  # refused with its range by Settings


@dataclass(frozen=True)
class Settings:
    default_model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = 600.0  # how long a cell waits for one task (None: no limit)
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    embed: str = "preview"  # see EMBED_MODES
    # A ceiling on requests a second per key, creates and polls together (None: none; the
    # rate is learnt from the server's answers either way)
    request_budget: float | None = None
    poll_mode: str = "list"  # "detail": one request per task, for a server whose list misbehaves
    embed_limit: int = 20 * 2**20  # with embed=full, media up to this size are embedded in the notebook
    outputs_dir: str = "hiapi-outputs"
    max_output_mb: float = 2048.0  # a local copy larger than this is not kept
    max_input_mb: float = 20.0  # a media input sent inline larger than this is refused
    journal: bool = True  # record, cache and keep local copies
    home: str | None = None  # journal folder; HIAPI_HOME, else .hiapi/
    frontend: str = "auto"  # see FRONTEND_CHOICES; HIAPI_FRONTEND
    spend_limit: float | None = DEFAULT_SPEND_LIMIT  # USD a session sends before it asks (None: no limit)

    def __post_init__(self) -> None:
        if self.api_key is not None:
            object.__setattr__(self, "api_key", hide_key(self.api_key))
        problem = _problem(self)
        if problem:
            raise RequestValidationError(problem)

    @classmethod
    def from_env(cls) -> Settings:
        defaults: dict[str, Any] = {f.name: f.default for f in fields(cls)}
        values: dict[str, Any] = {name: _env_float(var, defaults[name]) for name, var in _ENV_NUMBERS.items()}
        for name, var in _ENV_NUMBERS.items():
            lo, hi, integer = RANGES[name]
            problem = number_problem(var, values[name], lo, hi, integer=integer)
            if problem:
                raise RequestValidationError(problem)
        return cls(
            default_model=os.environ.get("HIAPI_DEFAULT_MODEL") or None,
            request_budget=check_setting("request_budget", _env_budget(), "HIAPI_REQUEST_BUDGET"),
            poll_mode=check_setting(
                "poll_mode", os.environ.get("HIAPI_POLL_MODE", "list").lower(), "HIAPI_POLL_MODE"
            ),
            journal=os.environ.get("HIAPI_JOURNAL", "1").lower() not in ("0", "false", "off", "no"),
            frontend=check_setting(
                "frontend", os.environ.get("HIAPI_FRONTEND", "").strip().lower() or "auto", "HIAPI_FRONTEND"
            ),
            spend_limit=_spend_limit(os.environ.get("HIAPI_SPEND_LIMIT") or None, "HIAPI_SPEND_LIMIT"),
            **values,
        )

    def with_changes(self, **changes: Any) -> Settings:
        names = {f.name for f in fields(self)}
        if "api_key" in changes:
            changes["api_key"] = hide_key(changes["api_key"])
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
        if self.request_budget is None:
            shown["request_budget"] = "none (no ceiling: the rate is learnt, see learnt_rate)"
        return shown


def _problem(s: Settings) -> str | None:
    """The first setting that is wrong, as one line naming what is allowed; None if all fit."""
    for name, (lo, hi, integer) in RANGES.items():
        value = getattr(s, name)
        if name == "timeout" and value is None:
            continue
        problem = number_problem(name, value, lo, hi, integer=integer)
        if problem:
            return problem + (" (or none, to wait without limit)" if name == "timeout" else "")
    problem = limit_problem(s.spend_limit)
    if problem:
        return problem
    for name in ("default_model", "home"):
        value = getattr(s, name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            return f"{name} must be a non-empty string or none, not {value!r}"[:200]
    if not isinstance(s.outputs_dir, str) or not s.outputs_dir.strip():
        return f"outputs_dir must be a folder name, not {s.outputs_dir!r}"[:200]
    if s.frontend not in FRONTEND_CHOICES:
        return _frontend_problem("frontend", s.frontend)
    if s.embed not in EMBED_MODES:
        return f"embed takes {', '.join(EMBED_MODES)}, not {s.embed!r}"[:200]
    if not isinstance(s.journal, bool):
        return f"journal takes true or false, not {s.journal!r}"[:200]
    if s.base_url is not None:
        problem = base_url_problem(s.base_url)
        if problem:
            return problem.replace("HIAPI_BASE_URL", "base_url", 1)
    if s.api_key:
        return api_key_problem(s.api_key)
    return None


def _coerce(key: str, value: Any, current: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in ("embed", "frontend"):  # "none" is one of embed's words, not "no value"
        return value.strip().lower()
    if key == "spend_limit":
        return _spend_limit(value, "setting spend_limit")
    if value.lower() in ("none", "null", ""):
        return None
    if isinstance(current, bool) or key == "journal":
        if value.lower() in ("1", "true", "on", "yes"):
            return True
        if value.lower() in ("0", "false", "off", "no"):
            return False
        raise RequestValidationError(f"setting {key} takes true or false, not {value!r}")
    if key == "request_budget":  # a number, or the text as given: check_setting names the range
        if not value.isascii():  # float() reads other scripts' digits ("٣"): refused as typed
            return value
        try:
            return float(value)
        except ValueError:
            return value
    if key in RANGES:
        lo, hi, integer = RANGES[key]
        number: float | str
        try:
            number = float(value)
        except ValueError:
            number = value
        if integer and isinstance(number, float) and number.is_integer():
            number = int(number)
        problem = number_problem(key, number, lo, hi, integer=integer)
        if problem:
            raise RequestValidationError(problem)
        return number
    return value


def limit_problem(value: Any, name: str = "spend_limit") -> str | None:
    """Why ``value`` is not a spend limit (USD from 0, or None for no limit)."""
    if value is None:
        return None
    problem = number_problem(name, value, 0, MAX_SPEND_LIMIT)
    return problem and f"{problem} (USD; none turns the limit off)"


def _spend_limit(text: str | None, source: str) -> float | None:
    """USD from text: ``none`` or ``off`` turns the limit off; nothing at all keeps the default
    (an empty ``%hiapi config spend_limit=`` is refused rather than read as "no limit")."""
    if text is None:
        return DEFAULT_SPEND_LIMIT
    word = text.strip().lower().removeprefix("$")
    if word in ("none", "off", "no"):
        return None
    try:
        value = float(word) if word.isascii() else math.nan  # float() reads a full-width ５ too
    except ValueError:
        value = math.nan
    problem = limit_problem(value, source) if word else None
    if problem or not word:
        shown = text.strip()[:40]
        raise RequestValidationError(
            f"{source} takes USD from 0 to {MAX_SPEND_LIMIT:,.0f} (e.g. 5 or 0.50), or none to turn "
            f"the limit off, not {shown!r}"
        )
    return value


def check_setting(key: str, value: Any, source: str | None = None) -> Any:
    """Refuse a value outside its range with one line that names the range."""
    name = source or f"setting {key}"
    if key == "request_budget":
        low, high = BUDGET_RANGE
        if value is None:
            return None  # no ceiling
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise RequestValidationError(
                f"{name} takes requests per second from {low:g} to {high:g} as a ceiling, or none "
                f"(the default: no ceiling, the rate is learnt), not {value!r}"
            )
        return float(value)
    if key == "frontend" and value not in FRONTEND_CHOICES:
        raise RequestValidationError(_frontend_problem(name, value))
    if key == "poll_mode" and value not in POLL_MODES:
        raise RequestValidationError(
            f"{name} takes list (one request for every task) or detail (one per task), not {value!r}"
        )
    return value


def _frontend_problem(name: str, value: Any) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"{name} takes {', '.join(FRONTEND_CHOICES)} (auto: detect it), not {shown}"
