"""Parsing of the ``%%hiapi`` line: no IPython here, so it is testable alone.

Every mistake raises ``LineError`` with one line that names the fix, before
anything is sent.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
USAGE = (
    "%%hiapi [MODEL] [-o VAR] [-n N] [--no-wait] [--fresh] [--route R] [--input JSON] "
    "[--callback URL] [--timeout S] [--save DIR] [--sweep FIELD=a,b] [--models a,b] "
    "[--concurrency N] [--force] [--FIELD VALUE ...]"
)


class LineError(ValueError):
    """A mistake in the magic's line; the message is shown as is."""


@dataclass
class CellArgs:
    model: str | None = None
    out: str | None = None
    n: int = 1
    wait: bool = True
    fresh: bool = False
    force: bool = False  # send a model or field the catalogue would call a typo
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


_VALUE_OPTIONS = {
    "-o",
    "--out",
    "-n",
    "--route",
    "--storage",
    "--input",
    "--callback",
    "--timeout",
    "--save",
    "--sweep",
    "--models",
    "--model",
    "--concurrency",
}
_FLAGS = {"--no-wait", "--fresh", "--wait", "--force"}


def decode_value(text: str) -> Any:
    """JSON when it decodes (5, true, [1,2]), the text itself otherwise (16:9, 1K)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_line(line: str) -> CellArgs:
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError as exc:
        raise LineError(f"cannot read the line ({exc}); check its quotes") from None
    args = CellArgs()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok.startswith("-") or _is_number(tok):
            if args.model is None and not args.models:
                args.model = tok
                continue
            raise LineError(
                f"unexpected {tok!r} on the line: the prompt goes in the cell body "
                f"below the line; usage: {USAGE}"
            )
        name, eq, inline = tok.partition("=")
        if name in _FLAGS:
            if eq:
                raise LineError(f"{name} takes no value")
            if name == "--fresh":
                args.fresh = True
            elif name == "--force":
                args.force = True
            else:
                args.wait = name == "--wait"
            continue
        if not name.startswith("--") and name not in _VALUE_OPTIONS:
            raise LineError(
                f"unknown option {name!r}; options: -o VAR, -n N, or --FIELD VALUE for a model input"
            )
        if eq:
            value = inline
        else:
            if i >= len(tokens) or (tokens[i].startswith("--") and not _is_number(tokens[i])):
                raise LineError(f"option {name} needs a value, e.g. {_example(name)}")
            value = tokens[i]
            i += 1
        _apply(args, name, value)
    return args


def _apply(args: CellArgs, name: str, value: str) -> None:
    if name in ("-o", "--out"):
        if not IDENTIFIER.match(value):
            raise LineError(f"-o needs a Python variable name, not {value!r}")
        args.out = value
    elif name == "-n":
        args.n = _count(name, value, high=100)
    elif name == "--model":
        args.model = value
    elif name == "--route":
        args.route = value
    elif name == "--storage":
        args.storage = value
    elif name == "--input":
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise LineError(
                f"--input is not valid JSON ({exc.msg} at column {exc.colno}); "
                'quote it: --input \'{"aspect_ratio": "16:9"}\''
            ) from None
        if not isinstance(data, dict):
            raise LineError("--input must be a JSON object, e.g. --input '{\"duration\": 5}'")
        args.input.update(data)
    elif name == "--callback":
        if not value.startswith(("http://", "https://")):
            raise LineError(f"--callback needs an http(s) URL, not {value!r}")
        args.callback = value
    elif name == "--timeout":
        try:
            args.timeout = float(value)
        except ValueError:
            raise LineError(f"--timeout needs seconds, not {value!r}") from None
        if args.timeout <= 0:
            raise LineError("--timeout must be more than 0 seconds")
    elif name == "--save":
        args.save = value
    elif name == "--sweep":
        field_name, eq, values = value.partition("=")
        if not eq or not field_name or not values:
            raise LineError(f"--sweep needs FIELD=v1,v2 (e.g. --sweep aspect_ratio=1:1,16:9), not {value!r}")
        args.sweeps[_field(field_name)] = [decode_value(v) for v in values.split(",") if v != ""]
    elif name == "--concurrency":
        args.concurrency = _count(name, value)
    elif name == "--models":
        args.models = [m for m in value.split(",") if m]
        if not args.models:
            raise LineError("--models needs a comma-separated list, e.g. --models a,b")
    else:
        args.fields[_field(name[2:])] = decode_value(value)


def _count(name: str, value: str, high: int | None = None) -> int:
    """A whole number of tasks, at least 1 (and at most ``high``)."""
    try:
        count = int(value)
    except ValueError:
        raise LineError(f"{name} needs a whole number of tasks, not {value!r}") from None
    if count < 1 or (high is not None and count > high):
        bound = f"between 1 and {high}" if high is not None else "at least 1"
        raise LineError(f"{name} must be {bound}, not {count}")
    return count


def _field(name: str) -> str:
    if not FIELD_NAME.match(name):
        raise LineError(f"{name!r} is not a field name; fields look like --aspect_ratio 16:9")
    return name.replace("-", "_")


def _is_number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _example(name: str) -> str:
    return {
        "-o": "-o img",
        "-n": "-n 4",
        "--input": "--input '{\"duration\": 5}'",
        "--timeout": "--timeout 300",
        "--callback": "--callback https://example.com/hook",
        "--sweep": "--sweep aspect_ratio=1:1,16:9",
        "--models": "--models a,b",
    }.get(name, f"{name} VALUE")


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
        if not word.startswith("-") or _is_number(word):
            break
        name = word.partition("=")[0]
        i += 1 if (name in _FLAGS or "=" in word) else 2
    if i >= len(words):
        return text.strip(), ""
    return text[: words[i].start()].strip(), text[words[i].start() :].strip()


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
        return str(namespace[name]) if name in namespace else token

    return _PLACEHOLDER.sub(sub, text)
