"""A malicious HiAPI server for the tests, and a way to run what it could exhaust in a box.

``HostileServer`` speaks HiAPI's wire contract over real HTTP on loopback (a thread of this
process), but every name and body in it is chosen by the test: task ids such as ``..`` or
``abc~``, output types with ``../`` or 5,000 characters, outputs sent one byte at a time,
gzip bombs, ``Content-Disposition`` names that climb out of a folder.

``run_bounded`` runs a snippet in a child Python under resource limits (address space,
file size, wall time): when the code under test does not hold, the exhaustion fails that
child, and so the test, never the machine.
"""

from __future__ import annotations

import itertools
import json
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Body:
    """What one file URL answers: ``data`` with its headers, sent whole or ``every`` seconds
    one byte at a time (a trickle)."""

    data: bytes
    content_type: str = "image/png"
    headers: dict[str, str] = field(default_factory=dict)
    every: float | None = None


class HostileServer:
    """``HostileServer()``: ``url`` is its API base; ``ids`` the task ids its creates hand out
    in turn; ``outputs(task_id, root)`` the output list of a task (every task succeeds at
    once); ``files`` what each ``/files/NAME`` path answers; ``requests`` what was asked."""

    def __init__(self) -> None:
        self.ids = (f"tk-hostile-{n}" for n in itertools.count())
        self.outputs = lambda task_id, root: [{"url": f"{root}/files/ok.png", "type": "image"}]
        self.files: dict[str, Body] = {"ok.png": Body(tiny_png())}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.tasks: dict[str, dict] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, data) -> None:
                body = json.dumps({"code": status, "message": "success", "data": data}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                server.requests.append(("POST", self.path, dict(self.headers)))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                task_id = next(server.ids)
                server.tasks[task_id] = {
                    "taskId": task_id,
                    "model": "gpt-image-2/text-to-image",
                    "status": "success",
                    "created": int(time.time()),
                    "completed": int(time.time()),
                    "output": server.outputs(task_id, server.root),
                }
                self._json(200, {"taskId": task_id})

            def do_GET(self):
                server.requests.append(("GET", self.path, dict(self.headers)))
                path = urlsplit(self.path).path
                if path == "/v1/tasks":
                    tasks = list(server.tasks.values())
                    return self._json(200, {"tasks": tasks, "total": len(tasks), "page": 1, "size": 100})
                if path.startswith("/v1/tasks/"):
                    task = server.tasks.get(path.removeprefix("/v1/tasks/"))
                    return self._json(200, task) if task else self._json(404, None)
                body = server.files.get(path.removeprefix("/files/"))
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", body.content_type)
                headers = {"Content-Length": str(len(body.data)), **body.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if body.every is None:
                        self.wfile.write(body.data)
                        return
                    for byte in body.data:  # a trickle, until the client hangs up
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(body.every)
                except OSError:
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.url = self.root + "/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def file_gets(self) -> list[tuple[str, dict[str, str]]]:
        return [(path, headers) for method, path, headers in self.requests if path.startswith("/files/")]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def tiny_png(width: int = 4, height: int = 4) -> bytes:
    """A valid RGB PNG of one grey."""
    return png_declaring(width, height)


def png_declaring(width: int, height: int) -> bytes:
    """A whole, valid PNG of ``width``×``height`` grey pixels, compressed row by row: 12000×12000
    is about 420 KB here and 432 MB once decoded."""
    row = b"\x00" + b"\x80" * (width * 3)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gzip_bomb(inflated_mb: int) -> bytes:
    """A gzip stream of ``inflated_mb`` MB of zeros after a PNG's first bytes (about 1 KB a MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    block = bytes(2**20)
    parts = [packer.compress(tiny_png()[:16])]
    parts += [packer.compress(block) for _ in range(inflated_mb)]
    return b"".join(parts) + packer.flush()


@dataclass
class Bounded:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def result(self) -> dict:
        """The JSON the child printed last (``report(...)``), failing loudly with its stderr."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert self.returncode == 0 and lines, f"child failed ({self.returncode}):\n{self.stderr[-3000:]}"
        return json.loads(lines[-1])


PRELUDE = """
import json, os, resource, sys, time
def report(**values):
    values["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(values), flush=True)
"""


def run_bounded(
    code: str, *, memory_mb: int = 1500, file_mb: int = 100, seconds: float = 60, env: dict | None = None
) -> Bounded:
    """Run ``code`` (``report(**values)`` prints the result) in a child Python limited to
    ``memory_mb`` of address space, files of ``file_mb`` and ``seconds`` of wall time; a
    child still running then is killed and the test fails with what it said so far."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * 2**20, file_mb * 2**20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, loudly

    import os

    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=env.pop("CWD", None) if env else None,
        env={**os.environ, "HIAPI_NOTEBOOK_DISPLAY": "text", **(env or {})},
        preexec_fn=limits,
    )
    try:
        out, err = child.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        said = f"{out[-2000:]}\n{err[-3000:]}"
        raise AssertionError(f"still running after {seconds} s (a hang):\n{said}") from None
    return Bounded(child.returncode, out, err, time.monotonic() - started)
