"""The prompt form and the sweep grid in a real kernel, on ipykernel 6 and 7 and in the
Colab-like kernel (ipywidgets 7.7.1).

The form is driven as a front end drives it: ``comm_msg`` updates of the model and prompt
widgets and a click on Generate, sent over the shell channel to the widgets' comm ids (found,
like a browser finds elements, by the CSS classes in their ``comm_open`` state). The
submission must reach the sandbox with the right inputs and the image must arrive in the
form's history as widget state, after the click was handled and the kernel went idle.
"""

from __future__ import annotations

import io
import queue
import time

import pytest
from kernel_harness import _backlog, display_updates, with_colab
from PIL import Image

pytestmark = pytest.mark.kernel
IMAGE = "gpt-image-2/text-to-image"


def comm_send(kernel, comm_id: str, data: dict, timeout: float = 30) -> list[dict]:
    """Send one widget message as a front end does; returns the iopub messages it caused
    until the kernel went idle (others are kept for ``collect_iopub``)."""
    kc = kernel.kc
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    got, deadline = [], time.monotonic() + timeout
    while True:
        try:
            m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no idle after comm_msg; got {[x['msg_type'] for x in got]}") from None
        if m["parent_header"].get("msg_id") != msg_id:
            _backlog(kc).append(m)
            continue
        got.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return got


def opened(msgs: list[dict]) -> dict[str, dict]:
    """comm id -> widget state, for the widgets these messages opened, with the updates
    that followed applied (as a front end's widget manager keeps them)."""
    states: dict[str, dict] = {}
    for m in msgs:
        content = m["content"]
        if m["msg_type"] == "comm_open" and content.get("target_name") == "jupyter.widget":
            states[content["comm_id"]] = dict(content["data"]["state"])
        elif (
            m["msg_type"] == "comm_msg"
            and content["comm_id"] in states
            and content["data"].get("method") == "update"
        ):
            states[content["comm_id"]].update(content["data"].get("state", {}))
    return states


def by_class(widgets: dict[str, dict], css: str) -> tuple[str, dict]:
    found = [(cid, s) for cid, s in widgets.items() if css in s.get("_dom_classes", ())]
    assert len(found) == 1, (css, len(found))
    return found[0]


def errors_in(msgs):
    return [m["content"] for m in msgs if m["msg_type"] == "error"]


@with_colab
def test_form_driven_by_comm_messages_submits_and_fills_the_history(kernel, sandbox_server):
    reply, cell = kernel.execute("import hiapi_notebook as h\nform = h.PromptForm(model='Nano-Banana')\nform")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert any(
        "application/vnd.jupyter.widget-view+json" in m["content"].get("data", {})
        for m in cell
        if m["msg_type"] in ("execute_result", "display_data")
    )
    # and a static copy of the history right after it, which the saved notebook keeps
    kept = [
        m
        for m in cell
        if m["msg_type"] == "display_data" and "hiapi-form-kept" in m["content"]["data"].get("text/html", "")
    ]
    assert len(kept) == 1
    kept_id = kept[0]["content"]["transient"]["display_id"]
    widgets = opened(cell)
    model_id, model_state = by_class(widgets, "hiapi-form-model")
    prompt_id, _ = by_class(widgets, "hiapi-form-prompt")
    button_id, _ = by_class(widgets, "hiapi-form-generate")

    # choose another model: the form rebuilds its controls (new widgets open)
    labels = model_state["_options_labels"]
    got = comm_send(
        kernel, model_id, {"method": "update", "buffer_paths": [], "state": {"index": labels.index(IMAGE)}}
    )
    assert not errors_in(got)
    aspect_id, aspect_state = by_class(opened(got), "hiapi-field-aspect_ratio")
    comm_send(
        kernel,
        aspect_id,
        {
            "method": "update",
            "buffer_paths": [],
            "state": {"index": aspect_state["_options_labels"].index("16:9")},
        },
    )
    comm_send(
        kernel,
        prompt_id,
        {"method": "update", "buffer_paths": [], "state": {"value": "a <b>lighthouse</b> at dusk"}},
    )

    clicked = comm_send(kernel, button_id, {"method": "custom", "content": {"event": "click"}})
    assert not errors_in(clicked)
    rows = opened(clicked)
    media_id, media_state = by_class(rows, "hiapi-history-media")
    assert media_state["_model_name"] == "ImageModel"
    state_id, _ = by_class(rows, "hiapi-history-state")

    def image_arrived(msgs):
        return any(
            m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == media_id
            and ["value"] in m["content"]["data"].get("buffer_paths", [])
            for m in msgs
        )

    later = kernel.collect_iopub(30, until=image_arrived)
    assert image_arrived(later), [m["msg_type"] for m in later]
    assert not [m for m in later if m["msg_type"] == "execute_input"], "a cell ran meanwhile"
    image = next(
        m
        for m in later
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == media_id
        and ["value"] in m["content"]["data"].get("buffer_paths", [])
    )
    buffer = image["buffers"][image["content"]["data"]["buffer_paths"].index(["value"])]
    # the picture at the size the row shows it (twice its 256 px, for sharp screens), not the original
    assert bytes(buffer).startswith((b"\x89PNG", b"\xff\xd8\xff"))
    assert 0 < max(Image.open(io.BytesIO(bytes(buffer))).size) <= 512
    states = [
        m["content"]["data"]["state"].get("value", "")
        for m in clicked + later
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == state_id
        and "state" in m["content"]["data"]
    ]
    assert any('data-status="success"' in s for s in states), states

    after = kernel.collect_iopub(5)
    kept_updates = [
        m["content"]["data"]["text/html"]
        for m in clicked + later + after
        if m["msg_type"] == "update_display_data" and m["content"]["transient"]["display_id"] == kept_id
    ]
    assert kept_updates and "data:image/" in kept_updates[-1]
    assert "a &lt;b&gt;lighthouse&lt;/b&gt; at dusk" in kept_updates[-1]

    assert sandbox_server.last_inputs == [
        {
            "model": IMAGE,
            "input": {
                "prompt": "a <b>lighthouse</b> at dusk",
                "aspect_ratio": "16:9",
                "resolution": "1K",
                "size": "auto",
            },
        }
    ]
    reply, msgs = kernel.execute("print(len(form.results), form.results[0].status, form.as_magic())")
    text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
    assert text.startswith(f"1 success %%hiapi {IMAGE} --aspect_ratio 16:9 --resolution 1K --size auto\n"), (
        text
    )


@with_colab
def test_sweep_cell_shows_a_labelled_grid_that_ends_static(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    reply, cell = kernel.execute(
        f"%%hiapi {IMAGE} -o res --sweep aspect_ratio=1:1,16:9 --sweep resolution=1K,2K\n"
        "a tower <i>at</i> night",
        timeout=60,
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = [
        m
        for m in cell
        if m["msg_type"] == "display_data" and "hiapi-grid" in m["content"]["data"].get("text/html", "")
    ]
    assert len(shown) == 1, "one grid, not a bar per task"
    assert not [
        m for m in cell if "application/vnd.jupyter.widget-view+json" in m["content"].get("data", {})
    ], "the grid is static HTML, no widget"
    grid_id = shown[0]["content"]["transient"]["display_id"]
    updates = [m for m in display_updates(cell) if m["content"]["transient"]["display_id"] == grid_id]
    assert updates, "the grid filled in while the cell waited"
    final = updates[-1]["content"]["data"]["text/html"]  # sent before the cell returned
    for label in (
        'data-row="1:1"',
        'data-row="16:9"',
        'data-col="1K"',
        'data-col="2K"',
        "aspect_ratio ↓ · resolution →",
        'data-done="4" data-total="4"',
    ):
        assert label in final, label
    assert final.count('<figure class="hiapi-card" data-status="success"') == 4
    assert "hiapi-pending" not in final and "<i>at</i>" not in final
    assert "text/plain" in updates[-1]["content"]["data"]
    reply, msgs = kernel.execute(
        "print(isinstance(res, list), len(res), "
        "sorted((g.request.input['aspect_ratio'], g.request.input['resolution']) "
        "for g in res) == sorted([(a, r) for a in ('1:1', '16:9') "
        "for r in ('1K', '2K')]))"
    )
    text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
    assert text.strip() == "True 4 True", text
    assert sandbox_server.task_count == 4
    # nothing more is sent once the grid is final
    later = kernel.collect_iopub(1.0)
    assert not [m for m in display_updates(later) if m["content"]["transient"]["display_id"] == grid_id]
    # the bound list displays as a gallery (static: every task has ended)
    reply, msgs = kernel.execute("res")
    html = "".join(m["content"]["data"].get("text/html", "") for m in msgs if m["msg_type"] == "display_data")
    assert "hiapi-gallery" in html and html.count("<figure") == 4 and "4/4 done" in html


def test_generate_many_grid_keeps_a_failure_in_its_cell(kernel, sandbox_server):
    reply, cell = kernel.execute(
        "import hiapi_notebook as h\n"
        f"gens = h.generate_many(h.grid(model='{IMAGE}', prompt=['calm sea', 'storm #fail <u>']),"
        " concurrency=1)\n"
        "print([g.status for g in gens])",
        timeout=60,
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"].get("text", "") for m in cell if m["msg_type"] == "stream")
    assert text.strip() == "['success', 'fail']", text
    (shown,) = [
        m
        for m in cell
        if m["msg_type"] == "display_data" and "hiapi-grid" in m["content"]["data"].get("text/html", "")
    ]
    grid_id = shown["content"]["transient"]["display_id"]
    final = [m for m in display_updates(cell) if m["content"]["transient"]["display_id"] == grid_id][-1][
        "content"
    ]["data"]["text/html"]
    failed_cell = final.split('data-col="storm #fail &lt;u&gt;"')[-1]
    assert "hiapi-failure" in failed_cell and "rejected" in failed_cell
    assert 'data-col="calm sea"' in final and 'data-status="success"' in final
    assert "1 failed" in final and "<u>" not in final
