"""Widget models live only as long as a view needs them, in a real kernel on ipykernel 6 and 7.

A task's live bar is a dozen widget models (boxes, HTML, a progress bar, their layouts and
styles). The kernel and the front end keep every open model for the notebook's life, so a
finished task must close all of them once its static twin took its place: counted here as
``comm_open`` against ``comm_close`` over 20 tasks. The media and the final status stay, in
the kernel's messages and in the notebook nbclient saves (a reopened notebook shows them with
no kernel and no widget state). nbclient saves the state of every model it saw opened,
closed or not, so what a front end's save keeps of closed models is not judged here.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from kernel_harness import display_updates
from nbclient import NotebookClient

pytestmark = pytest.mark.kernel
IMAGE = "gpt-image-2/text-to-image"
TASKS = 20
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_comms(msgs: list[dict]) -> tuple[set[str], set[str]]:
    """(comm ids of the widget models opened, comm ids closed)."""
    opened = {
        m["content"]["comm_id"]
        for m in msgs
        if m["msg_type"] == "comm_open" and m["content"].get("target_name") == "jupyter.widget"
    }
    closed = {m["content"]["comm_id"] for m in msgs if m["msg_type"] == "comm_close"}
    return opened, closed


def test_twenty_finished_tasks_leave_no_widget_model_open(kernel, sandbox_server):
    reply, _ = kernel.execute("%load_ext hiapi_notebook")
    assert reply["content"]["status"] == "ok", reply["content"]
    cells = []
    for n in range(TASKS):
        reply, msgs = kernel.execute(f"%%hiapi {IMAGE}\na fox in snow, take {n}", timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        cells.append(msgs)
    everything = [m for msgs in cells for m in msgs]

    def settled(got: list[dict]) -> bool:
        opened, closed = widget_comms(everything + got)
        return opened <= closed

    everything += kernel.collect_iopub(15, until=settled)
    opened, closed = widget_comms(everything)
    assert len(opened) >= 5 * TASKS, "each task showed a live bar of widgets"
    left = opened - closed
    assert len(left) / TASKS <= 0.1, f"{len(left)} widget models left open by {TASKS} finished tasks"
    # every cell still got its picture and its final status, as outputs of their own
    for n, msgs in enumerate(cells):
        updates = display_updates(msgs)
        assert any("image/png" in m["content"]["data"] for m in updates), f"cell {n} shows no picture"
        finals = [m["content"]["data"].get("text/html", "") for m in updates]
        assert any('data-status="success"' in html for html in finals), f"cell {n} has no final status"
    assert sandbox_server.task_count == TASKS


def test_a_saved_notebook_keeps_the_media_and_no_widget_of_a_finished_task(kernel_env, tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext hiapi_notebook")] + [
        nbformat.v4.new_code_cell(f"%%hiapi {IMAGE}\na heron at dawn, take {n}") for n in range(3)
    ]
    for name, value in kernel_env.items():
        monkeypatch.setenv(name, value)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    nbformat.write(nb, tmp_path / "saved.ipynb")
    reopened = nbformat.read(tmp_path / "saved.ipynb", as_version=4)
    for cell in reopened.cells[1:]:
        outputs = cell.outputs
        assert not [o for o in outputs if WIDGET_VIEW in o.get("data", {})], json.dumps(outputs)[:2000]
        assert any("image/png" in o.get("data", {}) for o in outputs), json.dumps(outputs)[:2000]
        assert any('data-status="success"' in o.get("data", {}).get("text/html", "") for o in outputs)
