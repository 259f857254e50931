"""Regression test for the fact the runtime is built on (DESIGN.md): on ipykernel 6 and 7, widget
updates and display-handle updates made from background work reach the front end after the cell
went idle, with no further cell run."""

import pytest
from kernel_harness import display_updates, widget_model_ids, widget_updates

pytestmark = pytest.mark.kernel

CELL = """
import threading, time
import ipywidgets as widgets
from IPython.display import display

bar = widgets.IntProgress(value=0, max=5)
display(bar)
handle = display("step 0", display_id=True)

def work():
    for i in range(1, 6):
        time.sleep(0.3)  # the first update comes well after the cell returned
        bar.value = i
        handle.update(f"step {i}")

threading.Thread(target=work, daemon=True).start()
"""


def test_background_updates_arrive_after_idle(kernel):
    reply, cell_msgs = kernel.execute(CELL)
    assert reply["content"]["status"] == "ok", reply["content"]
    (bar_id,) = widget_model_ids(cell_msgs)

    def finished(msgs):
        return any(s.get("value") == 5 for s in widget_updates(msgs, bar_id)) and any(
            m["content"]["data"].get("text/plain") == "'step 5'" for m in display_updates(msgs)
        )

    # Everything below arrives after the cell's `status: idle`; no other cell is run.
    later = kernel.collect_iopub(20, until=finished)
    values = [s["value"] for s in widget_updates(later, bar_id) if "value" in s]
    texts = [m["content"]["data"].get("text/plain") for m in display_updates(later)]
    assert values == [1, 2, 3, 4, 5], (kernel.label, values)
    assert texts == [f"'step {i}'" for i in range(1, 6)], (kernel.label, texts)
    assert not [m for m in later if m["msg_type"] == "execute_input"], "a cell ran meanwhile"
