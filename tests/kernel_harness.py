"""Kernel-level test helpers: real ipykernel processes driven through jupyter_client.

Each supported ipykernel major runs from its own venv (`make test` creates them):
``.venv`` has ipykernel 7.x, ``.venv-ipykernel6`` has 6.x, and ``.venv-colab`` is Google Colab's
pinned set (IPython 7.34, ipywidgets 7.7.1, ipykernel 6.17; ``tests/colab/colab-runtime.txt``)
whose kernel starts through ``tests/colab/colab_kernel.py`` (Colab's ``Shell`` class and a
``google.colab`` module). A kernelspec written to a temp dir points at that venv's python, so the
pytest process never needs the kernel's ipykernel version.

Use the ``kernel`` fixture (one test per ipykernel major, ids ``ipykernel6`` / ``ipykernel7``)::

    def test_x(kernel):
        reply, msgs = kernel.execute("1 + 1")
        later = kernel.collect_iopub(10, until=lambda got: ...)

and ``@with_colab`` on a test that should also run in the Colab-like kernel (id ``colab``).

Override ``kernel_env`` (a dict of extra environment variables) to point kernels at a sandbox.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parents[1]
VENVS = (".venv", ".venv-ipykernel6")
LABELS = ("ipykernel6", "ipykernel7")
COLAB = "colab"
COLAB_VENV = ".venv-colab"
COLAB_LAUNCHER = ROOT / "tests" / "colab" / "colab_kernel.py"
SPEC_NAME = "hiapi-test-kernel"

Msg = dict[str, Any]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """A missing test prerequisite: a loud failure in CI, a skip on a developer's machine."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


@functools.cache
def ipykernel_version(python: str) -> str | None:
    """The ipykernel version importable by `python`, or None."""
    try:
        done = subprocess.run(
            [python, "-c", "import ipykernel; print(ipykernel.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def kernel_pythons() -> list[tuple[str, str]]:
    """(label, python) for each kernel venv present, labelled by the ipykernel major it really has."""
    found = []
    for venv in VENVS:
        python = ROOT / venv / "bin" / "python"  # not resolved: the symlink is what selects the venv
        version = ipykernel_version(str(python)) if python.exists() else None
        if version:
            found.append((f"ipykernel{version.split('.')[0]}", str(python)))
    return found


def kernel_python(label: str) -> str:
    """The python for `label` ("ipykernel6" / "ipykernel7"); skips or fails (CI) when absent."""
    for found, python in kernel_pythons():
        if found == label:
            return python
    missing(
        f"no venv with {label} among {', '.join(VENVS)} (found: {kernel_pythons()}); `make test` creates them"
    )
    raise AssertionError("unreachable")


def colab_python() -> str:
    """The Colab-like venv's python; skips or fails (CI) when `make test` has not made it."""
    python = ROOT / COLAB_VENV / "bin" / "python"
    if not ipykernel_version(str(python)):
        missing(f"no Colab-like kernel venv {COLAB_VENV}; `make test` creates it")
    return str(python)


def kernel_argv(label: str) -> list[str]:
    """The command that starts `label`'s kernel, less ``-f {connection_file}``."""
    if label == COLAB:
        return [colab_python(), "-Xfrozen_modules=off", str(COLAB_LAUNCHER)]
    return [kernel_python(label), "-m", "ipykernel_launcher"]


def write_kernelspec(folder: Path, argv: list[str], name: str = SPEC_NAME) -> Path:
    """A kernelspec ``folder/name`` running `argv`; `folder` can go on JUPYTER_PATH's
    ``kernels`` level (pass ``folder`` = ``<dir>/kernels``) or to a KernelSpecManager."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [*argv, "-f", "{connection_file}"],
                "display_name": f"test kernel ({name})",
                "language": "python",
            }
        )
    )
    return folder / name


def kernel_on_path(label: str, folder: Path) -> tuple[str, dict[str, str]]:
    """For nbclient (which finds kernels by name): `label`'s kernelspec in ``folder/kernels``,
    and the environment that puts ``folder`` on JUPYTER_PATH. Returns (kernel name, env)."""
    name = f"hiapi-{label}"
    write_kernelspec(folder / "kernels", kernel_argv(label), name)
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))
    return name, {"JUPYTER_PATH": path}


def start_kernel(
    python: str | list[str],
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
) -> tuple[KernelManager, BlockingKernelClient]:
    """Start an ipykernel running on `python` (or the command `kernel_argv` gives);
    returns (km, kc) with channels ready."""
    spec_root = Path(tempfile.mkdtemp(prefix="hiapi-kernelspec-"))
    argv = [python, "-m", "ipykernel_launcher"] if isinstance(python, str) else python
    write_kernelspec(spec_root, argv)
    km = KernelManager(
        kernel_name=SPEC_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_root)])
    )
    km.hiapi_spec_root = spec_root  # removed by stop_kernel
    # jupyter_client replaces the whole environment when env is given: start from ours.
    km.start_kernel(env={**os.environ, **(env or {})}, cwd=str(cwd) if cwd else None)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
    except BaseException:
        stop_kernel(km, kc)
        raise
    return km, kc


def stop_kernel(km: KernelManager, kc: BlockingKernelClient) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    shutil.rmtree(getattr(km, "hiapi_spec_root", ""), ignore_errors=True)


def _backlog(kc: BlockingKernelClient) -> list[Msg]:
    # iopub messages of other parents seen while waiting for a cell; collect_iopub returns them.
    if not hasattr(kc, "hiapi_backlog"):
        kc.hiapi_backlog = []
    return kc.hiapi_backlog


def execute(kc: BlockingKernelClient, code: str, timeout: float = 60) -> tuple[Msg, list[Msg]]:
    """Run one cell; returns (execute_reply, the cell's iopub messages up to its `status: idle`)."""
    msg_id = kc.execute(code)
    deadline = time.monotonic() + timeout
    msgs: list[Msg] = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(
                f"cell not idle after {timeout}s; iopub so far: {[m['msg_type'] for m in msgs]}\n{code}"
            ) from None
        if msg["parent_header"].get("msg_id") != msg_id:
            _backlog(kc).append(msg)
            continue
        msgs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        try:
            reply = kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no execute_reply after {timeout}s\n{code}") from None
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply, msgs


def collect_iopub(
    kc: BlockingKernelClient, seconds: float, until: Callable[[list[Msg]], bool] | None = None
) -> list[Msg]:
    """iopub messages arriving from now on (after a cell went idle): background updates.

    Reads for up to `seconds`; stops early once ``until(messages_so_far)`` is true.
    """
    msgs = list(_backlog(kc))
    _backlog(kc).clear()
    deadline = time.monotonic() + seconds
    while not (until and until(msgs)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            msgs.append(kc.get_iopub_msg(timeout=remaining))
        except queue.Empty:
            break
    return msgs


# Small readers for what background work sends.
def widget_updates(msgs: list[Msg], comm_id: str | None = None) -> list[dict]:
    """The `state` dicts of ipywidgets `update` comm messages (optionally for one widget)."""
    return [
        m["content"]["data"].get("state", {})
        for m in msgs
        if m["msg_type"] == "comm_msg"
        and m["content"]["data"].get("method") == "update"
        and (comm_id is None or m["content"]["comm_id"] == comm_id)
    ]


def display_updates(msgs: list[Msg]) -> list[Msg]:
    return [m for m in msgs if m["msg_type"] == "update_display_data"]


def pictures(msgs: list[Msg]) -> list[bytes]:
    """The pictures display updates brought, as bytes: an image output, or (where files
    beside the notebook do not load, as in Colab) a preview embedded in the HTML."""
    found = []
    for m in display_updates(msgs):
        data = m["content"]["data"]
        if "image/png" in data:
            found.append(base64.b64decode(data["image/png"]))
        html = data.get("text/html", "")
        found += [
            base64.b64decode(b) for b in re.findall(r'src="data:image/(?:png|jpeg);base64,([^"]+)"', html)
        ]
    return found


def widget_model_ids(msgs: list[Msg]) -> list[str]:
    """Model ids of the widgets a cell displayed (their comm ids)."""
    return [
        m["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for m in msgs
        if m["msg_type"] == "display_data"
        and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
    ]


@dataclass
class Kernel:
    """A running test kernel; `label` is "ipykernel6", "ipykernel7" or "colab"."""

    label: str
    python: str
    km: KernelManager
    kc: BlockingKernelClient

    def execute(self, code: str, timeout: float = 60) -> tuple[Msg, list[Msg]]:
        return execute(self.kc, code, timeout)

    def collect_iopub(self, seconds: float, until: Callable[[list[Msg]], bool] | None = None) -> list[Msg]:
        return collect_iopub(self.kc, seconds, until)


@pytest.fixture(params=LABELS)
def kernel(request, kernel_env, tmp_path):
    """A fresh kernel per test, once on ipykernel 6 and once on ipykernel 7 (and in the
    Colab-like kernel with ``@with_colab``); cwd is tmp_path."""
    argv = kernel_argv(request.param)
    # A private IPython dir keeps a developer's startup files and history out of the tests.
    env = {"IPYTHONDIR": str(tmp_path / ".ipython"), **kernel_env}
    km, kc = start_kernel(argv, env=env, cwd=tmp_path)
    try:
        yield Kernel(request.param, argv[0], km, kc)
    finally:
        stop_kernel(km, kc)


# The tests that matter most where users are also run in Colab's pinned set: one line each.
with_colab = pytest.mark.parametrize("kernel", (*LABELS, COLAB), indirect=True)
