"""What it costs, in a real kernel against the sandbox: the estimate shows before the first
create, a spend_limit below it refuses the cell in one line with nothing sent, ``--yes``
sends it, a 402 in the middle of a batch stops the rest, and ``%hiapi spend`` adds up
what was sent (a re-run served from the journal adds nothing)."""

from __future__ import annotations

import datetime
import json

import pytest

from hiapi_notebook.sandbox import SandboxServer

pytestmark = pytest.mark.kernel
KERNEL_SANDBOX_SPEED = 50

FLARE = "gpt-image-2.5-flare/text-to-image"  # $0.05, $0.08, $0.12 an image at 1K, 2K, 4K
# 4 aspect ratios × 3 resolutions: 12 priced tasks, 4 × (0.05 + 0.08 + 0.12) = $1.000
SWEEP = f"%%hiapi {FLARE} --sweep aspect_ratio=1:1,16:9,9:16,4:3 --sweep resolution=1K,2K,4K"


@pytest.fixture
def sandbox_server(request):
    """The sandbox, with the balance a test gives it (``indirect``), else unlimited."""
    balance = getattr(request, "param", None)
    with SandboxServer(port=0, speed=KERNEL_SANDBOX_SPEED, balance=balance) as srv:
        yield srv


def creates(srv: SandboxServer) -> list[int]:
    """Indexes in ``srv.requests`` of every create that reached it (made a task or not)."""
    return [
        i for i, (method, path) in enumerate(srv.requests) if method == "POST" and path.endswith("/tasks")
    ]


def texts(msgs) -> str:
    """Everything a cell showed as text: streams, plain and HTML displays, errors."""
    out = []
    for m in msgs:
        c = m["content"]
        if m["msg_type"] == "stream":
            out.append(c["text"])
        elif m["msg_type"] in ("display_data", "update_display_data", "execute_result"):
            out.append(c["data"].get("text/plain", "") + c["data"].get("text/html", ""))
        elif m["msg_type"] == "error":
            out.append(c["evalue"])
    return "\n".join(out)


def estimate_messages(msgs):
    return [
        m
        for m in msgs
        if m["msg_type"] in ("display_data", "stream")
        and "estimate: 12 tasks" in (m["content"].get("text") or json.dumps(m["content"].get("data", {})))
    ]


def sent_at(msg) -> float:
    date = msg["header"]["date"]
    if isinstance(date, str):
        date = datetime.datetime.fromisoformat(date.replace("Z", "+00:00"))
    return date.timestamp()


def run(kernel, code: str, timeout: float = 120):
    reply, msgs = kernel.execute(code, timeout=timeout)
    return reply["content"], msgs


def test_a_sweep_of_twelve_shows_its_estimate_before_the_first_create(kernel, sandbox_server):
    run(kernel, "%load_ext hiapi_notebook")
    reply, msgs = run(kernel, f"{SWEEP} -o sweep\nA lighthouse at dusk")
    assert reply["status"] == "ok", reply
    shown = estimate_messages(msgs)
    assert shown, texts(msgs)
    text = texts(shown)
    assert "12 tasks, ≈ $1.000" in text
    assert "HiAPI's published list prices as of 2026-09-29" in text
    first_create = creates(sandbox_server)[0]
    assert sent_at(shown[0]) <= sandbox_server.request_times[first_create]
    assert sandbox_server.task_count == 12
    # the grid's header says it too, and each bar its own price
    grid_html = [m for m in msgs if "hiapi-grid-estimate" in json.dumps(m["content"].get("data", {}))]
    assert grid_html and "12 tasks, ≈ $1.000" in texts(grid_html[-1:])
    assert "≈ $0.120" in texts(msgs)  # a 4K image's own estimate

    # %hiapi spend adds up what was sent, this session and this folder
    reply, msgs = run(kernel, "%hiapi spend")
    assert reply["status"] == "ok", reply
    report = texts(msgs)
    assert "this session: 12 tasks, ≈ $1.000" in report
    assert "this folder: 12 tasks, ≈ $1.000" in report
    reply, msgs = run(
        kernel,
        "import hiapi_notebook\nrows = hiapi_notebook.spend()\n"
        "print(sum(r['tasks'] for r in rows if r['scope'] == 'this session'), "
        "round(sum(r['usd'] for r in rows if r['scope'] == 'this session'), 6))",
    )
    assert texts(msgs).strip() == "12 1.0"

    # the same cell again: every result comes from the journal, free, and counts nothing
    reply, msgs = run(kernel, f"{SWEEP}\nA lighthouse at dusk")
    assert reply["status"] == "ok", reply
    assert "0 tasks, nothing to pay · 12 reused from the journal (free)" in texts(msgs)
    assert sandbox_server.task_count == 12
    reply, msgs = run(kernel, "%hiapi spend")
    assert "this session: 12 tasks, ≈ $1.000" in texts(msgs)


def test_a_spend_limit_below_the_estimate_refuses_in_one_line_and_yes_sends(kernel, sandbox_server):
    run(kernel, "%load_ext hiapi_notebook")
    reply, _ = run(kernel, "%hiapi config spend_limit=0.5")
    assert reply["status"] == "ok", reply
    reply, msgs = run(kernel, f"{SWEEP}\nA lighthouse at dusk")
    assert reply["status"] == "error"
    assert reply["ename"] == "UsageError"
    line = reply["evalue"]
    assert "\n" not in line
    assert "12 tasks estimated at $1.000" in line
    assert "this session has sent ≈ $0.000" in line
    assert "spend_limit is $0.500" in line
    assert "--yes" in line and "%hiapi config spend_limit=" in line
    assert "list prices as of 2026-09-29" in line
    assert creates(sandbox_server) == [] and sandbox_server.task_count == 0
    assert not [m for m in msgs if m["msg_type"] in ("display_data", "update_display_data")]

    reply, msgs = run(kernel, f"{SWEEP} --yes\nA lighthouse at dusk")
    assert reply["status"] == "ok", reply
    assert sandbox_server.task_count == 12

    # the session has now sent $1.00: a single priced task is refused too, until the limit is raised
    reply, _ = run(kernel, f"%%hiapi {FLARE}\nOne more")
    assert reply["status"] == "error" and "this session has sent ≈ $1.000" in reply["evalue"]
    assert sandbox_server.task_count == 12
    run(kernel, "%hiapi config spend_limit=none")
    reply, _ = run(kernel, f"%%hiapi {FLARE}\nOne more")
    assert reply["status"] == "ok", reply
    assert sandbox_server.task_count == 13


@pytest.mark.parametrize("sandbox_server", [0.25], indirect=True)
def test_a_402_in_the_middle_of_a_batch_stops_the_rest(kernel, sandbox_server):
    run(kernel, "%load_ext hiapi_notebook")
    reply, msgs = run(kernel, f"%%hiapi {FLARE} -n 12 --concurrency 1 -o batch\nA paper boat")
    assert reply["status"] == "error"
    line = reply["evalue"]
    assert "\n" not in line
    assert "HiAPI 402" in line and "$0.0000, as the server reported" in line
    assert "5 of 12 sent, the other 7 not sent" in line
    assert "top up your HiAPI account at https://www.hiapi.ai" in line
    # five paid for, the sixth refused, and nothing more was asked
    assert sandbox_server.task_count == 5
    assert len(creates(sandbox_server)) == 6
    reply, msgs = run(kernel, "print(sorted(g.status for g in batch)); print(batch[-1].error)")
    out = texts(msgs)
    assert "['error', 'stopped', 'stopped', 'stopped', 'stopped', 'stopped', 'stopped'," in out
    assert "not sent: HiAPI answered 402 to a task of this batch" in out
    reply, msgs = run(kernel, "%hiapi spend")
    assert "this session: 5 tasks, ≈ $0.250" in texts(msgs)


def test_the_in_kernel_sandbox_bills_a_balance_so_the_402_can_be_tried_offline(kernel):
    run(kernel, "%load_ext hiapi_notebook")
    reply, msgs = run(kernel, "%hiapi sandbox --speed 50 --balance 0.1")
    assert reply["status"] == "ok", reply
    assert "balance of $0.10" in texts(msgs)
    reply, msgs = run(kernel, f"%%hiapi {FLARE} -n 4 --concurrency 1 -o few\nA kite")
    assert reply["status"] == "error"
    assert "2 of 4 sent, the other 2 not sent" in reply["evalue"]
    assert "$0.0000, as the server reported" in reply["evalue"]
    reply, msgs = run(kernel, "print([g.status for g in few])")
    assert texts(msgs).strip() == "['success', 'success', 'error', 'stopped']"


@pytest.fixture
def kernel_env(request, sandbox_server, tmp_path) -> dict[str, str]:
    """As the shared one, plus ``HIAPI_SPEND_LIMIT`` when a test gives one (``indirect``)."""
    env = {
        "HIAPI_BASE_URL": sandbox_server.url,
        "HIAPI_API_KEY": "sandbox",
        "HIAPI_POLL_INTERVAL": "0.05",
        "HIAPI_HOME": str(tmp_path / ".hiapi"),
    }
    if getattr(request, "param", None) is not None:
        env["HIAPI_SPEND_LIMIT"] = request.param
    return env


@pytest.mark.parametrize("kernel_env", ["0.2"], indirect=True)
def test_the_limit_from_the_environment_guards_the_python_api_too(kernel, sandbox_server):
    batch = f"[dict(model={FLARE!r}, prompt=f'shell {{i}}') for i in range(5)]"  # 5 × $0.05
    reply, msgs = run(kernel, f"import hiapi_notebook as h\nh.generate_many({batch})")
    assert reply["status"] == "error" and reply["ename"] == "SpendLimitError"
    assert "5 tasks estimated at $0.250" in reply["evalue"] and "spend_limit is $0.200" in reply["evalue"]
    assert creates(sandbox_server) == []
    reply, msgs = run(kernel, f"made = h.generate_many({batch}, yes=True)\nprint([g.status for g in made])")
    assert reply["status"] == "ok", reply
    assert str(["success"] * 5) in texts(msgs)
    assert "estimate: 5 tasks, ≈ $0.250" in texts(msgs)
    assert sandbox_server.task_count == 5
    run(kernel, "%load_ext hiapi_notebook")
    reply, msgs = run(kernel, "%hiapi spend")
    assert "this session: 5 tasks, ≈ $0.250 · spend_limit $0.200" in texts(msgs)
