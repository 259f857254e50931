"""JupyterLab (and Notebook 7) in headless Chromium: throwaway servers and page helpers for
browser tests.

The fixtures that use these live in conftest.py beside this file (`lab`, `browser`, `page`).
Page helpers drive JupyterLab through `window.jupyterapp` (the server runs with
`expose_app_in_browser`), which is steadier than clicking menus.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
LAB_OVERRIDES = ROOT / "scripts" / "lab-overrides.json"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright cannot download browsers here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A JupyterLab server on loopback, no token, everything it writes in a temp dir.

    Its kernels inherit os.environ plus `env` (e.g. HIAPI_BASE_URL / HIAPI_API_KEY of a sandbox).
    Notebooks are served from copies: `add_notebooks(folder)` copies a folder under the root.
    """

    def __init__(self, env: dict[str, str] | None = None):
        self.env = dict(env or {})
        self.tmp = Path(tempfile.mkdtemp(prefix="hiapi-lab-"))
        self.root = self.tmp / "root"
        self.root.mkdir()
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = self.tmp / "lab.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_notebooks(self, folder: str | os.PathLike, name: str | None = None) -> str:
        """Copy `folder` under the server root; returns its path relative to the root."""
        base = name = name or Path(folder).name
        n = 1
        while (self.root / name).exists():  # one server serves many tests: keep copies apart
            n += 1
            name = f"{base}-{n}"
        shutil.copytree(folder, self.root / name)
        return name

    module = "jupyterlab"  # what `python -m` starts
    app = "LabApp"  # the application class its options belong to
    extra_args: tuple[str, ...] = ("--LabApp.extension_manager=readonly",)  # never look extensions up online

    def command(self) -> list[str]:
        app = f"--{self.app}"
        cmd = [
            sys.executable,
            "-m",
            self.module,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={self.root}",
            f"{app}.workspaces_dir={self.tmp / 'workspaces'}",
            f"{app}.user_settings_dir={self.tmp / 'user-settings'}",
            # The settings overrides (no cell virtualisation, no news) from a temp app settings
            # dir, so they hold even when nothing wrote them into the venv.
            f"{app}.app_settings_dir={self.tmp / 'app-settings'}",
            f"{app}.expose_app_in_browser=True",
            *self.extra_args,
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def start(self, timeout: float = 90) -> LabServer:
        (self.tmp / "app-settings").mkdir(exist_ok=True)
        shutil.copy(LAB_OVERRIDES, self.tmp / "app-settings" / "overrides.json")
        env = {
            **os.environ,
            # Keep a developer's own Jupyter / IPython configuration out of the tests.
            "JUPYTER_CONFIG_DIR": str(self.tmp / "jupyter-config"),
            "IPYTHONDIR": str(self.tmp / "ipython"),
            **self.env,
        }
        for _attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                self.command(),
                env=env,
                cwd=self.tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            if self._wait_ready(timeout):
                return self
            if self.proc.poll() is None:
                break
        self.stop(keep_tmp=True)
        raise RuntimeError(f"JupyterLab did not start; log {self.log_path}:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, keep_tmp: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the server shuts its kernels down first
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


class NotebookServer(LabServer):
    """A Notebook 7 server (``jupyter notebook``, the ``notebook`` package) set up as LabServer is:
    loopback, no token, its own temp dirs, the same settings overrides, ``window.jupyterapp``.
    Notebooks open at ``/notebooks/<path>``."""

    module = "notebook"
    app = "JupyterNotebookApp"
    extra_args = ()


# --- page helpers -----------------------------------------------------------------------------

# The current notebook's kernel status, and whether any cell is queued or running ("[*]").
_STATE_JS = """() => {
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
                 && widget.sessionContext.session.kernel;
  const busyCells = [...document.querySelectorAll('.jp-InputPrompt')]
                    .filter(p => p.textContent.includes('*')).length;
  return {kernel: kernel ? kernel.status : null, busyCells};
}"""


def open_notebook(page, path: str, timeout: float = 90) -> None:
    """Open `path` (relative to the server root) in a fresh layout and wait for an idle kernel.

    Accepts the "Select Kernel" dialog shown for a notebook without a kernelspec.
    """
    page.goto(f"/lab/tree/{quote(path)}?reset")
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    idle = page.locator("#jp-main-statusbar >> text=Idle")
    deadline = time.monotonic() + timeout
    while not idle.count():
        if accept.count():
            accept.first.click()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: kernel not idle after {timeout}s")
        page.wait_for_timeout(200)


def wait_idle(page, timeout: float = 120) -> None:
    """Wait until the notebook's kernel is idle and no cell is queued or running."""
    page.wait_for_function(
        f"() => {{ const s = ({_STATE_JS})(); return s.kernel === 'idle' && s.busyCells === 0; }}",
        timeout=timeout * 1000,
    )


def kernel_state(page) -> dict:
    """{"kernel": status or None, "busyCells": number of cells showing [*]}."""
    return page.evaluate(_STATE_JS)


def run_all(page, timeout: float = 120) -> bool:
    """Run all cells of the current notebook and wait until done; False if a cell failed."""
    ok = page.evaluate(
        """async (ms) => {
             const timer = new Promise((_, fail) => setTimeout(() => fail(new Error('run-all timed out')), ms));
             return await Promise.race([window.jupyterapp.commands.execute('notebook:run-all-cells'), timer]);
           }""",
        timeout * 1000,
    )
    wait_idle(page, timeout)
    return bool(ok)


def save(page, timeout: float = 30) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        "        return w && w.context && !w.context.model.dirty; }",
        timeout=timeout * 1000,
    )


def screenshot(page, name: str) -> Path:
    """Save a PNG of the page under test-artifacts/screenshots/ (look at it!)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# No key and no URL, so `%hiapi connect` starts the built-in sandbox inside each kernel and nothing
# can reach a real account; the journal lives beside each notebook copy.
BUILTIN_SANDBOX_ENV = {
    "HIAPI_API_KEY": "",
    "HIAPI_BASE_URL": "",
    "HIAPI_HOME": "",
    "HIAPI_DEFAULT_MODEL": "",
    "HIAPI_NOTEBOOK_DISPLAY": "",
    "HIAPI_SANDBOX_SPEED": "8",
    "HIAPI_POLL_INTERVAL": "0.2",
}


def record_dialogs(page) -> None:
    """``page.hiapi_dialogs`` lists the messages of alert / confirm / prompt dialogs (each is
    dismissed); leaving a page with unsaved changes is accepted."""
    page.hiapi_dialogs = []

    def on_dialog(dialog):
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            page.hiapi_dialogs.append(dialog.message)
            dialog.dismiss()

    page.on("dialog", on_dialog)


@contextlib.contextmanager
def opened_page(request, browser, base_url: str, width: int = 1280, height: int = 900):
    """A new page whose relative URLs go to ``base_url``, its dialogs recorded (see
    ``record_dialogs``); a screenshot is kept if the test failed, then it is closed."""
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    record_dialogs(page)
    try:
        yield page
    finally:
        if getattr(request.node, "hiapi_call_failed", False):
            screenshot(page, "FAILED-" + re.sub(r"[^\w.-]+", "_", request.node.name))
        context.close()


def write_notebook(path: Path, sources) -> Path:
    """A notebook of one code cell per source, on the python3 kernel, written to ``path``
    (its folder made): what a test then copies into a server with ``add_notebooks``."""
    import nbformat

    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        }
    )
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def without_kernels(context, url_pattern: str) -> None:
    """Pages of ``context`` whose URL matches ``url_pattern`` get JupyterLab's own page option
    ``notebookStartsKernel: false``: a notebook opens as a viewer with no kernel shows it."""

    def no_kernel(route):
        response = route.fetch()
        body = response.text().replace('"notebookStartsKernel": true', '"notebookStartsKernel": false')
        route.fulfill(response=response, body=body)

    context.route(re.compile(url_pattern), no_kernel)
