"""The line grammar's tables drive everything said about the line: usage, help, tab
completion, the parser and ``format_line`` ("Copy as magic") agree by construction."""

from __future__ import annotations

import pytest

from hiapi_notebook.grammar import (
    OPTIONS,
    RESERVED_FIELDS,
    CellArgs,
    LineError,
    format_line,
    parse_line,
    usage,
)
from hiapi_notebook.magics.complete import complete_line
from hiapi_notebook.subcommands import (
    SUBCOMMAND_NAMES,
    ConfigArgs,
    HistoryArgs,
    SandboxArgs,
    StatusArgs,
    help_text,
    parse_subcommand,
)

SHOWN = [o for o in OPTIONS if o.shown]


@pytest.mark.parametrize("option", SHOWN, ids=lambda o: o.names[0])
def test_every_option_is_in_usage_help_and_completion(option):
    name = option.names[0]
    assert f"[{option.example}]" in usage()
    assert f"  {option.example} " in help_text() and option.help in help_text()
    assert name in complete_line(f"%%hiapi gpt-image-2/text-to-image {name[:2]}")


@pytest.mark.parametrize("option", [o for o in OPTIONS if not o.is_flag], ids=lambda o: o.names[0])
def test_every_value_option_says_what_it_needs(option):
    with pytest.raises(LineError) as info:
        parse_line(f"m {option.names[0]}")
    assert "needs a value" in str(info.value) and option.names[0] in str(info.value)


def test_every_subcommand_is_in_help_and_completion():
    for name in SUBCOMMAND_NAMES:
        assert f"%hiapi {name}" in help_text()
        assert name in complete_line(f"%hiapi {name[:2]}")


def test_option_names_are_never_read_as_model_fields():
    assert {"o", "out", "n", "no_wait", "input", "sweep", "models", "concurrency"} <= RESERVED_FIELDS
    args = CellArgs(model="m", fields={"n": 3, "timeout": 5, "odd name": 1, "seed": 2})
    line = format_line(args)
    assert "--seed 2" in line and "--input" in line
    back = parse_line(line)
    assert back.fields == {"seed": 2} and back.input == {"n": 3, "timeout": 5, "odd name": 1}
    assert back.n == 1  # the field n did not become -n


@pytest.mark.parametrize(
    "args",
    [
        CellArgs(model="gpt-image-2/text-to-image"),
        CellArgs(model="m", out="img", n=3, wait=False, fresh=True, force=True, route="beta"),
        CellArgs(
            model="m", timeout=30.5, save="out dir", callback="https://example.com/h", storage="persistent"
        ),
        CellArgs(model="m", sweeps={"aspect_ratio": ["1:1", "16:9"], "seed": [1, 2]}, concurrency=2),
        CellArgs(models=["a", "b"], fields={"prompt_extend": True, "mood": ["calm", "warm"]}),
        CellArgs(model="m", fields={"negative_prompt": "--no blur", "style": "5", "ratio": "16:9"}),
    ],
)
def test_format_line_is_the_inverse_of_parse_line(args):
    assert parse_line(format_line(args)) == args


def test_subcommands_get_typed_arguments():
    assert parse_subcommand("status", " tk-1 ") == StatusArgs("tk-1")
    assert parse_subcommand("history", "") == HistoryArgs(20)
    assert parse_subcommand("config", "timeout=30 default_model=m") == ConfigArgs(
        changes={"timeout": "30", "default_model": "m"}
    )
    assert parse_subcommand("config", "timeout") == ConfigArgs(name="timeout")
    assert parse_subcommand("sandbox", "--speed 4") == SandboxArgs(4.0)


@pytest.mark.parametrize(
    "name, rest, needle",
    [
        ("history", "99999999999999999999", "1 to 100000"),
        ("history", "-3", "whole number"),
        ("history", "５", "whole number"),  # a full-width digit is no row count
        ("status", "", "usage: %hiapi status TASK_ID"),
        ("sandbox", "--speed nan", "above 0"),
        ("sandbox", "--speed inf", "above 0"),
        ("sandbox", "fast", "usage: %hiapi sandbox"),
        ("config", "timeout", None),
        ("config", "api_key=abc", "%hiapi login"),
        ("config", "nonsense", None),
        ("help", "me", "takes nothing"),
        ("export", "  ", "usage: %hiapi export"),
    ],
)
def test_subcommand_mistakes_are_one_line(name, rest, needle):
    if needle is None:  # a single word is a setting to show: the magic checks the name
        assert parse_subcommand(name, rest).name == rest
        return
    with pytest.raises(LineError) as info:
        parse_subcommand(name, rest)
    assert needle in str(info.value) and "\n" not in str(info.value)
