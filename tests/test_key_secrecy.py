"""The API key in no traceback, however verbose: failing requests are formatted with every
frame's variables (the standard library's ``capture_locals`` and IPython's ``%xmode Verbose``
formatter), and those texts, the exceptions' reprs and the logs are searched for the key.

The key reaches the package through the environment, so no frame of these tests holds it
in a variable the formatters would print; whatever they find came from the package.
"""

import logging
import os
import traceback

import pytest
from IPython.core.ultratb import VerboseTB

from hiapi_notebook import errors
from hiapi_notebook.api import generate
from hiapi_notebook.client import HiAPI
from hiapi_notebook.config import Settings

SECRET = "sk-live-7f3a9c1e5b8d2f4a6c0e9b1d3f5a7c9e"
IMAGE = "gpt-image-2/text-to-image"


def verbose_texts(exc: BaseException) -> list[str]:
    """Every way the exception can be shown with the variables of each frame."""
    try:
        formatter = VerboseTB(theme_name="nocolor")
    except TypeError:  # IPython 8
        formatter = VerboseTB(color_scheme="NoColor")
    texts = ["".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())]
    chain, seen = [exc], set()
    while chain:
        e = chain.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        texts.append(formatter.text(type(e), e, e.__traceback__, context=5))
        texts.extend([repr(e), str(e), repr(e.args), repr(vars(e))])
        chain.extend(x for x in (e.__cause__, e.__context__) if x is not None)
    return texts


def assert_no_key(texts, secret=SECRET):
    for text in texts:
        for part in (secret, secret[8:24]):
            assert part not in text, text[max(0, text.find(part) - 400) : text.find(part) + 100]


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("HIAPI_API_KEY", SECRET)


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at DEBUG
    return caplog


def failing_calls(sandbox_factory):
    refusing = sandbox_factory(key="another-key")  # 401 for ours
    broken = sandbox_factory()
    broken.inject("500", times=10)
    return [
        (refusing.url, {}, errors.AuthenticationError),
        (broken.url, {"max_retries": 1}, errors.ServerError),
        ("http://127.0.0.1:9", {"max_retries": 1}, errors.APIConnectionError),  # nobody listens
    ]


def test_failing_requests_show_no_key_in_any_traceback(secret_env, sandbox_factory, logs):
    for url, options, expected in failing_calls(sandbox_factory):
        with HiAPI(base_url=url, **options) as client:
            assert client._async.has_key
            with pytest.raises(expected) as info:
                client.tasks.list()
            texts = verbose_texts(info.value)
            assert "client.tasks.list()" in texts[1] or "list" in texts[1]  # a real, verbose traceback
            assert_no_key(texts)
            with pytest.raises(expected) as info:
                client.tasks.create(IMAGE, {"prompt": "x"})
            assert_no_key(verbose_texts(info.value))
    assert len(logs.records) > 0
    assert_no_key([logs.text] + [repr(r.__dict__) for r in logs.records])


def test_a_verbose_traceback_does_show_variables_so_the_search_means_something(sandbox_factory):
    server = sandbox_factory(key="right")

    def call(key_in_a_local):
        with HiAPI(api_key=key_in_a_local, base_url=server.url) as client:
            client.tasks.list()

    with pytest.raises(errors.AuthenticationError) as info:
        call("sk-a-key-held-in-a-test-local")
    assert any("sk-a-key-held-in-a-test-local" in text for text in verbose_texts(info.value))


def test_a_failing_generation_through_the_session_shows_no_key(secret_env, sandbox_factory, session, logs):
    refusing = sandbox_factory(key="another-key")
    session.configure(base_url=refusing.url, api_key=None)  # the key now comes from the environment
    with pytest.raises(errors.AuthenticationError) as info:
        generate("a fox", model=IMAGE, show=False)
    assert_no_key(verbose_texts(info.value))
    assert_no_key([logs.text, repr(session.settings), repr(session.client), repr(session.runtime)])


def test_setting_a_malformed_key_shows_no_part_of_it(monkeypatch, session):
    monkeypatch.setenv("HIAPI_API_KEY", SECRET + "\n")
    with pytest.raises(errors.RequestValidationError) as from_env:
        HiAPI(base_url="http://127.0.0.1:9")
    assert_no_key(verbose_texts(from_env.value))
    monkeypatch.setenv("HIAPI_API_KEY", SECRET[:10] + "é" + SECRET[10:])  # once leaked via UnicodeEncodeError
    with pytest.raises(errors.RequestValidationError) as non_ascii:
        HiAPI(base_url="http://127.0.0.1:9")
    assert_no_key(verbose_texts(non_ascii.value), SECRET[10:])
    with pytest.raises(errors.RequestValidationError) as configured:
        configure_key_from_env(session)
    assert_no_key(verbose_texts(configured.value), SECRET[10:])
    assert "sk-whatever" not in repr(Settings(api_key="sk-whatever"))


def configure_key_from_env(session):
    """``%hiapi login`` in short: the key goes in as a call's result, held by no local here."""
    return session.configure(**key_from_env())


def key_from_env():
    return {"api_key": os.getenv("HIAPI_API_KEY")}


def test_a_refused_base_url_shows_no_key_from_the_environment(secret_env, monkeypatch):
    monkeypatch.setenv("HIAPI_BASE_URL", "http://127.0.0.1:99999")
    with pytest.raises(errors.RequestValidationError, match="port 99999") as info:
        HiAPI()
    assert_no_key(verbose_texts(info.value))
