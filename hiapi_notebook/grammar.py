"""The ``%%hiapi`` line: one table of its options and everything derived from it:
the parser, ``format_line`` (its inverse, for "Copy as magic"), the usage text and
the names tab completion offers. ``subcommands`` does the same for ``%hiapi NAME``.

No IPython here, so it is testable alone, and both the magics and the prompt form
read it without importing each other. Every mistake raises ``LineError`` with one
line that names the fix, before anything is sent.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .catalog import closest

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
MAX_COUNT = 100  # -n: tasks of one request in one cell


class LineError(ValueError):
    """A mistake in the magic's line; the message is shown as is."""


@dataclass
class CellArgs:
    """What a ``%%hiapi`` line asks for, typed."""

    model: str | None = None
    out: str | None = None
    n: int = 1
    wait: bool = True
    fresh: bool = False
    force: bool = False  # send a model or field the catalogue would call a typo
    yes: bool = False  # send even when the estimate passes the session's spend_limit
    route: str | None = None
    storage: str | None = None
    input: dict[str, Any] = field(default_factory=dict)  # --input JSON
    fields: dict[str, Any] = field(default_factory=dict)  # --FIELD VALUE
    callback: str | None = None
    timeout: float | None = None
    save: str | None = None
    sweeps: dict[str, list[Any]] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    concurrency: int = 8  # tasks in flight at once for -n, --sweep and --models


# --- values ------------------------------------------------------------------------------


def decode_value(text: str) -> Any:
    """JSON when it decodes (5, true, [1,2]), the text itself otherwise (16:9, 1K)."""
    try:
        return json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        raise LineError("a value is nested too deeply to be JSON a model takes") from None


def is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _variable(name: str, text: str) -> str:
    if not IDENTIFIER.match(text):
        raise LineError(f"{name} needs a Python variable name, not {text!r}")
    return text


def _count(high: int | None = None) -> Callable[[str, str], int]:
    def convert(name: str, text: str) -> int:
        """A whole number of tasks, at least 1 (and at most ``high``)."""
        try:
            count = int(text)
        except ValueError:
            raise LineError(f"{name} needs a whole number of tasks, not {text!r}") from None
        if count < 1 or (high is not None and count > high):
            bound = f"between 1 and {high}" if high is not None else "at least 1"
            raise LineError(f"{name} must be {bound}, not {count}")
        return count

    return convert


def _seconds(name: str, text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise LineError(f"{name} needs seconds, not {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise LineError(f"{name} must be more than 0 seconds (and finite), not {text!r}")
    return seconds


def _json_object(name: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise LineError(f"{name} is nested too deeply to be JSON a model takes") from None
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and text.rstrip().endswith("}"):  # whole, so quoted: say where
            at = exc.pos
            shown = f"{text[max(0, at - 20) : at]}▸{text[at : at + 20]}"
            raise LineError(f"{name} is not valid JSON: {exc.msg} at column {exc.colno} ({shown})") from None
        raise LineError(
            f"{name} is not valid JSON ({exc.msg} at column {exc.colno}); "
            'quote it: --input \'{"aspect_ratio": "16:9"}\''
        ) from None
    except ValueError as exc:  # well-formed, yet refused: an integer of more than 4300 digits
        reason = str(exc).split(";")[0]  # the rest tells a Python programmer how to lift the limit
        raise LineError(f"{name} is not JSON a model takes ({reason}); shorten the number") from None
    if not isinstance(data, dict):
        raise LineError(f"{name} must be a JSON object, e.g. --input '{{\"duration\": 5}}'")
    return data


def _url(name: str, text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise LineError(f"{name} needs an http(s) URL, not {text!r}")
    return text


def _sweep(name: str, text: str) -> tuple[str, list[Any]]:
    field_name, eq, values = text.partition("=")
    if not eq or not field_name or not values:
        raise LineError(f"{name} needs FIELD=v1,v2 (e.g. {name} aspect_ratio=1:1,16:9), not {text!r}")
    return field_name_of(field_name), [decode_value(v) for v in values.split(",") if v != ""]


def _names(name: str, text: str) -> list[str]:
    names = [m for m in text.split(",") if m]
    if not names:
        raise LineError(f"{name} needs a comma-separated list, e.g. {name} a,b")
    return names


def _text(name: str, text: str) -> str:
    return text


def field_name_of(name: str) -> str:
    """``--aspect-ratio`` and ``--aspect_ratio`` both name the field ``aspect_ratio``."""
    if not FIELD_NAME.match(name):
        raise LineError(f"{name!r} is not a field name; fields look like --aspect_ratio 16:9")
    return name.replace("-", "_")


# --- the options table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of the ``%%hiapi`` line. A flag has no ``metavar`` and sets
    ``dest`` to ``value``; a value option converts its text with ``convert``."""

    names: tuple[str, ...]  # the first is the one shown
    dest: str
    help: str
    metavar: str = ""
    convert: Callable[[str, str], Any] = _text
    value: Any = True  # what a flag sets
    shown: bool = True  # listed in usage, help and completion
    sample: str = ""  # a concrete use, for "needs a value, e.g. ..."

    @property
    def is_flag(self) -> bool:
        return not self.metavar

    @property
    def example(self) -> str:
        return f"{self.names[0]} {self.metavar}".strip()

    def apply(self, args: CellArgs, name: str, text: str | None) -> None:
        if self.is_flag:
            setattr(args, self.dest, self.value)
            return
        assert text is not None
        value = self.convert(name, text)
        if self.dest == "sweeps":
            args.sweeps[value[0]] = value[1]
        elif self.dest == "input":
            args.input.update(value)
        else:
            setattr(args, self.dest, value)


# fmt: off
OPTIONS: tuple[Option, ...] = (
    Option(("-o", "--out"), "out", "bind the result (a Generation; a list with -n, --sweep or --models)",
           "VAR", _variable, sample="-o img"),
    Option(("-n",), "n", "N tasks of the same request, shown as a grid", "N", _count(MAX_COUNT),
           sample="-n 4"),
    Option(("--no-wait",), "wait", "return at once; status and result still appear in this cell",
           value=False),
    Option(("--wait",), "wait", "wait for the result (the default)", shown=False),
    Option(("--fresh",), "fresh", "submit anew instead of reusing a recorded result"),
    Option(("--route",), "route", "send through this HiAPI route of the model", "R"),
    Option(("--storage",), "storage", "'persistent' keeps outputs past their 7 days (billed)", "S"),
    Option(("--input",), "input", "model inputs as one JSON object", "JSON", _json_object,
           sample="--input '{\"duration\": 5}'"),
    Option(("--callback",), "callback", "HiAPI POSTs the finished task to this URL", "URL", _url,
           sample="--callback https://example.com/hook"),
    Option(("--timeout",), "timeout", "stop waiting after S seconds (the task may still finish)", "S",
           _seconds, sample="--timeout 300"),
    Option(("--save",), "save", "copy the outputs into this folder", "DIR", sample="--save figures"),
    Option(("--sweep",), "sweeps", "one task per value (repeat for a cross product)", "FIELD=a,b",
           _sweep, sample="--sweep aspect_ratio=1:1,16:9"),
    Option(("--models",), "models", "one task per model, side by side", "a,b", _names,
           sample="--models a,b"),
    Option(("--model",), "model", "the model, when not the first word", "MODEL", shown=False),
    Option(("--concurrency",), "concurrency", "at most N of those tasks in flight at once (default 8)",
           "N", _count(), sample="--concurrency 4"),
    Option(("--force",), "force", "send a model or field name the catalogue thinks is a typo"),
    Option(("--yes",), "yes", "send even if the estimate passes this session's spend_limit"),
)
# fmt: on
# What VALUE may be for a media field (--input_urls, --first_frame_url, ...), for help and README.
MEDIA_VALUES = (
    "media fields (*_url, *_urls, image_input, ...): VALUE is an http(s) URL, a data: URI, an asset:// "
    "id, a notebook variable (a result, bytes, a PIL image, a numpy array) or a file beside the "
    "notebook, or a JSON list of those; a word that is both a variable and a file means the variable"
)
_BY_NAME: dict[str, Option] = {name: option for option in OPTIONS for name in option.names}
# Names the line reads as its own options, never as model fields (``--input`` can send those).
RESERVED_FIELDS = frozenset(name.lstrip("-").replace("-", "_") for name in _BY_NAME)


def option_names() -> list[str]:
    """The options tab completion offers, in the table's order."""
    return [option.names[0] for option in OPTIONS if option.shown]


def usage() -> str:
    words = " ".join(f"[{option.example}]" for option in OPTIONS if option.shown)
    return f"%%hiapi [MODEL] {words} [--FIELD VALUE ...]"


# --- parsing ---------------------------------------------------------------------------------


def parse_line(line: str) -> CellArgs:
    """The typed arguments of a ``%%hiapi`` line (everything after ``%%hiapi``)."""
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError as exc:
        raise LineError(f"cannot read the line ({exc}); check its quotes") from None
    args = CellArgs()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or is_number(token):
            if args.model is None and not args.models:
                args.model = token
                continue
            raise LineError(
                f"unexpected {token!r} on the line: the prompt goes in the cell body "
                f"below the line; usage: {usage()}"
            )
        name, eq, inline = token.partition("=")
        option = _BY_NAME.get(name)
        if option is not None and option.is_flag:
            if eq:
                raise LineError(f"{name} takes no value")
            option.apply(args, name, None)
            continue
        if option is None and not name.startswith("--"):
            raise LineError(
                f"unknown option {name!r}; options: -o VAR, -n N, or --FIELD VALUE for a model input"
            )
        if option is None:
            near = closest(name, [n for n, o in _BY_NAME.items() if o.is_flag and o.shown])
            if near is not None:  # --nowait is a mistyped flag, not a field waiting for its value
                raise LineError(f"unknown option {name}: did you mean {near}?")
        if eq:
            value = inline
        else:
            if i >= len(tokens) or (tokens[i].startswith("--") and not is_number(tokens[i])):
                sample = (option.sample or option.example) if option is not None else f"{name} VALUE"
                raise LineError(f"option {name} needs a value, e.g. {sample}")
            value = tokens[i]
            i += 1
        if option is not None:
            option.apply(args, name, value)
        else:
            args.fields[field_name_of(name[2:])] = decode_value(value)
    return args


def split_one_line(text: str) -> tuple[str, str]:
    """``%hiapi MODEL [options] prompt``: the options up front, then the prompt as
    typed (apostrophes and all). The prompt starts at the first word that is neither
    an option nor an option's value; ``--`` also ends the options."""
    words = list(re.finditer(r"\S+", text))
    i = 0
    while i < len(words):
        word = words[i].group(0)
        if word == "--":
            rest = text[words[i].end() :].strip()
            return text[: words[i].start()].strip(), rest
        if not word.startswith("-") or is_number(word):
            break
        option = _BY_NAME.get(word.partition("=")[0])
        i += 1 if ((option is not None and option.is_flag) or "=" in word) else 2
    if i >= len(words):
        return text.strip(), ""
    return text[: words[i].start()].strip(), text[words[i].start() :].strip()


def model_word(words: list[str]) -> str | None:
    """The first word that is neither an option nor an option's value (completion)."""
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            return word
        option = _BY_NAME.get(word)
        flag = option is not None and option.is_flag
        i += 1 if (flag or "=" in word or option is None and not word.startswith("--")) else 2
    return None


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """``{name}`` becomes the variable's value; unknown braces stay; ``{{`` is ``{``."""

    def sub(match: re.Match) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        if name not in namespace:
            return token
        try:
            return str(namespace[name])
        except Exception as exc:  # a broken __str__ is the notebook's, said in one line
            raise LineError(
                f"{{{name}}} cannot go into the prompt: str({name}) raised {type(exc).__name__}"
            ) from None

    return _PLACEHOLDER.sub(sub, text)


# --- formatting: the inverse of parse_line ----------------------------------------------------


def reads_back(text: str) -> bool:
    """True when ``text`` reads back as the same string (``decode_value`` leaves it alone)."""
    return decode_value(text) == text


def value_text(value: Any) -> str:
    """A field value as the line writes it: bare when it reads back as itself, else JSON."""
    if isinstance(value, str) and reads_back(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def format_option(name: str, value: Any) -> str:
    """``--name VALUE`` that ``parse_line`` reads back as exactly ``value``."""
    text = value_text(value)
    quoted = shlex.quote(text)
    return f"--{name}={quoted}" if text.startswith("-") else f"--{name} {quoted}"


def format_line(args: CellArgs) -> str:
    """The line (after ``%%hiapi``) that ``parse_line`` reads back as ``args``. Fields the
    line cannot name as ``--NAME`` (odd names, or names of its own options) go in ``--input``."""
    default = CellArgs()
    words = [shlex.quote(args.model)] if args.model else []
    for option in OPTIONS:
        value = getattr(args, option.dest)
        if option.dest in ("input", "model") or value == getattr(default, option.dest):
            continue
        if option.is_flag:
            if value == option.value and option.shown:
                words.append(option.names[0])
        elif option.dest == "sweeps":
            for name, values in value.items():
                words.append(f"--sweep {shlex.quote(name + '=' + ','.join(map(value_text, values)))}")
        elif option.dest == "models":
            words.append(f"--models {shlex.quote(','.join(value))}")
        else:
            words.append(f"{option.names[0]} {shlex.quote(value_text(value))}")
    loose = dict(args.input)
    for name, value in args.fields.items():
        if not IDENTIFIER.match(name) or name in RESERVED_FIELDS:
            loose[name] = value
        else:
            words.append(format_option(name, value))
    if loose:
        words.append("--input " + shlex.quote(json.dumps(loose, ensure_ascii=False)))
    return " ".join(words)


def format_cell(args: CellArgs, prompt: str) -> str:
    """A whole ``%%hiapi`` cell; braces in the prompt are doubled so they stay braces."""
    body = prompt.replace("{", "{{").replace("}", "}}")
    return f"%%hiapi {format_line(args)}\n{body}"


__all__ = [
    "CellArgs",
    "LineError",
    "OPTIONS",
    "format_cell",
    "format_line",
    "interpolate",
    "parse_line",
    "split_one_line",
    "usage",
]
