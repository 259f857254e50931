"""The subcommands of ``%hiapi`` (``help``, ``models``, ``status``…): one table, with
the typed arguments each handler receives, and the help text for the whole magic.
Like ``grammar``, no IPython here; mistakes raise ``LineError`` with one line."""

from __future__ import annotations

import math
import shlex
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .grammar import MEDIA_VALUES, OPTIONS, LineError, is_number, parse_line, usage

MAX_HISTORY = 100_000  # rows %hiapi history shows at most


@dataclass(frozen=True)
class NoArgs:
    pass


@dataclass(frozen=True)
class ModelsArgs:
    filter: str = ""


@dataclass(frozen=True)
class StatusArgs:
    task_id: str


@dataclass(frozen=True)
class ConfigArgs:
    name: str | None = None  # show this one setting
    changes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxArgs:
    speed: float | None = None
    balance: float | None = None  # USD the sandbox bills task estimates against (402 once spent)


@dataclass(frozen=True)
class HistoryArgs:
    limit: int = 20
    text: str = ""  # words found in the prompt
    model: str = ""
    status: str = ""


@dataclass(frozen=True)
class ExportArgs:
    path: str
    all: bool = False  # the whole folder's results, not only this notebook's


@dataclass(frozen=True)
class FormArgs:
    model: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


# What a subcommand's handler receives: one of these, by the subcommand's name.
SubcommandArgs: TypeAlias = (
    NoArgs | ModelsArgs | StatusArgs | ConfigArgs | SandboxArgs | HistoryArgs | ExportArgs | FormArgs
)


def _no_args(name: str) -> Callable[[str], NoArgs]:
    def parse(rest: str) -> NoArgs:
        if rest.strip():
            raise LineError(f"%hiapi {name} takes nothing after it, not {rest.strip()!r}")
        return NoArgs()

    return parse


def _parse_status(rest: str) -> StatusArgs:
    task_id = rest.strip()
    if not task_id:
        raise LineError("usage: %hiapi status TASK_ID (the id is shown in every status bar)")
    return StatusArgs(task_id)


def _parse_config(rest: str) -> ConfigArgs:
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise LineError(f"cannot read the line ({exc}); check its quotes") from None
    if len(words) == 1 and "=" not in words[0]:
        return ConfigArgs(name=words[0])
    changes = {}
    for item in words:
        key, eq, value = item.partition("=")
        if not eq:
            raise LineError(f"config takes key=value pairs, not {item!r}")
        if key == "api_key":
            raise LineError("use %hiapi login to set the key (it is never echoed)")
        changes[key] = value
    return ConfigArgs(changes=changes)


_SANDBOX_USAGE = "usage: %hiapi sandbox [--speed FACTOR] [--balance USD]"
MAX_SANDBOX_BALANCE = 1_000_000.0


def _parse_sandbox(rest: str) -> SandboxArgs:
    tokens = rest.split()
    if len(tokens) % 2 or any(t not in ("--speed", "--balance") for t in tokens[::2]):
        raise LineError(_SANDBOX_USAGE)
    given = dict(zip(tokens[::2], tokens[1::2]))
    if len(given) != len(tokens) // 2:
        raise LineError(_SANDBOX_USAGE)
    speed = balance = None
    if "--speed" in given:
        speed = _ascii_number(given["--speed"])
        if not math.isfinite(speed) or not 0 < speed <= 1000:
            raise LineError("--speed needs a number above 0 and at most 1000, e.g. %hiapi sandbox --speed 4")
    if "--balance" in given:
        balance = _ascii_number(given["--balance"].removeprefix("$"))
        if not math.isfinite(balance) or not 0 <= balance <= MAX_SANDBOX_BALANCE:
            raise LineError(
                f"--balance needs USD from 0 to {MAX_SANDBOX_BALANCE:,.0f}, "
                "e.g. %hiapi sandbox --balance 0.25"
            )
    return SandboxArgs(speed, balance)


def _ascii_number(text: str) -> float:
    """A number as typed in plain digits (a full-width ５ or nan-like text is NaN: refused)."""
    try:
        return float(text) if text.isascii() else math.nan
    except ValueError:
        return math.nan


def _parse_history(rest: str) -> HistoryArgs:
    """``[N] [words…] [--model M] [--status S] [-n N]``: a bare number is the row count."""
    try:
        tokens = shlex.split(rest)
    except ValueError as exc:
        raise LineError(f"cannot read the line ({exc}); check its quotes") from None
    limit, named = 20, {"--model": "", "--status": ""}
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("-n", *named):
            if i + 1 >= len(tokens):
                raise LineError(
                    f"{token} needs a value, e.g. %hiapi history {token} {_HISTORY_SAMPLES[token]}"
                )
            value = tokens[i + 1]
            if token == "-n":
                limit = _rows(value)
            else:
                named[token] = value
            i += 2
            continue
        if token.startswith("-") and is_number(token):
            limit = _rows(token)  # a negative count: refused with the usage
        if token.startswith("-"):
            raise LineError(
                f"unknown option {token!r}; usage: %hiapi history [N] [words] [--model M] [--status S] [-n N]"
            )
        if token.isdigit() and not words:  # a count (a full-width ５ is refused, not searched)
            limit = _rows(token)
        else:
            words.append(token)
        i += 1
    return HistoryArgs(limit, " ".join(words), named["--model"], named["--status"])


_HISTORY_SAMPLES = {"-n": "50", "--model": "seedance", "--status": "fail"}


def _rows(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_HISTORY:
        raise LineError(
            f"usage: %hiapi history [N] (N a whole number of rows, 1 to {MAX_HISTORY}), not {text!r}"
        )
    return int(text)


def _parse_export(rest: str) -> ExportArgs:
    """``FILE [--all]`` (``--all`` before or after the file); the file name is taken as
    written, spaces and backslashes included."""
    words = rest.strip().split(" ")
    every = "--all" in (words[0], words[-1])
    if every:
        words.remove("--all")
    path = " ".join(words).strip()
    if path.startswith("-"):
        raise LineError(f"unknown option {path.split()[0]!r}; usage: %hiapi export FILE.json [--all]")
    if not path:
        raise LineError("usage: %hiapi export FILE.json [--all] (--all: the whole folder's results)")
    return ExportArgs(path, every)


def _parse_form(rest: str) -> FormArgs:
    if not rest.strip():
        return FormArgs()
    args = parse_line(rest)
    return FormArgs(model=args.model, fields={**args.input, **args.fields})


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str  # what follows %hiapi
    help: str
    parse: Callable[[str], SubcommandArgs]


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("help", "help", "this text", _no_args("help")),
    Subcommand(
        "models",
        "models [filter]",
        "the catalogue: fields, allowed values, ranges",
        lambda rest: ModelsArgs(rest.strip()),
    ),
    Subcommand("status", "status TASK_ID", "watch any task of this key", _parse_status),
    Subcommand("login", "login", "type the key (kept in memory only)", _no_args("login")),
    Subcommand("config", "config [key=value ...]", "show or change settings", _parse_config),
    Subcommand(
        "sandbox",
        "sandbox [--speed F] [--balance B]",
        "use the built-in sandbox (no key, synthetic; B: USD it bills)",
        _parse_sandbox,
    ),
    Subcommand("connect", "connect", "HiAPI when a key is set, else the sandbox", _parse_sandbox),
    Subcommand(
        "history",
        "history [N] [words] [--model M] [--status S]",
        "the journal's latest results",
        _parse_history,
    ),
    Subcommand("wait", "wait", "wait for every task still running (--no-wait cells)", _no_args("wait")),
    Subcommand("export", "export FILE [--all]", "this notebook's results as a JSON manifest", _parse_export),
    Subcommand("spend", "spend", "estimated spend by day and model: session, folder", _no_args("spend")),
    Subcommand("form", "form [MODEL] [--FIELD VALUE ...]", "a prompt form", _parse_form),
)
SUBCOMMAND_NAMES = tuple(sub.name for sub in SUBCOMMANDS)
_SUBCOMMAND = {sub.name: sub for sub in SUBCOMMANDS}


def parse_subcommand(name: str, rest: str) -> SubcommandArgs:
    """The typed arguments of ``%hiapi NAME rest``."""
    return _SUBCOMMAND[name].parse(rest)


def help_text() -> str:
    width = max(len(option.example) for option in OPTIONS) + 2
    options = "\n".join(f"  {option.example:{width}}{option.help}" for option in OPTIONS if option.shown)
    subs = "\n".join(f"  %hiapi {sub.usage:34}{sub.help}" for sub in SUBCOMMANDS)
    media = textwrap.fill(
        MEDIA_VALUES, 100, initial_indent=" " * (width + 2), subsequent_indent=" " * (width + 2)
    )
    return (
        "%%hiapi — generate images and videos with HiAPI from a cell.\n\n"
        f"  {usage()}\n"
        "  <prompt text; {name} is replaced by the notebook variable `name`, {{ gives {>\n\n"
        f"  {'MODEL':{width}}a model name (default: %hiapi config default_model=...)\n"
        f"{options}\n"
        f"  {'--FIELD VALUE':{width}}any model input (VALUE is JSON when it decodes: 5, true, [..])\n"
        f"{media}\n\n"
        f"{subs}\n"
        f"  %hiapi {'MODEL [options] prompt…':34}a one-line generation\n"
    )


__all__ = ["SUBCOMMANDS", "SUBCOMMAND_NAMES", "SubcommandArgs", "help_text", "parse_subcommand"]
