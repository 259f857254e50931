"""Terminal IPython in a real terminal (tmux): the status lines of a ``--no-wait``
task go above the prompt, one line per status, and what the user is typing
meanwhile stays on the prompt line, intact. A plain script gets plain lines.

Driven as a person would: keys sent to terminal IPython in a tmux pane, the
screen read back with ``capture-pane``. ``make test`` installs tmux."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from kernel_harness import missing

pytestmark = pytest.mark.terminal

WIDTH, HEIGHT = 120, 40
TYPED = 'x = "typed while waiting"'
ORDER = ["submitting", "submitted", "queued", "handling", "archiving", "success"]


class Pane:
    """One tmux server (its own socket) with one pane running ``command``."""

    def __init__(self, command: str, cwd) -> None:
        self.socket = f"hiapi-test-{uuid.uuid4().hex[:12]}"
        self.tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y", str(HEIGHT),
            "-c", str(cwd), command,
        )  # fmt: skip

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, f"tmux {args[0]}: {done.stderr.strip()}"
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)  # literally, no key names

    def screen(self) -> list[str]:
        return [row.rstrip() for row in self.tmux("capture-pane", "-p", "-t", "t").splitlines()]

    def wait_for(self, predicate, what: str, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.screen()
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                pytest.fail(f"waited {timeout:.0f} s for {what}; the screen:\n" + "\n".join(rows))
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def ipython_pane(sandbox_factory, tmp_path):
    if shutil.which("tmux") is None:
        missing("tmux is not installed (make test installs it: apt-get install tmux)")
    # Slow enough (an image takes about 3 s) that statuses change while the user types.
    sandbox = sandbox_factory(speed=2)
    env = {
        "HIAPI_BASE_URL": sandbox.url,
        "HIAPI_API_KEY": "sandbox",
        "HIAPI_POLL_INTERVAL": "0.1",
        "IPYTHONDIR": str(tmp_path / "ipython"),  # no profile, history or config of the user's
        "TERM": "xterm-256color",
    }
    argv = [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "--no-confirm-exit"]
    command = "env -u HIAPI_NOTEBOOK_DISPLAY -u HIAPI_DEFAULT_MODEL " + " ".join(
        [*(shlex.quote(f"{k}={v}") for k, v in env.items()), *map(shlex.quote, argv)]
    )
    pane = Pane(command, tmp_path)
    try:
        pane.wait_for(lambda rows: any(r.startswith("In [1]:") for r in rows), "the first prompt", 60)
        yield pane
    finally:
        pane.close()


def hiapi_rows(rows: list[str]) -> list[str]:
    return [r for r in rows if "[hiapi]" in r]


def status_of(row: str) -> str:
    match = re.search(r" — (\w+)", row)
    return match.group(1) if match else ""


def test_no_wait_status_lines_go_above_what_the_user_types(ipython_pane):
    pane = ipython_pane
    pane.type("%load_ext hiapi_notebook")
    pane.keys("Enter")
    pane.wait_for(lambda rows: any(r.startswith("In [2]:") for r in rows), "the second prompt")
    pane.type("%hiapi gpt-image-2/text-to-image --no-wait -o bg a fox in the snow")
    pane.keys("Enter")
    pane.wait_for(lambda rows: any(r.startswith("In [3]:") for r in rows), "the prompt after --no-wait")
    pane.type(TYPED)
    typing = pane.wait_for(lambda rows: any(TYPED in r for r in rows), "the typed text")
    seen_while_typing = {status_of(r) for r in hiapi_rows(typing)}
    assert "success" not in seen_while_typing, "the task ended before anything was typed: too fast a test"

    rows = pane.wait_for(
        lambda rows: any(r.startswith("[hiapi]   image: ") for r in rows), "the end of the task and its file"
    )
    text = "\n".join(rows)
    filled = [r for r in rows if r]
    # What the user typed is intact, once, on the prompt line, and that line is the last one.
    assert filled[-1] == f"In [3]: {TYPED}", text
    assert text.count(TYPED) == 1, text
    # Every status line is a line of its own, above the prompt, short enough not to wrap.
    status_rows = hiapi_rows(rows)
    assert all(r.startswith("[hiapi] ") for r in status_rows), text
    assert all(len(r) < WIDTH for r in status_rows), text
    assert rows.index(filled[-1]) > max(rows.index(r) for r in status_rows)
    # One line per change of status, in order; some of them came while the user typed.
    statuses = [status_of(r) for r in status_rows if status_of(r)]
    assert statuses[0] == "submitting" and statuses[-1] == "success", text
    assert statuses == [s for s in ORDER if s in statuses], text  # each once, in order
    assert "handling" in statuses, text
    assert len(set(statuses) - seen_while_typing) >= 1
    assert "sandbox (synthetic)" in status_rows[-2], text  # the last status line says how it ended

    # The prompt's buffer, not just the screen, holds the typed text: run it.
    pane.keys("Enter")
    pane.type("x")
    pane.keys("Enter")
    rows = pane.wait_for(lambda rows: any(r.startswith("Out[4]:") for r in rows), "the value of x")
    assert "Out[4]: 'typed while waiting'" in rows, "\n".join(rows)


def test_a_plain_script_gets_plain_lines(sandbox, tmp_path):
    script = (
        "import hiapi_notebook as h\n"
        "h.generate('a fox in the snow', model='gpt-image-2/text-to-image')\n"
        "print('after')\n"
    )
    env = {
        **os.environ,
        "HIAPI_BASE_URL": sandbox.url,
        "HIAPI_API_KEY": "sandbox",
        "HIAPI_POLL_INTERVAL": "0.02",
    }
    env.pop("HIAPI_NOTEBOOK_DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "after" and lines[-2].startswith("[hiapi]   image: hiapi-outputs/"), done.stdout
    assert lines[0].startswith('[hiapi] gpt-image-2/text-to-image · "a fox in the snow" — submitting')
    statuses = [status_of(line) for line in lines if status_of(line)]
    assert statuses[0] == "submitting" and statuses[-1] == "success", done.stdout
    assert statuses == [s for s in ORDER if s in statuses], done.stdout  # one line per status, in order


def test_ctrl_c_while_a_cell_waits_says_it_runs_on_and_its_end_still_comes(ipython_pane):
    pane = ipython_pane
    pane.type("%load_ext hiapi_notebook")
    pane.keys("Enter")
    pane.wait_for(lambda rows: any(r.startswith("In [2]:") for r in rows), "the second prompt")
    pane.type("%hiapi gpt-image-2/text-to-image -o fox a fox asleep in the snow")
    pane.keys("Enter")
    pane.wait_for(lambda rows: any(status_of(r) == "queued" for r in rows), "the task queued")
    pane.keys("C-c")
    rows = pane.wait_for(
        lambda rows: any(r.startswith("[hiapi]   image: ") for r in rows), "the end of the task and its file"
    )
    text = "\n".join(rows)
    said = [r for r in rows if "you stopped waiting; it runs on and ends here" in r]
    assert len(said) == 1 and said[0].startswith("[hiapi] tk-"), text  # a line of its own, the id first
    assert rows[rows.index(said[0]) - 1] == "^C", text  # not glued to the echoed ^C
    assert "KeyboardInterrupt" not in text and "Traceback" not in text, text
    assert any(r.startswith("In [3]:") for r in rows), text  # the prompt came back at once
    assert status_of(hiapi_rows(rows)[-2]) == "success", text  # and the end came above it
    pane.type("fox.status")
    pane.keys("Enter")
    rows = pane.wait_for(lambda rows: any(r.startswith("Out[3]:") for r in rows), "the bound result")
    assert "Out[3]: 'success'" in rows, "\n".join(rows)


def test_a_cell_magic_ends_with_esc_then_enter_as_the_readme_says(ipython_pane):
    pane = ipython_pane
    pane.type("%load_ext hiapi_notebook")
    pane.keys("Enter")
    pane.wait_for(lambda rows: any(r.startswith("In [2]:") for r in rows), "the second prompt")
    pane.type("%%hiapi gpt-image-2/text-to-image")
    pane.keys("Enter")
    pane.type("a fox asleep in the snow")
    pane.keys("Enter")
    pane.keys("Enter")
    time.sleep(1.0)
    assert hiapi_rows(pane.screen()) == []  # Enter only adds lines to the cell
    pane.keys("Escape", "Enter")
    rows = pane.wait_for(
        lambda rows: any(r.startswith("[hiapi]   image: ") for r in rows), "the cell's result"
    )
    assert status_of(hiapi_rows(rows)[-2]) == "success", "\n".join(rows)
