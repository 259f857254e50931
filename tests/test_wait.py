"""``%hiapi wait`` and ``hiapi_notebook.wait()`` wait for every task of the kernel still in
flight, in terminal IPython and scripts as in a notebook, and say what they waited for."""

import pytest
from IPython.core.error import UsageError

import hiapi_notebook as hn


def test_wait_waits_for_every_task_in_flight(ip, sandbox, capsys):
    ip.run_line_magic("hiapi", "wait")
    assert "No task of this kernel is running." in capsys.readouterr().out
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image --no-wait -o a", "a fox")
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image --no-wait -n 2 -o b", "two owls")
    later = hn.submit("a heron", model="gpt-image-2/text-to-image")
    capsys.readouterr()
    ip.run_line_magic("hiapi", "wait")
    assert "Waited for 4 tasks: 4 succeeded." in capsys.readouterr().out
    assert [g.status for g in (ip.user_ns["a"], *ip.user_ns["b"], later)] == ["success"] * 4
    # the notes for a run nobody watches are not for a terminal
    assert "only when a later cell runs" not in capsys.readouterr().out


def test_a_failure_is_counted_and_said_where_to_look(ip, sandbox, capsys):
    ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image --no-wait", "this fails #fail")
    capsys.readouterr()
    ip.run_line_magic("hiapi", "wait")
    assert "Waited for 1 task: 0 succeeded, 1 did not succeed (each says why in its cell)." in (
        capsys.readouterr().out
    )


def test_the_python_api_returns_what_it_waited_for(ip, sandbox):
    first = hn.submit("a kite", model="gpt-image-2/text-to-image")
    waited = hn.wait()
    assert [g.task_id for g in waited] == [first.task_id] and first.status == "success"
    assert hn.wait() == []


def test_wait_takes_nothing_after_it(ip):
    with pytest.raises(UsageError, match="takes nothing after it"):
        ip.run_line_magic("hiapi", "wait now")
