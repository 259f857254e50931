"""Reproducible notebooks in real kernels: a kernel killed mid-task, a new kernel
re-running the same cell re-attaches (no second task); cached re-runs send
nothing; expired URLs fall back to local copies; a broken journal is survivable."""

import signal
import time

import pytest
from kernel_harness import COLAB, display_updates, execute, kernel_argv, pictures, start_kernel, stop_kernel

from hiapi_notebook.sandbox import SandboxServer

pytestmark = pytest.mark.kernel
VIDEO_CELL = "%%hiapi seedance-2-0 --duration 5{extra}\nA paper boat on a rainy street"
IMAGE_CELL = "%%hiapi gpt-image-2/text-to-image\nA lighthouse at dusk"


class Notebook:
    """Kernels started one after another in the same folder, as after a restart."""

    def __init__(self, folder, srv, label="ipykernel7"):
        self.folder = folder
        self.env = {
            "HIAPI_BASE_URL": srv.url,
            "HIAPI_API_KEY": "k",
            "HIAPI_POLL_INTERVAL": "0.1",
            "IPYTHONDIR": str(folder / ".ipython"),
        }
        self.argv = kernel_argv(label)
        self.km = self.kc = None

    def start(self):
        self.km, self.kc = start_kernel(self.argv, env=self.env, cwd=self.folder)
        reply, _ = execute(self.kc, "%load_ext hiapi_notebook")
        assert reply["content"]["status"] == "ok"

    def run(self, code, timeout=60):
        return execute(self.kc, code, timeout)

    def kill(self):
        """kill -9: nothing in the kernel gets to clean up."""
        self.km.signal_kernel(signal.SIGKILL)
        self.kc.stop_channels()
        wait_for(lambda: not self.km.is_alive())

    def stop(self):
        if self.km is not None and self.km.is_alive():
            stop_kernel(self.km, self.kc)


@pytest.fixture
def notebook(tmp_path):
    made = []

    def make(srv, label="ipykernel7"):
        made.append(Notebook(tmp_path, srv, label))
        return made[-1]

    yield make
    for nb in made:
        nb.stop()


def wait_for(condition, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def media_in(msgs, marker):
    return [m for m in display_updates(msgs) if marker in str(m["content"]["data"])]


@pytest.mark.parametrize("no_wait", [False, True], ids=["waiting", "no-wait"])
def test_kill_9_mid_task_then_rerun_reattaches(notebook, no_wait):
    with SandboxServer(port=0, speed=4) as srv:  # the video takes about 6 s
        nb = notebook(srv)
        nb.start()
        cell = VIDEO_CELL.format(extra=" --no-wait" if no_wait else "")
        nb.kc.execute(cell)
        wait_for(lambda: srv.task_count == 1 and any(m == "GET" for m, _ in srv.requests))
        nb.kill()

        nb.start()
        reply, msgs = nb.run(cell.replace(" --no-wait", ""))  # the user re-runs it and waits
        assert reply["content"]["status"] == "ok", reply["content"]
        assert media_in(msgs, "<video"), "the re-attached result did not show"
        assert "re-attached" in str(msgs)
        assert srv.task_count == 1
        assert sum(1 for m, _ in srv.requests if m == "POST") == 1


def test_kill_before_the_create_answered_resends_with_the_same_key(notebook):
    with SandboxServer(port=0, speed=20) as srv:
        srv.inject("slow:2", method="POST")  # the create is in flight when the kernel dies
        nb = notebook(srv)
        nb.start()
        nb.kc.execute(IMAGE_CELL)
        wait_for(lambda: any(m == "POST" for m, _ in srv.requests))
        nb.kill()
        wait_for(lambda: srv.task_count == 1)  # the server finished the create anyway

        nb.start()
        reply, msgs = nb.run(IMAGE_CELL)
        assert reply["content"]["status"] == "ok"
        assert pictures(msgs)
        assert "replayed" in str(msgs)  # the resend carried the first key: no second task
        assert srv.task_count == 1


@pytest.mark.parametrize("label", ["ipykernel7", COLAB])
def test_cached_rerun_sends_nothing_and_survives_expired_urls(notebook, label):
    with SandboxServer(port=0, speed=20, url_ttl=1) as srv:
        nb = notebook(srv, label)
        nb.start()
        reply, first = nb.run(IMAGE_CELL)
        assert reply["content"]["status"] == "ok"
        time.sleep(1.5)  # the output URL has now expired on the server
        nb.stop()

        nb.start()
        before = len(srv.requests)
        reply, again = nb.run(IMAGE_CELL + "\n")
        assert reply["content"]["status"] == "ok"
        assert len(srv.requests) == before, srv.requests[before:]  # zero requests
        assert "cached" in str(again)
        png = pictures(again)
        assert png, "the local copy was not shown"
        reply, msgs = nb.run(
            "from hiapi_notebook.api import submit\n"
            "g = submit('A lighthouse at dusk', model='gpt-image-2/text-to-image', show=False)\n"
            "print(len(g.wait().outputs[0].data()), g.cached)"
        )
        text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
        assert text.split()[1] == "True" and int(text.split()[0]) > 1000
        assert len(srv.requests) == before


@pytest.mark.parametrize("damage", ["corrupt", "locked"])
def test_broken_journal_is_one_line_and_the_notebook_still_works(notebook, tmp_path, damage):
    home = tmp_path / ".hiapi"
    home.mkdir()
    db = home / "journal.sqlite3"
    holder = None
    if damage == "corrupt":
        db.write_bytes(b"this is not a database" * 100)
    else:
        import sqlite3

        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
    try:
        with SandboxServer(port=0, speed=20) as srv:
            nb = notebook(srv)
            nb.start()
            reply, msgs = nb.run(IMAGE_CELL)
            assert reply["content"]["status"] == "ok", reply["content"]
            stderr = "".join(
                m["content"]["text"]
                for m in msgs
                if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
            )
            assert "journal" in stderr and ("HIAPI_HOME" in stderr or "delete" in stderr), stderr
            assert stderr.count("\n") == 1 and "Traceback" not in stderr
            assert pictures(msgs)
            assert srv.task_count == 1
    finally:
        if holder is not None:
            holder.close()
