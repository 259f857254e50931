"""Media inputs in real kernels: the form's upload driven by the comm messages a browser
sends (the file's bytes as a message buffer), on ipykernel 6 and 7; and a task whose input
was a local file, re-attached after kill -9 when the cell is run again."""

from __future__ import annotations

import base64
import io
import signal
import time

import pytest
from kernel_harness import display_updates, execute, kernel_python, start_kernel, stop_kernel
from PIL import Image
from test_widgets_kernel import by_class, errors_in, opened

from hiapi_notebook.sandbox import SandboxServer

pytestmark = pytest.mark.kernel
I2I = "gpt-image-2/image-to-image"


def png_bytes(colour, size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def comm_send(kernel, comm_id: str, data: dict, buffers=(), timeout: float = 30) -> list[dict]:
    """One widget message as a front end sends it, binary buffers included; returns the
    iopub messages it caused until the kernel went idle."""
    kc = kernel.kc
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kc.session.send(kc.shell_channel.socket, msg, buffers=list(buffers))
    got = []
    deadline = time.monotonic() + timeout
    while True:
        m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        got.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return got


def stdout(msgs) -> str:
    return "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")


def test_form_upload_through_comm_messages_reaches_the_server(kernel, sandbox_server, tmp_path):
    reply, cell = kernel.execute(
        "import hiapi_notebook as h\n"
        f"form = h.PromptForm(model='{I2I}', prompt='the cat, as a woodcut')\nform"
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    widgets = opened(cell)
    upload_id, upload_state = by_class(widgets, "hiapi-media-upload-input_urls")
    assert upload_state["_model_name"] == "FileUploadModel" and upload_state["accept"] == "image/*"
    chosen_id, chosen_state = by_class(widgets, "hiapi-media-chosen-input_urls")
    assert chosen_state["children"] == []

    cat = png_bytes((230, 120, 20))
    got = comm_send(
        kernel,
        upload_id,
        {
            "method": "update",
            "state": {
                "value": [{"name": "cat.png", "type": "image/png", "size": len(cat), "last_modified": 1.7e12}]
            },
            "buffer_paths": [["value", 0, "content"]],
        },
        buffers=[cat],
    )
    assert not errors_in(got)
    updates = [
        m["content"]["data"]["state"]
        for m in got
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == chosen_id
    ]
    assert updates and len(updates[-1]["children"]) == 1  # the chosen file, with its thumbnail
    thumbs = [
        cid for cid, state in opened(got).items() if "hiapi-media-thumb" in state.get("_dom_classes", ())
    ]
    assert len(thumbs) == 1
    [opening] = [m for m in got if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == thumbs[0]]
    assert opening["content"]["data"]["state"]["_model_name"] == "ImageModel"
    assert bytes(opening["buffers"][0])[:3] == b"\xff\xd8\xff"  # its small JPEG goes to the browser
    assert (tmp_path / "hiapi-inputs" / "cat.png").read_bytes() == cat

    reply, msgs = kernel.execute(
        "g = form.submit(); g.wait()\nprint(form.as_magic().splitlines()[0]); print(g.status)", timeout=60
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = "--aspect_ratio auto --resolution 1K"  # what the other controls show is sent too
    assert stdout(msgs).split("\n")[:2] == [
        f"%%hiapi {I2I} --input_urls hiapi-inputs/cat.png {shown}",
        "success",
    ]
    [body] = sandbox_server.last_inputs
    [value] = body["input"]["input_urls"]
    assert base64.b64decode(value.removeprefix("data:image/png;base64,")) == cat


def test_a_task_with_a_local_file_input_reattaches_after_kill_9(tmp_path):
    (tmp_path / "start.png").write_bytes(png_bytes((20, 90, 200)))
    cell = "%%hiapi seedance-2-0 --first_frame_url start.png --duration 5\nThe sea starts to move"
    with SandboxServer(port=0, speed=4) as srv:  # the video takes about 6 s
        env = {
            "HIAPI_BASE_URL": srv.url,
            "HIAPI_API_KEY": "k",
            "HIAPI_POLL_INTERVAL": "0.1",
            "IPYTHONDIR": str(tmp_path / ".ipython"),
        }
        python = kernel_python("ipykernel7")
        km, kc = start_kernel(python, env=env, cwd=tmp_path)
        try:
            execute(kc, "%load_ext hiapi_notebook")
            kc.execute(cell)
            deadline = time.monotonic() + 20
            while not (srv.task_count == 1 and any(m == "GET" for m, _ in srv.requests)):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            km.signal_kernel(signal.SIGKILL)
            kc.stop_channels()
        finally:
            if km.is_alive():
                km.shutdown_kernel(now=True)

        km, kc = start_kernel(python, env=env, cwd=tmp_path)
        try:
            execute(kc, "%load_ext hiapi_notebook")
            reply, msgs = execute(kc, cell, timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
            assert "re-attached" in str(msgs)
            assert [m for m in display_updates(msgs) if "<video" in str(m["content"]["data"])]
        finally:
            stop_kernel(km, kc)
        assert srv.task_count == 1 and sum(1 for m, _ in srv.requests if m == "POST") == 1
