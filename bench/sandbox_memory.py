"""The sandbox's memory under big inputs, as a new user would see it with ``%hiapi sandbox``
(where that memory is the kernel's): the resident size of a sandbox process before and
after a PNG that declares 12000x12000 pixels in 400 KB, and before and after N creates
that each carry a data: URI of M MB (a noise PNG: the worst case for a reduced copy).
The sandbox runs in a child process; this one sends the requests and reads the child's
VmRSS / VmHWM from /proc (Linux). Prints figures; ``--json`` prints them as one object.

  .venv/bin/python bench/sandbox_memory.py [--creates 16] [--mb 25] [--json]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gpt-image-2/image-to-image"
AUTH = {"Authorization": "Bearer bench"}
CHILD = """
import sys
from hiapi_notebook.sandbox import SandboxServer
with SandboxServer(port=0, speed=50) as server:
    print(server.url, flush=True)
    sys.stdin.readline()
"""


def status_mb(pid: int, field: str) -> float:
    """A VmRSS-like field of /proc/PID/status, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def noise_png(megabytes: float, salt: int) -> bytes:
    """A PNG of random pixels (it does not compress) of about ``megabytes``."""
    from PIL import Image

    side = int((megabytes * 2**20 / 3) ** 0.5)
    pixels = bytearray(os.urandom(side * side * 3))
    pixels[:8] = salt.to_bytes(8, "little")  # every create a different picture
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), bytes(pixels)).save(out, format="PNG", compress_level=0)
    return out.getvalue()


def declared_bomb(side: int = 12000, rows: int = 120) -> bytes:
    """A small PNG whose header declares ``side`` x ``side`` RGB pixels (a few rows of data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    scanlines = zlib.compress(os.urandom(64) + b"\0" * ((1 + 3 * side) * rows - 64), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", scanlines) + chunk(b"IEND", b"")


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def create(http: httpx.Client, prompt: str, picture: bytes) -> httpx.Response:
    body = {"model": MODEL, "input": {"prompt": prompt, "input_urls": [data_uri(picture)]}}
    return http.post("/tasks", content=json.dumps(body), headers={"Content-Type": "application/json"})


def finish(http: httpx.Client, task_ids: list[str], timeout: float = 300) -> None:
    """Wait for every task, then download each output (so every file has been drawn)."""
    deadline = time.monotonic() + timeout
    for task_id in task_ids:
        while True:
            task = http.get(f"/tasks/{task_id}").json()["data"]
            if task["status"] in ("success", "fail"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{task_id} still {task['status']}")
            time.sleep(0.1)
        for output in task.get("output", []):
            http.get(output["url"]).raise_for_status()


def measure(creates: int, megabytes: float) -> dict:
    env = {**os.environ, "HIAPI_SANDBOX_DETAIL": os.environ.get("HIAPI_SANDBOX_DETAIL", "fast")}
    env.setdefault("PYTHONPATH", str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        url = child.stdout.readline().strip()
        with httpx.Client(base_url=url, headers=AUTH, timeout=300) as http:
            warm = create(http, "warm up", noise_png(0.05, 0))  # Pillow loaded, one picture drawn
            finish(http, [warm.json()["data"]["taskId"]])
            figures: dict = {"start_mb": status_mb(child.pid, "VmRSS")}
            bomb = declared_bomb()
            answer = create(http, "a bomb", bomb)
            figures["bomb_kb"] = len(bomb) / 1024
            figures["bomb_status"] = answer.status_code
            figures["bomb_message"] = answer.json()["message"]
            figures["after_bomb_mb"] = status_mb(child.pid, "VmRSS")
            figures["peak_after_bomb_mb"] = status_mb(child.pid, "VmHWM")
            task_ids, sent = [], 0
            started = time.monotonic()
            for n in range(creates):
                picture = noise_png(megabytes * 3 / 4, n + 1)  # base64 makes it 4/3 as long
                sent += len(data_uri(picture))
                answer = create(http, f"big input {n}", picture)
                answer.raise_for_status()
                task_ids.append(answer.json()["data"]["taskId"])
            figures["create_s"] = (time.monotonic() - started) / creates
            finish(http, task_ids)
            figures["creates"] = creates
            figures["data_uri_mb"] = sent / creates / 2**20
            figures["after_creates_mb"] = status_mb(child.pid, "VmRSS")
            figures["peak_mb"] = status_mb(child.pid, "VmHWM")
        return figures
    finally:
        if child.stdin is not None:
            child.stdin.write("\n")
            child.stdin.flush()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=16)
    parser.add_argument("--mb", type=float, default=25.0, help="each data: URI's size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.creates, args.mb)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"sandbox RSS at start (one small task done): {figures['start_mb']:.0f} MB")
    print(
        f"a {figures['bomb_kb']:.0f} KB PNG declaring 12000x12000: HTTP {figures['bomb_status']}, "
        f"RSS {figures['after_bomb_mb']:.0f} MB (peak {figures['peak_after_bomb_mb']:.0f} MB)"
    )
    print(f"  {figures['bomb_message']}")
    print(
        f"{figures['creates']} creates with a {figures['data_uri_mb']:.1f} MB data: URI each "
        f"({figures['create_s']:.2f} s a create): RSS {figures['after_creates_mb']:.0f} MB "
        f"(+{figures['after_creates_mb'] - figures['start_mb']:.0f} MB), peak {figures['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
