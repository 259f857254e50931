import asyncio
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kernel_harness import kernel  # noqa: F401  (a fixture, shared by every test file)

from hiapi_notebook.sandbox import SandboxServer
from hiapi_notebook.session import reset_session

SANDBOX_SPEED = 50  # an image finishes in about 0.12 s, a video in 0.5 s

# Small pictures and short clips from every sandbox the tests start, here and in the kernels,
# Jupyter servers and scripts they start (which inherit the environment): drawing real sizes
# (a 4K PNG, a 1080p clip) takes seconds each. The tests of real sizes ask for detail="full".
os.environ["HIAPI_SANDBOX_DETAIL"] = "fast"


@pytest.fixture(autouse=True)
def no_running_loop_left_behind(request):
    """Fail the test that leaves an event loop marked running in the main thread: every later
    ``asyncio.run`` in this process would refuse to start, far from the cause. (Browser tests hold
    Playwright's loop on purpose until their module ends: see tests/browser/conftest.py.)"""
    yield
    if "browser" in request.fixturenames:
        return
    leaked = asyncio.events._get_running_loop()
    if leaked is not None:
        asyncio.events._set_running_loop(None)
        pytest.fail(f"{leaked!r} was left marked running in the main thread (by this test or a fixture)")


@pytest.fixture
def sandbox_factory():
    """Start sandboxes with options, e.g. ``sandbox_factory(key="k", balance=0.1)``.

    Each runs at speed 50 unless told otherwise; all stop after the test.
    """
    started = []

    def start(**options) -> SandboxServer:
        options.setdefault("port", 0)
        options.setdefault("speed", SANDBOX_SPEED)
        server = SandboxServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def session(sandbox, tmp_path, monkeypatch):
    """A fresh package session pointed at ``sandbox``, its journal and local copies
    in tmp_path (the "notebook's folder"), status as text lines."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    s = reset_session()
    s.configure(base_url=sandbox.url, api_key="sandbox", poll_interval=0.02)
    yield s
    reset_session()


@pytest.fixture
def sandbox(sandbox_factory) -> SandboxServer:
    """A running sandbox on a free port, fast (speed 50), any non-empty key accepted."""
    return sandbox_factory()


class CallbackReceiver:
    """A local endpoint that records the callbacks POSTed to it and answers ``statuses`` in turn."""

    def __init__(self, statuses=()):
        self.calls = []  # (headers, case-insensitive; raw body) in arrival order
        self._statuses = list(statuses)
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._arrived:
                    receiver.calls.append((self.headers, body))
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def wait(self, count=1, timeout=10.0):
        """The first ``count`` callbacks, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.calls) < count and time.monotonic() < deadline:
                self._arrived.wait(deadline - time.monotonic())
            assert len(self.calls) >= count, f"{len(self.calls)} of {count} callbacks arrived"
            return self.calls[:count]

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def callback_receiver():
    """Make ``CallbackReceiver``s for the sandbox's callbacks; each is closed after the test."""
    made = []

    def make(statuses=()):
        made.append(CallbackReceiver(statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


# --- kernel tests: a sandbox and the kernel's environment -----------------------------------------
# A kernel test module may set KERNEL_SANDBOX_SPEED (default 50), KERNEL_API_KEY (default
# "sandbox") and KERNEL_POLL_INTERVAL (default "0.05") to shape both fixtures.


@pytest.fixture
def sandbox_server(request):
    with SandboxServer(port=0, speed=getattr(request.module, "KERNEL_SANDBOX_SPEED", 50)) as srv:
        yield srv


@pytest.fixture
def kernel_env(request, sandbox_server, tmp_path) -> dict[str, str]:
    """The test kernel's environment: pointed at ``sandbox_server``, its journal in tmp_path."""
    return {
        "HIAPI_BASE_URL": sandbox_server.url,
        "HIAPI_API_KEY": getattr(request.module, "KERNEL_API_KEY", "sandbox"),
        "HIAPI_POLL_INTERVAL": getattr(request.module, "KERNEL_POLL_INTERVAL", "0.05"),
        "HIAPI_HOME": str(tmp_path / ".hiapi"),
    }


@pytest.fixture
def ip(request, sandbox, tmp_path, monkeypatch):
    """Terminal IPython with the extension loaded, pointed at ``sandbox`` from the notebook's
    folder (tmp_path); a test module may set IPYTHON_API_KEY. Names a test binds are dropped."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_BASE_URL", sandbox.url)
    monkeypatch.setenv("HIAPI_API_KEY", getattr(request.module, "IPYTHON_API_KEY", "sandbox"))
    monkeypatch.setenv("HIAPI_POLL_INTERVAL", "0.02")
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    monkeypatch.delenv("HIAPI_DEFAULT_MODEL", raising=False)
    reset_session()
    shell = start_ipython() or get_ipython()
    shell.run_line_magic("load_ext", "hiapi_notebook")
    before = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - before:
        shell.user_ns.pop(name, None)
    reset_session()
