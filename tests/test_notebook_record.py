"""Which notebook made each submission: the front end's word for it, the journal's column,
and what follows from it (``%hiapi export`` and the picker's journal source default to this
notebook's results; ``--all`` and ``notebook=None`` give the folder's)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from kernel_harness import execute, kernel_python, start_kernel, stop_kernel

from hiapi_notebook.journal import Journal
from hiapi_notebook.session import Session, notebook_name
from hiapi_notebook.views import frontend


class ZMQInteractiveShell:  # the name ipykernel's shell has
    def __init__(self, user_ns: dict | None = None) -> None:
        self.config = {"IPKernelApp": {}}
        self.user_ns = user_ns or {}


class TerminalInteractiveShell:
    def __init__(self) -> None:
        self.config = {"TerminalIPythonApp": {}}
        self.user_ns: dict = {}


@pytest.fixture
def shell(monkeypatch):
    for name in ("HIAPI_FRONTEND", "VSCODE_PID", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    current: dict = {"shell": None}
    monkeypatch.setattr(frontend, "_shell", lambda: current["shell"])
    return current


# -- the front end names the notebook ----------------------------------------------------------


def test_jupyter_server_and_vscode_name_the_notebook(shell, monkeypatch):
    shell["shell"] = ZMQInteractiveShell()
    assert frontend.notebook_file() is None  # nbclient, papermill: nobody says
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/u/notebooks/03-experiment.ipynb")
    assert frontend.notebook_file() == "/home/u/notebooks/03-experiment.ipynb"
    shell["shell"] = ZMQInteractiveShell({"__vsc_ipynb_file__": "/home/u/notebooks/vs.ipynb"})
    assert frontend.notebook_file() == "/home/u/notebooks/vs.ipynb"  # VS Code's own word first


def test_a_script_or_terminal_started_from_a_notebook_is_not_that_notebook(shell, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/u/notebooks/03-experiment.ipynb")  # inherited
    assert frontend.notebook_file() is None  # a script: no shell
    shell["shell"] = TerminalInteractiveShell()
    assert frontend.notebook_file() is None


@pytest.mark.parametrize("odd", ["", "   ", "a\x00b.ipynb", "line\nbreak.ipynb", "x" * 5000, 42, None])
def test_odd_names_are_not_recorded(shell, odd):
    shell["shell"] = ZMQInteractiveShell({"__vsc_ipynb_file__": odd})
    assert frontend.notebook_file() is None


def test_an_odd_name_in_the_environment_is_not_recorded(shell, monkeypatch):
    shell["shell"] = ZMQInteractiveShell()
    monkeypatch.setenv("JPY_SESSION_NAME", "line\nbreak.ipynb")
    assert frontend.notebook_file() is None


def test_a_non_string_in_the_namespace_is_ignored(shell, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/w/a.ipynb")
    shell["shell"] = ZMQInteractiveShell({"__vsc_ipynb_file__": 42})
    assert frontend.notebook_file() == "/w/a.ipynb"


def test_names_are_kept_relative_to_the_folder_the_journal_serves(tmp_path):
    inside = tmp_path / "sub" / "a.ipynb"
    assert notebook_name(str(inside), tmp_path) == "sub/a.ipynb"
    assert notebook_name("/elsewhere/b.ipynb", tmp_path) == "/elsewhere/b.ipynb"
    assert notebook_name("notebooks/c.ipynb", tmp_path) == "notebooks/c.ipynb"  # as the server said
    assert notebook_name(None, tmp_path) is None


def test_the_session_names_its_notebook_beside_its_journal(shell, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HIAPI_HOME", raising=False)
    shell["shell"] = ZMQInteractiveShell()
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "03-experiment.ipynb"))
    assert Session().notebook == "03-experiment.ipynb"


# -- the journal's column ----------------------------------------------------------------------

_OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_hash TEXT NOT NULL,
    variant INTEGER NOT NULL DEFAULT 0, model TEXT NOT NULL, route TEXT, storage TEXT,
    input TEXT NOT NULL, idempotency_key TEXT NOT NULL, task_id TEXT, status TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '[]', outputs TEXT NOT NULL DEFAULT '[]',
    files TEXT NOT NULL DEFAULT '[]', error TEXT, created_at REAL NOT NULL, submitted_at REAL,
    completed_at REAL, cost_estimate REAL, label TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO submissions (request_hash, model, input, idempotency_key, status, created_at)
    VALUES ('h', 'm', '{"prompt": "from before"}', 'k', 'success', 1);
"""


def test_claims_record_the_notebook_and_filters_find_them(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        a, _ = journal.claim("m", {"prompt": "one"}, notebook="a.ipynb")
        journal.claim("m", {"prompt": "two"}, notebook="b.ipynb")
        journal.claim("m", {"prompt": "three"})
        assert a.notebook == "a.ipynb"
        assert [r.prompt for r in journal.records(notebook="a.ipynb")] == ["one"]
        assert [r.prompt for r in journal.records()] == ["one", "two", "three"]
        assert [r.prompt for r in journal.history(notebook="b.ipynb")] == ["two"]
        assert journal.rows()[0]["notebook"] == "a.ipynb"
        again, new = journal.claim("m", {"prompt": "one"}, notebook="b.ipynb")
        assert not new and again.notebook == "a.ipynb"  # b reuses a's result; it stays a's


def test_an_older_journal_gains_the_column_and_older_writers_still_work(tmp_path):
    path = tmp_path / "j.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SCHEMA)
    with Journal(path) as journal:
        (old,) = journal.records()
        assert old.notebook is None and old.prompt == "from before"
        assert journal.records(notebook="a.ipynb") == []
        journal.claim("m", {"prompt": "new"}, notebook="a.ipynb")
    with sqlite3.connect(path) as conn:  # an older version inserts naming its own columns
        conn.execute(
            "INSERT INTO submissions (request_hash, model, input, idempotency_key, status, created_at) "
            "VALUES ('h2', 'm', '{\"prompt\": \"older again\"}', 'k2', 'pending', 2)"
        )
    with Journal(path) as journal:
        assert [(r.prompt, r.notebook) for r in journal.records()] == [
            ("from before", None),
            ("new", "a.ipynb"),
            ("older again", None),
        ]


def test_a_reused_row_no_notebook_made_becomes_the_reusing_notebooks(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.claim("m", {"prompt": "made by a script"})
        rec, new = journal.claim("m", {"prompt": "made by a script"}, notebook="a.ipynb")
        assert not new and rec.notebook == "a.ipynb"
        assert [r.prompt for r in journal.records(notebook="a.ipynb")] == ["made by a script"]


READ_OLD = """
import sys
from hiapi_notebook.journal import Journal
j = Journal(sys.argv[1])
print(j.read_only, j.notebooks, len(j.records(notebook="a.ipynb")), [r.prompt for r in j.records()])
"""


def test_a_read_only_older_journal_has_no_rows_of_any_notebook_and_all_of_the_folder(tmp_path):
    from test_journal import _as_a_user_who_cannot_write

    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SCHEMA)
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        done = subprocess.run(
            _as_a_user_who_cannot_write([sys.executable, "-c", READ_OLD, str(path)]),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True False 0 ['from before']"


# -- in real kernels: two notebooks in one folder ----------------------------------------------

CELL = "%%hiapi gpt-image-2/text-to-image\n{prompt}"


def _kernel(tmp_path, sandbox, notebook: str | None):
    env = {
        "HIAPI_BASE_URL": sandbox.url,
        "HIAPI_API_KEY": "k",
        "HIAPI_POLL_INTERVAL": "0.05",
        "IPYTHONDIR": str(tmp_path / ".ipython"),
        "JPY_SESSION_NAME": notebook or "",
    }
    km, kc = start_kernel(kernel_python("ipykernel7"), env=env, cwd=tmp_path)
    reply, _ = execute(kc, "%load_ext hiapi_notebook")
    assert reply["content"]["status"] == "ok"
    return km, kc


def _run(kc, code: str) -> str:
    reply, msgs = execute(kc, code, timeout=90)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")


@pytest.mark.kernel
def test_each_notebook_exports_and_offers_its_own_results(tmp_path, sandbox):
    a_path, b_path = tmp_path / "03-experiment.ipynb", tmp_path / "04-other.ipynb"
    km, kc = _kernel(tmp_path, sandbox, str(a_path))
    try:
        _run(kc, CELL.format(prompt="a lighthouse"))
        _run(kc, CELL.format(prompt="a harbour"))
    finally:
        stop_kernel(km, kc)
    km, kc = _kernel(tmp_path, sandbox, str(b_path))
    try:
        _run(kc, CELL.format(prompt="a kite"))
        _run(kc, CELL.format(prompt="a lighthouse"))  # a's result, reused: still a's
        said = _run(kc, "%hiapi export mine.json")
        assert "1 submission of 04-other.ipynb" in said and "--all" in said and "folder's 3" in said
        _run(kc, "%hiapi export --all everything.json")
        offered = _run(
            kc,
            "from hiapi_notebook.session import get_session\n"
            "s = get_session()\n"
            "print('mine', sorted(j.request.prompt for j in s.recorded(10)))\n"
            "print('folder', sorted(j.request.prompt for j in s.recorded(10, notebook=None)))\n"
            "print('a', sorted(j.request.prompt for j in s.recorded(10, notebook='03-experiment.ipynb')))",
        )
    finally:
        stop_kernel(km, kc)
    mine = json.loads((tmp_path / "mine.json").read_text(encoding="utf-8"))
    assert mine["notebook"] == "04-other.ipynb"
    assert [r["request"]["input"]["prompt"] for r in mine["results"]] == ["a kite"]
    assert [r["notebook"] for r in mine["results"]] == ["04-other.ipynb"]
    everything = json.loads((tmp_path / "everything.json").read_text(encoding="utf-8"))
    assert everything["notebook"] is None
    assert sorted(r["request"]["input"]["prompt"] for r in everything["results"]) == [
        "a harbour",
        "a kite",
        "a lighthouse",
    ]
    assert "mine ['a kite']" in offered
    assert "folder ['a harbour', 'a kite', 'a lighthouse']" in offered
    assert "a ['a harbour', 'a lighthouse']" in offered


@pytest.mark.kernel
def test_a_kernel_that_names_no_notebook_exports_the_folder_and_says_why(tmp_path, sandbox):
    km, kc = _kernel(tmp_path, sandbox, None)
    try:
        _run(kc, CELL.format(prompt="a kite"))
        said = _run(kc, "%hiapi export out.json")
    finally:
        stop_kernel(km, kc)
    assert "1 submission: the whole folder's" in said and "does not say which notebook" in said
    assert len(json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["results"]) == 1
