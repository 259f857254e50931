"""The %%hiapi line parser and prompt interpolation, without IPython."""

import pytest

from hiapi_notebook.grammar import LineError, decode_value, interpolate, parse_line
from hiapi_notebook.magics.complete import complete_line


def test_fields_are_json_decoded_when_they_decode():
    args = parse_line(
        "seedance-2-0 --duration 5 --generate_audio true --aspect_ratio 16:9 --resolution=720p --seed -1"
    )
    assert args.model == "seedance-2-0"
    assert args.fields == {
        "duration": 5,
        "generate_audio": True,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "seed": -1,
    }


def test_own_options():
    args = parse_line(
        "gpt-image-2 -o img -n 3 --no-wait --fresh --route beta --timeout 30 "
        "--save out --callback https://example.com/h --input '{\"a\": 1}'"
    )
    assert (args.out, args.n, args.wait, args.fresh, args.route, args.timeout, args.save) == (
        "img",
        3,
        False,
        True,
        "beta",
        30.0,
        "out",
    )
    assert args.callback == "https://example.com/h" and args.input == {"a": 1}


def test_sweeps_and_models():
    args = parse_line("m --sweep aspect_ratio=1:1,16:9 --sweep resolution=1K,2K --models a,b")
    assert args.sweeps == {"aspect_ratio": ["1:1", "16:9"], "resolution": ["1K", "2K"]}
    assert args.models == ["a", "b"]


@pytest.mark.parametrize(
    "line, needle",
    [
        ("m --duration", "needs a value"),
        ("m --duration --fresh", "needs a value"),
        ("m -x 1", "unknown option '-x'"),
        ("m -o 1abc", "variable name"),
        ("m -n lots", "whole number"),
        ("m -n 0", "between 1 and 100"),
        ("m --input '{bad'", "not valid JSON"),
        ("m --input '[1]'", "JSON object"),
        ("m --callback ftp://x", "http(s)"),
        ("m extra words", "prompt goes in the cell body"),
        ("m --sweep nope", "FIELD=v1,v2"),
        ("m --timeout -3", "more than 0"),
        ("m 'unclosed", "quotes"),
    ],
)
def test_mistakes_give_one_line_naming_the_fix(line, needle):
    with pytest.raises(LineError) as info:
        parse_line(line)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_interpolation():
    ns = {"animal": "fox", "n": 3}
    assert (
        interpolate("a {animal} x{n} {unknown} {{literal}} {not valid}", ns)
        == "a fox x3 {unknown} {literal} {not valid}"
    )


def test_decode_value():
    assert decode_value("[1, 2]") == [1, 2]
    assert decode_value("1K") == "1K"
    assert decode_value("null") is None


def test_completion_of_models_fields_and_values():
    assert "gpt-image-2/text-to-image" in complete_line("%%hiapi gpt-image-2/t")
    assert complete_line("%%hiapi seedance-2-0 --dur") == ["--duration"]
    assert "1080p" in complete_line("%%hiapi seedance-2-0 --resolution ")
    assert "--no-wait" in complete_line("%hiapi gpt-image-2 --no")
