"""Headless runs keep every result: a notebook of ``--no-wait`` cells executed by nbclient
and by papermill has every picture in its saved file once a later cell runs
``%hiapi wait``; without one, each such cell says that its results need it. A re-run of
the same notebook, in a new kernel with a new sandbox, is answered from the journal."""

import json
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.kernel

SETUP = "%load_ext hiapi_notebook\n%hiapi connect\nimport hiapi_notebook"
CELLS = [
    "%%hiapi gpt-image-2/text-to-image --no-wait -o fox\nA red fox in fresh snow",
    "%%hiapi gpt-image-2/text-to-image -n 2 --no-wait\nTwo owls on a branch",
    "heron = hiapi_notebook.submit('A grey heron at dawn', model='gpt-image-2/text-to-image')",
]
WAIT = "%hiapi wait"
CHECK = "[fox.status, heron.status]"
NOTE = "reach the saved notebook only when a later cell runs %hiapi wait"


@pytest.fixture
def headless_env(monkeypatch):
    """A run as nbclient or papermill makes it: no key, no front end watching."""
    for name in ("HIAPI_API_KEY", "HIAPI_BASE_URL", "HIAPI_HOME", "HIAPI_SANDBOX", "HIAPI_FRONTEND"):
        monkeypatch.delenv(name, raising=False)
    for name in ("JPY_SESSION_NAME", "VSCODE_PID", "HIAPI_NOTEBOOK_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HIAPI_SANDBOX_SPEED", "3")  # a picture takes about 2 s: it ends after its cell
    monkeypatch.setenv("HIAPI_SANDBOX_DETAIL", "fast")
    monkeypatch.setenv("HIAPI_POLL_INTERVAL", "0.1")


def notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def run_nbclient(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    nbformat.write(nb, path)
    return nbformat.read(path, as_version=4)


def run_papermill(path, out, cwd):
    import papermill

    papermill.execute_notebook(str(path), str(out), cwd=str(cwd), kernel_name="python3", progress_bar=False)
    return nbformat.read(out, as_version=4)


def cell(nb, start):
    (found,) = [c for c in nb.cells if c.source.startswith(start)]
    return found


def pictures(c) -> int:
    """Pictures a saved cell shows: image outputs, or <img> with embedded data in its HTML."""
    count = 0
    for output in c.get("outputs", []):
        data = output.get("data", {})
        if "image/png" in data or "image/jpeg" in data:
            count += 1
        elif "image" not in "".join(data):
            count += data.get("text/html", "").count('src="data:image/')
    return count


def text(c) -> str:
    return json.dumps(c.get("outputs", []))


def check_every_result_in_place(nb):
    fox, owls, heron = (cell(nb, source) for source in CELLS)
    for c in (fox, heron):
        assert pictures(c) >= 1, text(c)[:600]
        assert 'data-status=\\"success\\"' in text(c)
        assert "submitting" not in text(c)
    assert 'data-done=\\"2\\" data-total=\\"2\\"' in text(owls) and pictures(owls) >= 2
    for c in (fox, owls, heron):
        assert NOTE not in text(c)  # the results came: the note went
    waited = cell(nb, WAIT)
    assert "Waited for 4 tasks: 4 succeeded." in text(waited)
    assert cell(nb, CHECK).outputs[0]["data"]["text/plain"] == "['success', 'success']"


def test_nbclient_run_keeps_every_late_result(tmp_path, headless_env):
    path = notebook(tmp_path / "late.ipynb", [SETUP, *CELLS, WAIT, CHECK])
    check_every_result_in_place(run_nbclient(path))


def test_papermill_run_keeps_every_late_result(tmp_path, headless_env, monkeypatch):
    folder = tmp_path / "experiment"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)  # papermill run from another folder, with --cwd
    path = notebook(folder / "late.ipynb", [SETUP, *CELLS, WAIT, CHECK])
    check_every_result_in_place(run_papermill(path, folder / "late-out.ipynb", folder))
    # the journal and the local copies are beside the notebook, not where papermill ran
    assert (folder / ".hiapi" / "journal.sqlite3").exists() and len(
        list(folder.glob("hiapi-outputs/*/*.png"))
    ) == 4
    assert not (tmp_path / ".hiapi").exists() and not (tmp_path / "hiapi-outputs").exists()


def test_without_a_wait_each_cell_says_its_results_need_one(tmp_path, headless_env):
    path = notebook(tmp_path / "nowait.ipynb", [SETUP, *CELLS])
    nb = run_nbclient(path)
    for source in CELLS:
        c = cell(nb, source)
        assert NOTE in text(c)
        assert pictures(c) == 0  # what nbclient keeps without the wait: the run really was late


def test_a_headless_rerun_is_answered_from_the_journal(tmp_path, headless_env):
    path = notebook(tmp_path / "again.ipynb", [SETUP, *CELLS, WAIT, CHECK])
    run_nbclient(path)
    nb = run_nbclient(path)  # a new kernel, a new sandbox on another port
    for source in CELLS:
        assert "cached" in text(cell(nb, source))
    with sqlite3.connect(tmp_path / ".hiapi" / "journal.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (4,)


def test_quickstart_headless_has_every_result_in_place(tmp_path, headless_env):
    """Notebook 01 through papermill: the --no-wait lighthouse, awaited in a later cell,
    is in its own cell in the saved file, like every waiting cell's result."""
    quickstart = Path(__file__).resolve().parents[1] / "notebooks" / "01-quickstart.ipynb"
    shutil.copy(quickstart, tmp_path / quickstart.name)
    nb = run_papermill(tmp_path / quickstart.name, tmp_path / "out.ipynb", tmp_path)
    lighthouse = cell(
        nb, "%%hiapi gpt-image-2/text-to-image --no-wait -o later\nA lighthouse in a storm, oil painting"
    )
    assert pictures(lighthouse) == 1 and 'data-status=\\"success\\"' in text(lighthouse)
    assert NOTE not in text(lighthouse)
    for c in nb.cells:
        if c.cell_type == "code" and c.source.startswith("%%hiapi") and "#fail" not in c.source:
            assert "submitting" not in text(c) and "handling" not in text(c), c.source
            if "7:3" not in c.source:  # the last cell is a refused line, on purpose
                assert pictures(c) >= 1 or "<video" in text(c), c.source
