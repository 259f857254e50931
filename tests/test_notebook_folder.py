"""The journal and the local copies go beside the notebook that made them, also when the
kernel works in another folder: jupyter_server names the notebook in ``JPY_SESSION_NAME``,
VS Code in ``__vsc_ipynb_file__``; papermill's ``--cwd`` puts its kernel beside it."""

import pytest
from kernel_harness import execute, kernel_python, start_kernel, stop_kernel

pytestmark = pytest.mark.kernel
CELL = "%%hiapi gpt-image-2/text-to-image -o fox\nA red fox in fresh snow"


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for name in ("HIAPI_API_KEY", "HIAPI_BASE_URL", "HIAPI_HOME", "HIAPI_SANDBOX", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HIAPI_SANDBOX_SPEED", "50")
    monkeypatch.setenv("HIAPI_SANDBOX_DETAIL", "fast")
    monkeypatch.setenv("HIAPI_POLL_INTERVAL", "0.05")
    notebooks, elsewhere = tmp_path / "experiments", tmp_path / "elsewhere"
    notebooks.mkdir()
    elsewhere.mkdir()
    return notebooks, elsewhere


def run(cwd, cells, env=None):
    km, kc = start_kernel(
        kernel_python("ipykernel7"), env={"IPYTHONDIR": str(cwd / ".ipython"), **(env or {})}, cwd=cwd
    )
    try:
        for code in cells:
            reply, msgs = execute(kc, code, timeout=120)
            assert reply["content"]["status"] == "ok", (code, msgs[-3:])
        _, msgs = execute(kc, "print(fox.outputs[0].path)")
        return "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream").strip()
    finally:
        stop_kernel(km, kc)


def assert_beside(notebooks, elsewhere, path):
    assert (notebooks / ".hiapi" / "journal.sqlite3").exists()
    assert path.startswith(str(notebooks / "hiapi-outputs")), path
    assert not (elsewhere / ".hiapi").exists() and not (elsewhere / "hiapi-outputs").exists()


def test_a_jupyter_server_kernel_keeps_its_results_beside_its_notebook(folders):
    notebooks, elsewhere = folders
    env = {"JPY_SESSION_NAME": str(notebooks / "fox.ipynb")}
    path = run(elsewhere, ["%load_ext hiapi_notebook\n%hiapi connect", CELL], env)
    assert_beside(notebooks, elsewhere, path)


def test_a_vscode_kernel_keeps_its_results_beside_its_notebook(folders):
    notebooks, elsewhere = folders
    named = f"__vsc_ipynb_file__ = {str(notebooks / 'fox.ipynb')!r}"
    path = run(elsewhere, [named, "%load_ext hiapi_notebook\n%hiapi connect", CELL])
    assert_beside(notebooks, elsewhere, path)


def test_a_kernel_in_its_notebooks_folder_keeps_relative_paths(folders):
    notebooks, elsewhere = folders
    env = {"JPY_SESSION_NAME": str(notebooks / "fox.ipynb")}
    path = run(notebooks, ["%load_ext hiapi_notebook\n%hiapi connect", CELL], env)
    assert path.startswith("hiapi-outputs/")  # as before: the saved notebook links to it as is
