"""The magics in terminal IPython (no widget front end): status as text lines,
results as file paths; line subcommands; the key kept out of everything."""
import pytest
from IPython.core.error import UsageError
from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython

from hiapi_notebook.session import reset_session

SECRET = "sk-terminal-51c0ffee-never-shown"


@pytest.fixture
def ip(sandbox, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_BASE_URL", sandbox.url)
    monkeypatch.setenv("HIAPI_API_KEY", SECRET)
    monkeypatch.setenv("HIAPI_POLL_INTERVAL", "0.02")
    monkeypatch.delenv("HIAPI_DEFAULT_MODEL", raising=False)
    reset_session()
    shell = start_ipython() or get_ipython()
    shell.run_line_magic("load_ext", "hiapi_notebook")
    yield shell
    shell.user_ns.pop("img", None)
    reset_session()


def test_status_is_text_and_results_are_paths(ip, sandbox, capsys):
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image -o img", "A {animal} in snow")
    out = capsys.readouterr().out
    assert "[hiapi] gpt-image-2/text-to-image" in out and "success" in out
    assert "{animal}" in out  # an unknown name stays as written
    assert "image: hiapi-outputs/tk-hiapi-" in out
    img = ip.user_ns["img"]
    assert img.status == "success" and img.outputs[0].path.exists()
    assert SECRET not in out and SECRET not in repr(img)


def test_interpolation_uses_notebook_variables(ip, sandbox, capsys):
    ip.user_ns["animal"] = "owl"
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image", "A {animal}, {{literal}}")
    assert sandbox.last_inputs[-1]["input"]["prompt"] == "A owl, {literal}"


def test_one_line_generation_and_default_model(ip, sandbox, capsys):
    with pytest.raises(UsageError, match="no model"):
        ip.run_cell_magic("hiapi", "", "a cat")
    ip.run_line_magic("hiapi", "config default_model=gpt-image-2/text-to-image")
    ip.run_cell_magic("hiapi", "--aspect_ratio 1:1", "a cat")
    ip.run_line_magic("hiapi", "gpt-image-2/text-to-image a dog on a skateboard")
    prompts = [body["input"]["prompt"] for body in sandbox.last_inputs]
    assert prompts == ["a cat", "a dog on a skateboard"]
    assert sandbox.last_inputs[0]["input"]["aspect_ratio"] == "1:1"


@pytest.mark.parametrize("line, needle", [
    ("no-such-model", "no-such-model"),                       # the server is the authority
    ("gpt-image-2/text-to-image --aspect_rato 1:1", "did you mean aspect_ratio"),
])
def test_unknown_models_and_typos(ip, sandbox, capsys, line, needle):
    try:
        ip.run_cell_magic("hiapi", line, "a cat")
    except UsageError as exc:
        message = str(exc)
    else:
        message = capsys.readouterr().out
    assert needle in message


def test_unknown_model_reaches_the_server_and_is_one_line(ip, sandbox):
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("hiapi", "gpt-imag-2", "a cat")
    assert "400" in str(info.value) and "\n" not in str(info.value)
    assert sandbox.task_count == 0


def test_missing_key(ip, sandbox, monkeypatch):
    monkeypatch.delenv("HIAPI_API_KEY")
    reset_session()
    with pytest.raises(UsageError, match="HIAPI_API_KEY"):
        ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image", "a cat")
    assert sandbox.requests == []


@pytest.mark.parametrize("options, needle", [(dict(key="other"), "401"),
                                             (dict(balance=0.0), "top up")])
def test_server_refusals_are_one_line(sandbox_factory, ip, monkeypatch, options, needle):
    srv = sandbox_factory(**options)
    monkeypatch.setenv("HIAPI_BASE_URL", srv.url)
    reset_session()
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image", "a cat")
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert SECRET not in str(info.value)


def test_status_subcommand_watches_any_task(ip, sandbox, capsys):
    from hiapi_notebook.client import HiAPI
    with HiAPI(api_key="other-account-key", base_url=sandbox.url) as client:
        created = client.tasks.create("gpt-image-2/text-to-image", {"prompt": "elsewhere"})
    with pytest.raises(UsageError, match="404"):
        ip.run_line_magic("hiapi", f"status {created.task_id}")
    with HiAPI(api_key=SECRET, base_url=sandbox.url) as client:
        mine = client.tasks.create("gpt-image-2/text-to-image", {"prompt": "mine"})
    capsys.readouterr()
    ip.run_line_magic("hiapi", f"status {mine.task_id}")
    from hiapi_notebook.session import get_session
    for job in list(get_session().runtime.active):
        job.wait(10)
    assert mine.task_id in capsys.readouterr().out


def test_login_keeps_the_key_in_memory(ip, sandbox, monkeypatch, capsys):
    monkeypatch.delenv("HIAPI_API_KEY")
    reset_session()
    monkeypatch.setattr("getpass.getpass", lambda prompt: "sk-typed-in")
    ip.run_line_magic("hiapi", "login")
    ip.run_line_magic("hiapi", "config")
    out = capsys.readouterr().out
    assert "sk-typed-in" not in out and "api_key" in out and "set" in out
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image", "a cat")
    assert sandbox.task_count == 1


def test_models_table_and_help(ip, capsys):
    table = ip.run_line_magic("hiapi", "models seedance-2-0")
    assert "seedance-2-0" in repr(table) and "<table" in table._repr_html_()
    with pytest.raises(UsageError, match="no model matches"):
        ip.run_line_magic("hiapi", "models zzz-nothing")
    ip.run_line_magic("hiapi", "help")
    assert "%%hiapi" in capsys.readouterr().out


def test_config_rejects_unknown_settings(ip):
    with pytest.raises(UsageError, match="unknown setting"):
        ip.run_line_magic("hiapi", "config colour=blue")
    with pytest.raises(UsageError, match="login"):
        ip.run_line_magic("hiapi", "config api_key=abc")


def test_completion_through_ipython(ip):
    _, matches = ip.complete("", "%%hiapi seedance-2-0 --res", 26)
    assert "--resolution" in matches
    _, matches = ip.complete("", "%hiapi gpt-image-2/te", 21)
    assert any(m.endswith("gpt-image-2/text-to-image") for m in matches)


def test_default_model_through_config_magic(ip, sandbox):
    ip.run_line_magic("config", "HiAPIMagics.default_model = 'gpt-image-2/text-to-image'")
    ip.run_cell_magic("hiapi", "", "a heron")
    assert sandbox.last_inputs[-1]["model"] == "gpt-image-2/text-to-image"
    ip.run_line_magic("config", "HiAPIMagics.default_model = ''")


def test_sweeps_keep_to_their_concurrency(ip, sandbox_factory, monkeypatch, capsys):
    srv = sandbox_factory(speed=20)
    monkeypatch.setenv("HIAPI_BASE_URL", srv.url)
    reset_session()
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image --sweep aspect_ratio=1:1,4:3,16:9 "
                      "--concurrency 1 -o trio", "a kite")
    assert [g.status for g in ip.user_ns.pop("trio")] == ["success"] * 3
    methods = [m for m, path in srv.requests if path.startswith("/v1/tasks")]
    posts = [i for i, m in enumerate(methods) if m == "POST"]
    assert len(posts) == 3
    # one at a time: each create waits for the previous task's polls to see it end
    assert all(b - a > 1 for a, b in zip(posts, posts[1:])), methods


def test_concurrency_option_is_checked():
    from hiapi_notebook.magics.parse import LineError, parse_line
    assert parse_line("m --concurrency 3").concurrency == 3
    with pytest.raises(LineError, match="at least 1"):
        parse_line("m --concurrency 0")
