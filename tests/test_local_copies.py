"""Local copies of outputs: size-limited, http(s) only, media types only; a
refused copy leaves the task's success intact and says why."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hiapi_notebook import _loop, errors
from hiapi_notebook.api import generate
from hiapi_notebook.client import AsyncHiAPI
from hiapi_notebook.session import get_session


def test_outputs_over_the_size_limit_are_not_kept(session, tmp_path):
    session.configure(max_output_mb=0.001)  # about 1 KB; sandbox images are tens of KB
    gen = generate("a big picture", model="gpt-image-2/text-to-image", show=False)
    assert gen.status == "success"
    (out,) = gen.outputs
    assert out.path is None and "limit" in gen.job.files[0].problem
    assert not list((tmp_path / "hiapi-outputs").rglob("*.png"))
    record = get_session().journal.find_task(gen.task_id)
    assert record.succeeded and record.files[0]["problem"]


def test_kept_copies_match_the_served_bytes(session, sandbox, tmp_path):
    gen = generate("a small picture", model="gpt-image-2/text-to-image", show=False)
    (out,) = gen.outputs
    assert out.path.is_file() and out.path.read_bytes() == out.data()
    record = get_session().journal.find_task(gen.task_id)
    assert record.files[0]["bytes"] == out.path.stat().st_size


class _Serve(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>not media</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_only_http_and_only_media_are_downloaded(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client = AsyncHiAPI(api_key="k", base_url="http://127.0.0.1:1")
    try:
        with pytest.raises(errors.RequestValidationError, match="non-http"):
            _loop.run_sync(client.download("file:///etc/passwd", tmp_path / "x"))
        with pytest.raises(errors.APIConnectionError, match="text/html"):
            _loop.run_sync(
                client.download(f"http://127.0.0.1:{httpd.server_address[1]}/x.png", tmp_path / "x.png")
            )
        assert not list(tmp_path.iterdir())  # nothing half-written left behind
    finally:
        httpd.shutdown()


def test_a_killed_downloads_temporary_files_go_and_a_live_ones_stay(sandbox, tmp_path, monkeypatch):
    """After a kill -9 mid-download, the next session in the folder removes the stale
    ``.part`` files; a fresh one (another kernel's download in progress) and files that
    merely end in .part are left alone."""
    import os
    import time

    from hiapi_notebook import _loop
    from hiapi_notebook.session import reset_session

    folder = tmp_path / "hiapi-outputs" / "task-1"
    folder.mkdir(parents=True)
    stale = folder / "0-image.png.0a1b2c3d.part"
    live = folder / "1-image.png.deadbeef.part"
    mine = folder / "notes.part"
    for path in (stale, live, mine):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    for path in (stale, mine):
        os.utime(path, (two_hours_ago, two_hours_ago))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    s = reset_session()
    s.configure(base_url=sandbox.url, api_key="sandbox", poll_interval=0.02)
    try:
        gen = generate("after a crash", model="gpt-image-2/text-to-image", show=False)
        assert gen.status == "success" and gen.outputs[0].path.is_file()
        _loop.worker().submit(lambda: None).result(timeout=10)  # the sweep ran before this
    finally:
        reset_session()
    assert not stale.exists()
    assert live.exists() and mine.exists()
