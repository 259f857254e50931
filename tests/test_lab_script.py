"""``make lab`` (scripts/lab.sh) refuses a busy or malformed port before it starts
anything, and says which port and which variable moves it. Each case stops at
that check, in well under a second."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from kernel_harness import missing

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "lab.sh"


@pytest.fixture
def busy_port():
    """A port something already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_lab(**env: str) -> subprocess.CompletedProcess:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        missing("scripts/lab.sh runs .venv/bin/python: run make install first")
    full = {k: v for k, v in os.environ.items() if k not in ("HIAPI_API_KEY", "HIAPI_BASE_URL")}
    full.update(env)
    started = time.monotonic()
    # Its own process group: if the check let it through, nothing it started outlives the test.
    proc = subprocess.Popen(
        ["bash", str(SCRIPT)],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("lab.sh went on past its port check (it started JupyterLab)")
    assert time.monotonic() - started < 10
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def suggested(err: str, name: str) -> int:
    match = re.search(rf"\(e\.g\. {name}=(\d+) make lab\)", err)
    assert match, err
    return int(match.group(1))


def test_a_busy_jupyterlab_port_names_port_and_fix(busy_port):
    sandbox_port = free_port()
    done = run_lab(PORT=str(busy_port), SANDBOX_PORT=str(sandbox_port))
    err = done.stderr.strip()
    assert done.returncode != 0
    assert err == (
        f"make lab: port {busy_port} (JupyterLab) is already in use; run with PORT=<a free port> "
        f"(e.g. PORT={suggested(err, 'PORT')} make lab)"
    )
    port = suggested(err, "PORT")
    assert port != busy_port and not listening(port)
    assert not listening(sandbox_port), "the sandbox was started although JupyterLab cannot be"
    assert done.stdout == ""


def test_a_busy_sandbox_port_names_port_and_fix(busy_port):
    done = run_lab(PORT=str(free_port()), SANDBOX_PORT=str(busy_port))
    err = done.stderr.strip()
    assert done.returncode != 0
    assert f"port {busy_port} (the sandbox) is already in use; run with SANDBOX_PORT=<a free port>" in err
    assert not listening(suggested(err, "SANDBOX_PORT"))


@pytest.mark.parametrize(
    "env, needle",
    [
        (dict(PORT="eighty"), "PORT='eighty' is not a port number; use one from 1 to 65535 (e.g. PORT=8888"),
        (dict(PORT="70000"), "PORT='70000' is not a port number"),
    ],
)
def test_malformed_ports_are_one_line_errors(env, needle):
    done = run_lab(**env)
    assert done.returncode != 0
    assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_one_port_for_both_is_refused():
    port = free_port()
    done = run_lab(PORT=str(port), SANDBOX_PORT=str(port))
    assert done.returncode != 0
    assert f"PORT and SANDBOX_PORT are both {port}; give the sandbox another" in done.stderr
    assert not listening(port)
