"""Every bad input gets one line that names the fix, no traceback, and nothing is sent:
a table of them through the magic (as a user types them in IPython) and the Python API."""

from __future__ import annotations

import math
import sys

import pytest
from IPython.core.error import UsageError

import hiapi_notebook as h
from hiapi_notebook import errors
from hiapi_notebook.client import HiAPI

IMAGE = "gpt-image-2/text-to-image"
DEEP = "[" * 5000 + "]" * 5000
LONG = "1" * 5000  # well-formed JSON that json.loads still refuses (over 4300 digits)


class BrokenStr:
    def __str__(self):
        raise RuntimeError("no text for you")


IPYTHON_API_KEY = "sk-bad-input"


def unwritable(tmp_path) -> str:
    """A folder nobody can make, root included: its parent is a file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return str(blocker / "inside")


# (what is typed, the words the one line must contain). Cell magics are "line\nbody".
MAGIC = [
    (f"%%hiapi {IMAGE} --timeout -5\na fox", "more than 0"),
    (f"%%hiapi {IMAGE} --timeout nan\na fox", "finite"),
    (f"%%hiapi {IMAGE} --timeout inf\na fox", "finite"),
    (f"%%hiapi {IMAGE} -n 0\na fox", "between 1 and 100"),
    (f"%%hiapi {IMAGE} -n 101\na fox", "between 1 and 100"),
    (f"%%hiapi {IMAGE} -n 1.5\na fox", "whole number"),
    (f"%%hiapi {IMAGE} --concurrency 0\na fox", "at least 1"),
    (f"%%hiapi {IMAGE} --concurrency abc\na fox", "whole number"),
    (f"%%hiapi {IMAGE} --input '{{\"a\": 1,}}'\na fox", "at column 9"),
    (f"%%hiapi {IMAGE} --input '[1, 2]'\na fox", "JSON object"),
    (f"%%hiapi {IMAGE} --input '{{\"guidance\": NaN}}'\na fox", "input.guidance is nan"),
    (f"%%hiapi {IMAGE} --input '{DEEP}'\na fox", "nested too deeply"),
    (f"%%hiapi {IMAGE} --input '{{\"seed\": {LONG}}}'\na fox", "shorten the number"),
    (f"%%hiapi {IMAGE} --guidance NaN\na fox", "input.guidance is nan"),
    (f"%%hiapi {IMAGE} --seed Infinity\na fox", "input.seed is inf"),
    (f"%%hiapi {IMAGE} --seed '{DEEP}'\na fox", "nested too deeply"),
    (f"%%hiapi {IMAGE} --nowait\na fox", "did you mean --no-wait"),
    (f"%%hiapi {IMAGE} -o 1abc\na fox", "variable name"),
    (f"%%hiapi {IMAGE} --callback ftp://x\na fox", "http(s)"),
    (f"%%hiapi {IMAGE} --sweep nope\na fox", "FIELD=v1,v2"),
    (f"%%hiapi {IMAGE} --models ,\na fox", "comma-separated"),
    (f"%%hiapi {IMAGE} --route\na fox", "needs a value"),
    ("%%hiapi gpt-imag-2/text-to-image\na fox", "did you mean gpt-image-2/text-to-image"),
    (f"%%hiapi {IMAGE} --aspect_rato 1:1\na fox", "did you mean aspect_ratio"),
    (f"%%hiapi {IMAGE} --aspect_ratio 7:3\na fox", "allowed values"),
    (f"%%hiapi {IMAGE}\na fox \ud800", "lone surrogate"),
    (f"%%hiapi {IMAGE}\na fox named {{broken}}", "str(broken) raised RuntimeError"),
    (f"%%hiapi {IMAGE} --save {{locked}}\na fox", "cannot"),
    (f"%%hiapi {IMAGE} 'unclosed\na fox", "quotes"),
    ("%%hiapi\na fox", "no model"),
    ("%hiapi status " + "x" * 100_000, "not a task id"),
    ("%hiapi status tk-hiapi-é", "not a task id"),
    ("%hiapi history 99999999999999999999", "1 to 100000"),
    ("%hiapi history --status", "needs a value"),
    ("%hiapi export {tmp}", "folder"),
    ("%hiapi config poll_interval=nan", "poll_interval"),
    ("%hiapi config timeout=-1", "timeout"),
    ("%hiapi config embed_limit=abc", "embed_limit"),
    ("%hiapi config base_url=http://127.0.0.1:99999", "port 99999"),
    ("%hiapi config colour=blue", "unknown setting"),
    ("%hiapi sandbox --speed 0", "above 0"),
    ("%hiapi histroy", "did you mean %hiapi history"),
    ("%hiapi login", "no terminal"),
]


@pytest.mark.parametrize("typed, needle", MAGIC, ids=[t[:60] for t, _ in MAGIC])
def test_bad_magic_input_is_one_line_and_sends_nothing(
    ip, sandbox, tmp_path, monkeypatch, capsys, typed, needle
):
    def no_stdin(prompt=""):
        raise EOFError

    monkeypatch.setattr("getpass.getpass", no_stdin)
    ip.user_ns["broken"] = BrokenStr()
    typed = typed.replace("{locked}", unwritable(tmp_path)).replace("{tmp}", str(tmp_path))
    capsys.readouterr()
    result = ip.run_cell(typed)
    out, err = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError), (result.error_in_exec, out, err)
    shown = [line for line in err.splitlines() if line.strip()]
    assert len(shown) == 1 and shown[0].startswith("UsageError: "), err  # one line, no traceback
    assert needle in shown[0], shown[0]
    assert "Traceback" not in out + err and "sk-bad-input" not in out + err
    assert [m for m, _ in sandbox.requests if m == "POST"] == []


API = [
    (lambda: h.generate("a fox", model=123), "model must be"),
    (lambda: h.generate("a fox", model=""), "no model"),
    (lambda: h.generate(model=IMAGE, input=[1, 2]), "input must be a dict"),
    (lambda: h.generate(123, model=IMAGE), "prompt must be text"),
    (lambda: h.generate("a fox", model=IMAGE, guidance=math.nan), "input.guidance is nan"),
    (lambda: h.generate("a fox", model=IMAGE, seed=math.inf), "input.seed is inf"),
    (lambda: h.generate("a fox", model=IMAGE, timeout=-5), "timeout must be"),
    (lambda: h.generate("a fox", model=IMAGE, timeout=math.nan), "timeout must be"),
    (lambda: h.generate("a fox", model=IMAGE, timeout=0), "timeout must be"),
    (lambda: h.generate("a fox \ud800", model=IMAGE), "lone surrogate"),
    (lambda: h.generate("a fox", model=IMAGE, callback="ftp://x"), "callback url"),
    (lambda: h.generate("a fox", model="gpt-imag-2/text-to-image"), "did you mean"),
    (lambda: h.generate_many([{"model": IMAGE, "prompt": "x"}], concurrency="abc"), "concurrency"),
    (lambda: h.generate_many([{"model": IMAGE, "prompt": "x"}], concurrency=0), "concurrency"),
    (lambda: h.generate_many([{"model": IMAGE, "prompt": "x", "seed": math.inf}]), "input.seed is inf"),
    (lambda: HiAPI().tasks.create(IMAGE, {"prompt": "x"}, idempotency_key="é"), "idempotency_key"),
    (lambda: HiAPI().tasks.retrieve("x" * 100_000), "not a task id"),
]


@pytest.mark.parametrize("call, needle", API, ids=[n for _, n in API])
def test_bad_api_input_is_one_line_and_sends_nothing(session, sandbox, call, needle):
    with pytest.raises((errors.HiAPIError, ValueError)) as info:
        call()
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    assert [m for m, _ in sandbox.requests if m == "POST"] == [] and sandbox.task_count == 0


def test_the_table_is_as_long_as_promised():
    assert len(MAGIC) + len(API) >= 40


@pytest.mark.parametrize("name, value", [("HIAPI_POLL_INTERVAL", "nan"), ("HIAPI_MAX_POLL_INTERVAL", "-1")])
def test_a_bad_environment_is_one_line_at_the_first_cell(ip, sandbox, monkeypatch, capsys, name, value):
    import hiapi_notebook.session as session_module

    monkeypatch.setenv(name, value)
    monkeypatch.setattr(session_module, "_session", None)  # the kernel's first use of the package
    result = ip.run_cell(f"%%hiapi {IMAGE}\na fox")
    err = capsys.readouterr().err
    assert isinstance(result.error_in_exec, UsageError)
    (line,) = [x for x in err.splitlines() if x.strip()]
    assert line.startswith("UsageError: ") and name in line and value in line, line
    assert sandbox.requests == []
    monkeypatch.delenv(name)  # so the fixture's own clean-up can make a session again


def test_a_script_gets_script_advice(sandbox, tmp_path):
    """Outside IPython, no advice names a magic: the environment and the sandbox command instead."""
    import os
    import subprocess

    script = (
        "import hiapi_notebook as h\n"
        "for model in ('gpt-image-2/text-to-image', 'midjourney-v7'):\n"
        "    try:\n"
        "        h.generate('a fox', model=model, show=False)\n"
        "    except h.errors.HiAPIError as exc:\n"
        "        print(exc)\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("HIAPI_")}
    no_key = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=base, capture_output=True, text=True
    )
    first = no_key.stdout.splitlines()[0]
    assert "HIAPI_API_KEY" in first and "hiapi-notebook sandbox" in first and "%hiapi" not in first
    env = {**base, "HIAPI_BASE_URL": sandbox.url, "HIAPI_API_KEY": "sandbox"}
    keyed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    unknown = keyed.stdout.splitlines()[-1]
    assert "unknown model" in unknown and "model_names()" in unknown and "%hiapi" not in unknown, keyed.stdout
