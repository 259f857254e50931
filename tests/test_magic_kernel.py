"""%%hiapi in a real kernel, on ipykernel 6 and 7 (and the first tests and completion
in the Colab-like kernel too): live status and media reach the front end (iopub)
after the cell returned, with no further cell run."""

import json
import threading

import pytest
from kernel_harness import display_updates, pictures, widget_model_ids, widget_updates, with_colab

pytestmark = pytest.mark.kernel
SECRET = "sk-test-7f3a9c1e5b-never-shown"


KERNEL_SANDBOX_SPEED = 6
KERNEL_API_KEY = SECRET
KERNEL_POLL_INTERVAL = "0.1"


def _status_html(msgs):
    return [
        m["content"]["data"].get("text/html", "")
        for m in display_updates(msgs)
        if "hiapi-status" in m["content"]["data"].get("text/html", "")
    ]


@with_colab
def test_no_wait_cell_keeps_updating_after_it_returned(kernel, sandbox_server):
    reply, msgs = kernel.execute("%load_ext hiapi_notebook")
    assert reply["content"]["status"] == "ok"
    reply, cell = kernel.execute(
        "%%hiapi gpt-image-2/text-to-image --no-wait -o later\nA red fox <b>in</b> snow"
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    (bar_id, *_) = widget_model_ids(cell)

    def closed(got):
        return any(m["msg_type"] == "comm_close" and m["content"]["comm_id"] == bar_id for m in got)

    later = kernel.collect_iopub(30, until=lambda got: pictures(got) and closed(got))
    assert not [m for m in later if m["msg_type"] == "execute_input"], "a cell ran meanwhile"
    styles = [s.get("bar_style") for s in widget_updates(cell + later) if "bar_style" in s]
    assert "info" in styles, styles  # queued
    assert "" in styles, styles  # handling / archiving: running
    picture = pictures(later)[-1]
    assert picture.startswith((b"\x89PNG", b"\xff\xd8\xff"))
    final = _status_html(later)[-1]
    assert 'data-status="success"' in final
    assert "&lt;b&gt;in&lt;/b&gt;" in final and "<b>in</b>" not in final  # the prompt is escaped
    # the widget is closed once its static twin took its place
    assert closed(later)
    everything = json.dumps(cell + later, default=str)
    assert SECRET not in everything
    assert sandbox_server.task_count == 1


@with_colab
def test_waiting_cell_shows_result_inside_the_cell(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    reply, cell = kernel.execute("%%hiapi gpt-image-2/text-to-image -o fox\nA red fox", timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert pictures(cell), "the image arrived before the cell finished"
    reply, msgs = kernel.execute("print(fox.status, fox.task_id, len(fox.outputs[0].data()))")
    text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
    assert text.startswith("success tk-hiapi-")
    # re-running the same cell reuses the recorded result: nothing new reaches the server
    reply, again = kernel.execute("%%hiapi gpt-image-2/text-to-image\nA red fox")
    assert reply["content"]["status"] == "ok"
    assert pictures(again) and "cached" in "".join(_status_html(again))
    assert sandbox_server.task_count == 1


def test_bars_move_while_another_cell_is_busy(kernel):
    kernel.execute("%load_ext hiapi_notebook")
    reply, cell = kernel.execute("%%hiapi gpt-image-2/text-to-image --no-wait\nA slow lighthouse")
    assert widget_model_ids(cell)
    reply, busy = kernel.execute("import time; time.sleep(3)", timeout=30)
    assert reply["content"]["status"] == "ok"
    # What arrived while the busy cell ran. ipykernel 7 ties it to the --no-wait cell,
    # ipykernel 6 to the cell running at the time; front ends route both by comm and
    # display id, so both count.
    meanwhile = busy + kernel.collect_iopub(0)
    states = widget_updates(meanwhile)
    assert any(s.get("bar_style") == "" for s in states), states  # it went on to handling
    assert pictures(meanwhile), "the image did not arrive while the kernel was busy"


@pytest.mark.parametrize(
    "line, needle",
    [
        ("%%hiapi gpt-image-2/text-to-image --aspect_ratio 7:3\nA cat", "aspect_ratio"),
        ("%%hiapi gpt-image-2/text-to-image --duration\nA cat", "needs a value"),
        ("%%hiapi gpt-image-2/text-to-image -q\nA cat", "unknown option"),
        ("%%hiapi gpt-image-2/text-to-image --input '{oops'\nA cat", "not valid JSON"),
    ],
)
def test_line_mistakes_are_one_line_and_send_nothing(kernel, sandbox_server, line, needle):
    kernel.execute("%load_ext hiapi_notebook")
    reply, msgs = kernel.execute(line)
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "UsageError"
    assert needle in content["evalue"] and "\n" not in content["evalue"]
    assert sandbox_server.task_count == 0


def test_interrupt_stops_waiting_but_keeps_the_task(kernel, sandbox_server):
    kernel.execute("%load_ext hiapi_notebook")
    timer = threading.Timer(1.5, kernel.km.interrupt_kernel)
    timer.start()
    try:
        reply, cell = kernel.execute("%%hiapi seedance-2-0 --duration 5\nA paper boat", timeout=60)
    finally:
        timer.cancel()
    content = reply["content"]
    # the cell counts as stopped (Run All halts), yet prints no error: its bar notes the interrupt
    assert content["status"] == "error" and content["ename"] == "ShownInCell", content
    assert "Interrupted" in content["evalue"] and "nothing was cancelled" in content["evalue"]
    assert "tk-hiapi-" in content["evalue"] and "%hiapi status" in content["evalue"]
    assert not [m for m in cell if m["msg_type"] in ("error", "stream")]
    # the task goes on and its video still lands in the interrupted cell
    later = kernel.collect_iopub(
        40,
        until=lambda got: any(
            "<video" in m["content"]["data"].get("text/html", "") for m in display_updates(got)
        ),
    )
    assert any("<video" in m["content"]["data"].get("text/html", "") for m in display_updates(later))
    assert sandbox_server.task_count == 1


def test_live_widget_output_has_a_readable_text_fallback(kernel):
    kernel.execute("%load_ext hiapi_notebook")
    reply, cell = kernel.execute("%%hiapi gpt-image-2/text-to-image --no-wait\nA quiet harbour")
    (live,) = [
        m["content"]["data"]
        for m in cell
        if m["msg_type"] == "display_data"
        and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
    ]
    assert live["text/plain"].startswith('gpt-image-2/text-to-image · "A quiet harbour"')
    kernel.collect_iopub(15, until=pictures)


def test_a_shown_grid_with_saves_keeps_to_two_threads_of_ours(kernel, sandbox_server, tmp_path):
    """The loop and one worker, however much is on screen: live grids re-render and
    --no-wait --save copies run on the worker, not on threads of their own (nor on
    asyncio's default executor)."""
    kernel.execute("%load_ext hiapi_notebook")
    reply, _ = kernel.execute(
        f"%%hiapi gpt-image-2/text-to-image -n 4 --no-wait --save {tmp_path / 'saved'} -o four\nfour foxes"
    )
    assert reply["content"]["status"] == "ok"
    code = (
        "import threading, time\n"
        "for g in four: g.wait(60)\n"
        "time.sleep(1.0)\n"
        "def origin(t):\n"
        "    target = getattr(t, '_target', None)\n"
        "    return getattr(target, '__module__', '') or ''\n"
        "print(sorted(t.name for t in threading.enumerate() if t.name.startswith(('hiapi', 'asyncio'))\n"
        "             or origin(t).startswith(('hiapi_notebook', 'asyncio', 'concurrent'))))"
    )
    reply, msgs = kernel.execute(code, timeout=90)
    text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
    assert text.strip() == "['hiapi-notebook-loop', 'hiapi-notebook-worker_0']", text
    assert len(list((tmp_path / "saved").glob("*.png"))) == 4


@with_colab
def test_completion_on_the_hiapi_line(kernel):
    """Tab completion as a front end asks for it: on IPython 9 through the Matcher API v2,
    on Colab's IPython 7.34 through the older line matchers (whose tokens stop at ':')."""
    kernel.execute("%load_ext hiapi_notebook")

    def completed(code):
        kernel.kc.complete(code, len(code))
        reply = kernel.kc.get_shell_msg(timeout=30)["content"]
        assert reply["status"] == "ok", reply
        start, end = reply["cursor_start"], reply["cursor_end"]
        return [code[:start] + match + code[end:] for match in reply["matches"]]

    fields = completed("%%hiapi gpt-image-2/text-to-image --")
    assert fields[:2] == [
        "%%hiapi gpt-image-2/text-to-image --aspect_ratio",
        "%%hiapi gpt-image-2/text-to-image --resolution",
    ], fields
    assert not [f for f in fields if f.endswith("--abs")]
    assert completed("%%hiapi seedance-2-0 --aspect_ratio 16:") == [
        "%%hiapi seedance-2-0 --aspect_ratio 16:9"
    ]
    assert completed("%hiapi his") == ["%hiapi history"]
    assert "%hiapi config embed=" in completed("%hiapi config emb")
    assert "%hiapi gpt-image-2/text-to-image" in completed("%hiapi gpt-image-2/te")
    assert "x = abs" in completed("x = ab")  # other lines are left to IPython
