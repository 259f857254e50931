"""Input the lower layers refuse before anything is sent or paid for, each as one line that
names the fix: timing numbers, base URLs, task ids, idempotency keys, API keys, values JSON
cannot carry (NaN, Infinity, lone surrogates, deep nesting). Over real HTTP: the sandbox
counts what reached it."""

import json
import math

import pytest

from hiapi_notebook import errors
from hiapi_notebook.api import submit
from hiapi_notebook.client import AsyncHiAPI, HiAPI
from hiapi_notebook.config import Settings
from hiapi_notebook.journal import Journal
from hiapi_notebook.runtime import Request
from hiapi_notebook.session import Session

IMAGE = "gpt-image-2/text-to-image"


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc)
    assert "\n" not in text and 0 < len(text) <= limit, text
    return text


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def client_for(server, **options) -> HiAPI:
    options.setdefault("api_key", "k")
    return HiAPI(base_url=server.url, **options)


# -- timing numbers (item 5) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("poll_interval", float("nan"), "from 0.01 to 3600"),
        ("poll_interval", 0, "from 0.01 to 3600"),
        ("max_poll_interval", float("inf"), "from 0.01 to 3600"),
        ("timeout", -5, "from 0.001"),
        ("timeout", float("nan"), "from 0.001"),
        ("max_retries", -1, "whole number from 0 to 20"),
        ("max_retries", 2.5, "whole number"),
        ("max_concurrency", 0, "whole number from 1 to 1000"),
        ("poll_interval", True, "a number"),
        ("poll_interval", "1", "a number"),
    ],
)
def test_client_numbers_are_checked_when_the_client_is_made(name, value, words):
    with pytest.raises(errors.RequestValidationError) as info:
        AsyncHiAPI(api_key="k", base_url="http://127.0.0.1:1", **{name: value})
    assert name in one_line(info.value) and words in str(info.value)


@pytest.mark.parametrize("timeout", [-5, 0, float("nan"), float("inf"), "soon"])
def test_a_wait_that_cannot_work_is_refused_before_the_task_is_created(sandbox, timeout):
    with client_for(sandbox) as client:
        with pytest.raises(errors.RequestValidationError, match="timeout must be a number"):
            client.tasks.run(IMAGE, {"prompt": "x"}, timeout=timeout)
        with pytest.raises(errors.RequestValidationError, match="timeout must be a number"):
            client.tasks.wait("tk-hiapi-00000000000000000000000000", timeout=timeout)
    with pytest.raises(errors.RequestValidationError, match="or None, to wait without limit"):
        Request(model=IMAGE, input={"prompt": "x"}, timeout=timeout)
    assert sandbox.requests == [] and sandbox.task_count == 0


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"poll_interval": "nan"}, "poll_interval must be a number from 0.01 to 3600, not nan"),
        ({"poll_interval": "0"}, "poll_interval must be a number from 0.01 to 3600, not 0"),
        ({"timeout": "-5"}, "timeout must be a number from 0.001 to 2592000"),
        ({"timeout": "abc"}, "not 'abc'"),
        ({"max_output_mb": "inf"}, "max_output_mb must be a number"),
        ({"embed_limit": "1.5"}, "embed_limit must be a whole number"),
        ({"base_url": "http://127.0.0.1:99999"}, "port 99999, outside 1 to 65535"),
        ({"base_url": "api.hiapi.ai"}, "must start with http"),
        ({"journal": "maybe"}, "true or false"),
        ({"outputs_dir": 7}, "outputs_dir must be a folder name"),
    ],
)
def test_settings_are_checked_where_they_enter(changes, words):
    with pytest.raises(errors.RequestValidationError) as info:
        Settings().with_changes(**changes)
    assert words in one_line(info.value)


def test_settings_accept_what_they_always_did():
    s = Settings().with_changes(timeout="none", poll_interval="0.02", embed_limit="1024", journal="off")
    assert (s.timeout, s.poll_interval, s.embed_limit, s.journal) == (None, 0.02, 1024, False)


@pytest.mark.parametrize("variable", ["HIAPI_POLL_INTERVAL", "HIAPI_MAX_POLL_INTERVAL"])
@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf", "fast"])
def test_timing_from_the_environment_is_refused_with_its_range(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(errors.RequestValidationError) as info:
        Session()
    assert one_line(info.value).startswith(f"{variable} must be a number from 0.01 to 3600")


def test_a_bad_interval_in_the_environment_sends_nothing(sandbox, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_POLL_INTERVAL", "nan")
    monkeypatch.setenv("HIAPI_BASE_URL", sandbox.url)
    monkeypatch.setenv("HIAPI_API_KEY", "k")
    from hiapi_notebook.session import reset_session

    try:
        with pytest.raises(errors.RequestValidationError, match="HIAPI_POLL_INTERVAL"):
            reset_session()
    finally:
        monkeypatch.delenv("HIAPI_POLL_INTERVAL")
        reset_session()
    assert sandbox.requests == []


# -- base URLs, task ids, idempotency keys, API keys (item 8) ----------------------------------


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.1:99999", "port 99999, outside 1 to 65535"),
        ("http://127.0.0.1:0", "port 0"),
        ("http://", "names no host"),
        ("ftp://example.com", "must start with http"),
        ("http://exa mple.com/v1", "spaces"),
    ],
)
def test_a_bad_base_url_is_one_line_before_any_connection(url, words, monkeypatch):
    with pytest.raises(errors.RequestValidationError) as info:
        HiAPI(api_key="k", base_url=url)
    assert words in one_line(info.value)
    monkeypatch.setenv("HIAPI_BASE_URL", url)
    with pytest.raises(errors.RequestValidationError, match="HIAPI_BASE_URL"):
        HiAPI(api_key="k")


def test_a_bad_base_url_in_the_environment_is_one_line_from_the_session(session, sandbox, monkeypatch):
    monkeypatch.setenv("HIAPI_BASE_URL", "http://127.0.0.1:99999")
    session.configure(base_url=None)
    with pytest.raises(errors.RequestValidationError) as info:
        submit("a fox", model=IMAGE, show=False)
    assert "port 99999" in one_line(info.value)
    assert sandbox.requests == []


def test_an_unreachable_server_is_one_connection_error_line():
    with HiAPI(api_key="k", base_url="http://127.0.0.1:9", max_retries=1) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            client.tasks.list()
    assert "Could not reach HiAPI" in one_line(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize(
    "task_id", ["x" * 100_000, "tk-hiapi-01/../../x", "tk hiapi", "tk-hiapi-ü", "", None, 42]
)
def test_a_task_id_that_cannot_be_one_is_refused_at_once(sandbox, task_id):
    with client_for(sandbox) as client:
        with pytest.raises(errors.RequestValidationError) as info:
            client.tasks.retrieve(task_id)
    assert "not a task id" in one_line(info.value)
    assert sandbox.requests == []


@pytest.mark.parametrize("key", ["clé-1", "k" * 256, "two words", "line\nbreak", "tab\t", ""])
def test_an_idempotency_key_that_cannot_be_a_header_is_refused(sandbox, tmp_path, key):
    with client_for(sandbox) as client:
        with pytest.raises(errors.RequestValidationError) as info:
            client.tasks.create(IMAGE, {"prompt": "x"}, idempotency_key=key or 7)
    assert "idempotency_key" in one_line(info.value)
    with Journal(tmp_path / "j.sqlite3") as journal:
        with pytest.raises(errors.RequestValidationError, match="idempotency_key"):
            journal.claim(IMAGE, {"prompt": "x"}, idempotency_key=key or 7)
        assert journal.records() == []  # no row left waiting for a request never sent
    assert sandbox.requests == []


def test_a_255_byte_idempotency_key_still_works(sandbox):
    with client_for(sandbox) as client:
        created = client.tasks.create(IMAGE, {"prompt": "x"}, idempotency_key="k" * 255)
    assert created.idempotency_key == "k" * 255 and sandbox.task_count == 1


@pytest.mark.parametrize(
    "key, where",
    [
        ("sk-good-key\n", "a line break at its end"),
        ("sk-good-key ", "a space at its end"),
        ("sk-gööd-key", "a non-ASCII character at position 5"),
        ("sk-good\x07key", "a control character at position 8"),
        (" sk-good-key", "a space at position 1"),
    ],
)
def test_a_malformed_key_is_refused_when_it_is_set(sandbox, monkeypatch, key, where):
    with pytest.raises(errors.RequestValidationError) as info:
        HiAPI(api_key=key, base_url=sandbox.url)
    message = one_line(info.value)
    assert message.startswith("the HiAPI key is malformed") and where in message
    assert "good" not in message and "could not reach" not in message.lower()
    monkeypatch.setenv("HIAPI_API_KEY", key)
    with pytest.raises(errors.RequestValidationError, match="^HIAPI_API_KEY: the HiAPI key is malformed"):
        HiAPI(base_url=sandbox.url)
    with pytest.raises(errors.RequestValidationError, match="malformed"):
        Settings(api_key=key)
    assert sandbox.requests == []


# -- values JSON cannot carry (item 6) ---------------------------------------------------------


@pytest.mark.parametrize(
    "input, words",
    [
        ({"prompt": "x", "guidance": float("nan")}, "input.guidance is nan"),
        ({"prompt": "x", "guidance": float("inf")}, "input.guidance is inf"),
        ({"prompt": "x", "weights": [1.0, -math.inf]}, "input.weights[1] is -inf"),
        ({"prompt": "x", "extra": {"deep": {"er": float("nan")}}}, "input.extra.deep.er"),
        ({"prompt": "a \ud800 fox"}, "input.prompt contains a lone surrogate"),
        ({"prompt": "x", "tags": {"a", "b"}}, "input.tags is a set"),
        ({"prompt": "x", 3: "y"}, "key 3 that is not a string"),
        ({"prompt": "x", "n": nested(70)}, "nests deeper than 64"),
    ],
)
def test_values_json_cannot_carry_are_refused_naming_the_field(sandbox, tmp_path, input, words):
    with client_for(sandbox) as client:
        with pytest.raises(errors.RequestValidationError) as info:
            client.tasks.create(IMAGE, input)
    assert words in one_line(info.value)
    with Journal(tmp_path / "j.sqlite3") as journal:
        with pytest.raises(errors.RequestValidationError, match="input"):
            journal.claim(IMAGE, input)
        assert journal.records() == []
    assert sandbox.requests == []


def test_nesting_five_thousand_deep_is_an_answer_not_a_crash(sandbox):
    with client_for(sandbox) as client:
        with pytest.raises(errors.RequestValidationError, match="nests deeper than 64"):
            client.tasks.create(IMAGE, {"prompt": "x", "n": nested(5000)})
    assert sandbox.requests == []


def test_nan_through_the_session_writes_no_row_and_sends_nothing(session, sandbox):
    with pytest.raises(errors.RequestValidationError, match="input.guidance is nan"):
        session.submit(Request(model=IMAGE, input={"prompt": "x", "guidance": float("nan")}))
    assert session.journal.records() == [] and sandbox.requests == []


def test_export_is_strict_json_even_for_rows_an_older_version_wrote(tmp_path):
    import sqlite3

    with Journal(tmp_path / "j.sqlite3") as journal:
        rec, _ = journal.claim("m", {"prompt": "x", "guidance": 1.5})
    raw = sqlite3.connect(tmp_path / "j.sqlite3")
    raw.execute(
        "UPDATE submissions SET input = ? WHERE id = ?",
        ('{"prompt": "x", "guidance": NaN, "w": [Infinity, -Infinity]}', rec.id),
    )
    raw.commit()
    raw.close()
    with Journal(tmp_path / "j.sqlite3") as journal:
        out = journal.export(tmp_path / "manifest.json")

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    manifest = json.loads(out.read_text(encoding="utf-8"), parse_constant=refuse)
    assert manifest["results"][0]["request"]["input"] == {
        "prompt": "x",
        "guidance": "NaN",
        "w": ["Infinity", "-Infinity"],
    }
