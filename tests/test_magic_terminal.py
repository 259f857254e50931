"""The magics in terminal IPython (no widget front end): status as text lines,
results as file paths; line subcommands; the key kept out of everything."""

import time

import pytest
from IPython.core.error import UsageError

from hiapi_notebook.session import reset_session

SECRET = "sk-terminal-51c0ffee-never-shown"


IPYTHON_API_KEY = SECRET


def test_status_is_text_and_results_are_paths(ip, sandbox, capsys):
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image -o img", "A {animal} in snow")
    out = capsys.readouterr().out
    assert "[hiapi] gpt-image-2/text-to-image" in out and "success" in out
    assert "{animal}" in out  # an unknown name stays as written
    assert "image: hiapi-outputs/tk-hiapi-" in out
    img = ip.user_ns["img"]
    assert img.status == "success" and img.outputs[0].path.exists()
    assert SECRET not in out and SECRET not in repr(img)


def test_no_wait_save_copies_the_outputs_once_the_task_ends(ip, sandbox, tmp_path, capsys):
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image --no-wait --save kept -o later", "a fox")
    later = ip.user_ns["later"]
    later.wait(10)
    original = later.outputs[0].path
    copy = tmp_path / "kept" / f"{later.task_id}-0-image.png"  # named for its task: saves never collide
    deadline = time.monotonic() + 10  # the copy is made off the polling loop, after the end
    while time.monotonic() < deadline and not (copy.exists() and copy.read_bytes() == original.read_bytes()):
        time.sleep(0.02)
    assert sorted(p.name for p in copy.parent.iterdir()) == [copy.name]
    assert copy.read_bytes() == original.read_bytes()


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


@pytest.mark.parametrize(
    "line, needle",
    [
        ("no-such-model", "no-such-model"),  # the server is the authority
        ("gpt-image-2/text-to-image --aspect_rato 1:1", "did you mean aspect_ratio"),
    ],
)
def test_unknown_models_and_typos(ip, sandbox, capsys, line, needle):
    try:
        ip.run_cell_magic("hiapi", line, "a cat")
    except UsageError as exc:
        message = str(exc)
    else:
        message = capsys.readouterr().out
    assert needle in message


def test_a_model_typo_is_refused_before_sending(ip, sandbox):
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("hiapi", "gpt-imag-2/text-to-image", "a cat")
    assert "did you mean gpt-image-2/text-to-image" in str(info.value)
    assert "\n" not in str(info.value) and sandbox.requests == []


def test_unknown_models_go_to_the_server_which_decides(ip, sandbox):
    # --force sends a near-typo as written; a name unlike any known one is sent anyway
    for line in ("gpt-imag-2/text-to-image --force", "totally-new-model-9"):
        with pytest.raises(UsageError) as info:
            ip.run_cell_magic("hiapi", line, "a cat")
        assert "400" in str(info.value) and "\n" not in str(info.value)
    assert sandbox.task_count == 0 and [m for m, _ in sandbox.requests] == ["POST", "POST"]


def test_one_line_form_takes_options_before_the_prompt(ip, sandbox):
    ip.run_line_magic("hiapi", "gpt-image-2/text-to-image -o one --aspect_ratio 16:9 a cat's toy")
    assert ip.user_ns.pop("one").status == "success"
    assert sandbox.last_inputs[-1]["input"] == {"prompt": "a cat's toy", "aspect_ratio": "16:9"}


def test_a_mistyped_subcommand_is_not_a_paid_generation(ip, sandbox):
    with pytest.raises(UsageError, match="did you mean %hiapi history"):
        ip.run_line_magic("hiapi", "histroy 5")
    assert sandbox.requests == []


def test_missing_key(ip, sandbox, monkeypatch):
    monkeypatch.delenv("HIAPI_API_KEY")
    reset_session()
    with pytest.raises(UsageError, match="HIAPI_API_KEY"):
        ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image", "a cat")
    assert sandbox.requests == []


@pytest.mark.parametrize("options, needle", [(dict(key="other"), "401"), (dict(balance=0.0), "top up")])
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
    from IPython.core.completer import provisionalcompleter

    def offered(text):
        with provisionalcompleter():
            return [c.text for c in ip.Completer.completions(text, len(text))]

    fields = offered("%%hiapi gpt-image-2/text-to-image --")
    assert fields[:2] == ["--aspect_ratio", "--resolution"] and "--abs" not in fields
    assert offered("%%hiapi seedance-2-0 --aspect_ratio ")[:1] == ["1:1"]
    assert "and" not in offered("%%hiapi seedance-2-0 --aspect_ratio ")
    assert offered("%hiapi his") == ["history"]
    assert "default_model=" in offered("%hiapi config ")
    assert offered("%hiapi gpt-image-2/te") == ["gpt-image-2/text-to-image"]
    assert offered("x = ab") == ["abs"]  # other lines are left to IPython


def test_default_model_through_config_magic(ip, sandbox):
    ip.run_line_magic("config", "HiAPIMagics.default_model = 'gpt-image-2/text-to-image'")
    ip.run_cell_magic("hiapi", "", "a heron")
    assert sandbox.last_inputs[-1]["model"] == "gpt-image-2/text-to-image"
    ip.run_line_magic("config", "HiAPIMagics.default_model = ''")


def test_sweeps_keep_to_their_concurrency(ip, sandbox_factory, monkeypatch, capsys):
    srv = sandbox_factory(speed=20)
    monkeypatch.setenv("HIAPI_BASE_URL", srv.url)
    reset_session()
    ip.run_cell_magic(
        "hiapi",
        "gpt-image-2/text-to-image --sweep aspect_ratio=1:1,4:3,16:9 --concurrency 1 -o trio",
        "a kite",
    )
    assert [g.status for g in ip.user_ns.pop("trio")] == ["success"] * 3
    methods = [m for m, path in srv.requests if path.startswith("/v1/tasks")]
    posts = [i for i, m in enumerate(methods) if m == "POST"]
    assert len(posts) == 3
    # one at a time: each create waits for the previous task's polls to see it end
    assert all(b - a > 1 for a, b in zip(posts, posts[1:])), methods


def test_concurrency_option_is_checked():
    from hiapi_notebook.grammar import LineError, parse_line

    assert parse_line("m --concurrency 3").concurrency == 3
    with pytest.raises(LineError, match="at least 1"):
        parse_line("m --concurrency 0")


def test_connect_login_and_the_builtin_sandbox(ip, monkeypatch, capsys):
    monkeypatch.delenv("HIAPI_API_KEY")
    monkeypatch.delenv("HIAPI_BASE_URL")
    monkeypatch.setenv("HIAPI_SANDBOX_SPEED", "50")
    session = reset_session()
    capsys.readouterr()  # only what the two connects print
    try:
        ip.run_line_magic("hiapi", "connect")
        ip.run_line_magic("hiapi", "connect")  # a second run still says where tasks go
        notes = capsys.readouterr().out.strip().splitlines()
        assert len(notes) == 2 and all("built-in HiAPI sandbox" in n for n in notes), notes
        from hiapi_notebook import HiAPI

        with HiAPI() as client:  # a plain client in this kernel reaches the same sandbox
            assert client.tasks.list().total == 0
        monkeypatch.setattr("getpass.getpass", lambda prompt: "sk-real")
        ip.run_line_magic("hiapi", "login")
        assert "tasks go to https://api.hiapi.ai/v1" in capsys.readouterr().out
        assert session.settings.base_url is None and "HIAPI_BASE_URL" not in __import__("os").environ
    finally:
        if session.sandbox is not None:
            session.sandbox.stop()
