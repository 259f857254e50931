"""What a new user sees in a real kernel (ipykernel 6 and 7) when things go a little wrong:
one message, never two; an interrupt is a notice that ends with the task, not an error;
a handle shown while its task runs is live; the journal's results say where they came from."""

from __future__ import annotations

import json
import queue
import time

import pytest
from kernel_harness import display_updates, widget_model_ids, widget_updates

pytestmark = pytest.mark.kernel
IMAGE = "gpt-image-2/text-to-image"


KERNEL_SANDBOX_SPEED = 2  # an image takes about three seconds
KERNEL_API_KEY = "sk-first-hour"
KERNEL_POLL_INTERVAL = "0.1"


def printed(msgs) -> str:
    """Everything a user reads as text: streams and error outputs."""
    out = [m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream"]
    out += [
        " ".join(m["content"].get("traceback") or [m["content"]["evalue"]])
        for m in msgs
        if m["msg_type"] == "error"
    ]
    return "".join(out)


def states(msgs) -> list[str]:
    return [s["value"] for s in widget_updates(msgs) if "data-status" in str(s.get("value", ""))]


def test_a_refused_model_is_one_red_bar_and_stops_run_all(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    first = kernel.kc.execute("%%hiapi midjourney-v7\na cat")
    queued = kernel.kc.execute("print('the next cell ran')")
    replies, msgs = {}, []
    deadline = time.monotonic() + 60
    while len(replies) < 2 and time.monotonic() < deadline:
        try:
            reply = kernel.kc.get_shell_msg(timeout=1)
            replies[reply["parent_header"]["msg_id"]] = reply["content"]["status"]
        except queue.Empty:
            pass
    msgs = kernel.collect_iopub(3)
    assert replies == {first: "error", queued: "aborted"}  # Run All stops at the refused cell
    assert printed(msgs) == ""  # no UsageError under the bar: the bar says it once
    finals = [
        m["content"]["data"]["text/html"]
        for m in display_updates(msgs)
        if "hiapi-status" in m["content"]["data"].get("text/html", "")
    ]
    assert finals and 'data-status="error"' in finals[-1]
    assert "unknown model" in finals[-1] and "%hiapi models lists the models" in finals[-1]
    assert sandbox_server.task_count == 0


def test_an_interrupt_is_a_notice_that_ends_with_the_task(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    msg_id = kernel.kc.execute(f"%%hiapi {IMAGE} -o fox\na slow fox")
    seen = []
    deadline = time.monotonic() + 30
    while not widget_model_ids(seen) and time.monotonic() < deadline:
        seen.append(kernel.kc.get_iopub_msg(timeout=30))
    while sandbox_server.task_count == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    kernel.km.interrupt_kernel()
    reply = kernel.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "error"
    later = kernel.collect_iopub(
        30,
        until=lambda got: any(
            'data-status="success"' in json.dumps(m["content"]) for m in display_updates(got)
        ),
    )
    everything = seen + later
    assert printed(everything) == "", printed(everything)  # no red text under the result
    assert any("you stopped waiting" in s for s in states(everything))
    finals = [json.dumps(m["content"]) for m in display_updates(later)]
    assert any('data-status=\\"success\\"' in f for f in finals)
    assert not any("you stopped waiting" in f for f in finals)  # the notice ended with the task
    reply, msgs = kernel.execute("print(fox.status)")
    assert "success" in printed(msgs)
    assert sandbox_server.task_count == 1


def test_a_handle_shown_while_running_is_live(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    kernel.execute(f"%%hiapi {IMAGE} --no-wait -o bg\na background fox")
    reply, cell = kernel.execute("bg")
    assert reply["content"]["status"] == "ok"
    (bar_id, *_) = widget_model_ids(cell)  # a live bar in this cell, not a frozen copy
    later = kernel.collect_iopub(
        30,
        until=lambda got: any(
            m["msg_type"] == "comm_close" and m["content"]["comm_id"] == bar_id for m in got
        ),
    )
    values = [s.get("value") for s in widget_updates(cell + later, bar_id)]
    assert values, "the bar never moved"
    # the media slot made in this cell fills in (updates go by display id, from the task's thread)
    slots = {
        m["content"]["transient"]["display_id"]
        for m in cell
        if m["msg_type"] == "display_data" and "display_id" in m["content"].get("transient", {})
    }
    assert any(
        "image/png" in m["content"]["data"] and m["content"]["transient"]["display_id"] in slots
        for m in display_updates(later)
    )


def test_status_of_a_recorded_task_says_where_it_came_from(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    kernel.execute(f"%%hiapi {IMAGE} -o done\na finished fox", timeout=60)
    reply, msgs = kernel.execute("%hiapi status {done.task_id}")
    text = json.dumps([m["content"] for m in msgs])
    assert reply["content"]["status"] == "ok"
    assert "from the journal" in text and "--fresh" not in text
