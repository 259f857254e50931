"""``%hiapi history`` as a visual list a person would rather look at, with filters, and
``%hiapi models`` as a table whose numbers read as numbers. Real results from the sandbox."""

from __future__ import annotations

import re

import pytest

from hiapi_notebook import catalog
from hiapi_notebook.api import generate_many
from hiapi_notebook.subcommands import HistoryArgs, parse_subcommand
from hiapi_notebook.views.history import HistoryView
from hiapi_notebook.views.tables import ModelTable

IMAGE = "gpt-image-2/text-to-image"


@pytest.fixture
def made(session):
    gens = generate_many(
        [
            {"model": IMAGE, "prompt": "a red <b>fox</b> in snow"},
            {"model": IMAGE, "prompt": "a heron at dawn"},
            {"model": IMAGE, "prompt": "a broken fox #fail"},
            {"model": "seedance-2-0", "prompt": "a fox running", "duration": 4},
        ],
        concurrency=4,
        show=False,
    )
    return session, gens


def test_history_is_newest_first_with_thumbnails_status_and_a_copyable_id(made):
    session, gens = made
    records = session.journal.history(10)
    html = HistoryView(records)._repr_html_()
    rows = re.findall(r'<div class="hiapi-journal-row" data-status="(\w+)" data-task="([^"]*)"', html)
    assert [task for _, task in rows] == [g.task_id for g in reversed(gens)]  # newest first
    assert [status for status, _ in rows] == ["success", "fail", "success", "success"]
    thumb = r'<div class="hiapi-journal-thumb"><button[^>]*><img class="hiapi-thumb" src="([^"]+)"'
    thumbs = re.findall(thumb, html)
    assert len(thumbs) == 3 and all(t.startswith("data:image/") for t in thumbs)  # a video's first frame too
    assert 'class="hiapi-lb-full" style="display:none"><img src="hiapi-outputs/' in html  # a click opens it
    assert (
        'class="hiapi-lb-full" style="display:none"><video controls playsinline src="hiapi-outputs/' in html
    )
    assert html.count('class="hiapi-journal-id"') == 4 and "user-select:all" in html
    assert "a red &lt;b&gt;fox&lt;/b&gt; in snow" in html and "<b>fox</b>" not in html
    assert "just now" in html and "rejected" in html  # the failure's reason on hover
    assert "grid-template-columns" in html and "max-width:100%" in html  # within the output width


def test_history_filters(made):
    session, gens = made
    journal = session.journal
    assert [r.task_id for r in journal.history(10, text="fox")] == [
        gens[3].task_id,
        gens[2].task_id,
        gens[0].task_id,
    ]
    assert [r.task_id for r in journal.history(10, model="seedance")] == [gens[3].task_id]
    assert [r.task_id for r in journal.history(10, status="fail")] == [gens[2].task_id]
    assert journal.history(10, text="100%_sure") == []  # LIKE wildcards are taken literally
    assert len(journal.history(2)) == 2
    args = parse_subcommand("history", "fox --model gpt --status success -n 5")
    assert args == HistoryArgs(limit=5, text="fox", model="gpt", status="success")
    assert parse_subcommand("history", "7") == HistoryArgs(limit=7)
    assert parse_subcommand("history", "a heron") == HistoryArgs(text="a heron")


def test_history_in_a_terminal_is_an_aligned_table(made):
    session, gens = made
    text = repr(HistoryView(session.journal.history(10)))
    header, rule, *rows = text.splitlines()
    assert header.split() == ["when", "status", "model", "prompt", "task", "id", "cost"]
    assert set(rule.replace(" ", "")) == {"-"} and len(rows) == 4
    starts = [header.index(word) for word in ("status", "model", "prompt")]
    for row in rows:  # every column starts where its header does
        assert all(row[s - 2 : s] == "  " and row[s] != " " for s in starts), row
    assert HistoryView([]).__repr__() == "(no submissions match)"


def test_the_models_table_reads_as_numbers_with_its_marks_explained():
    table = ModelTable([catalog.get_model("qwen-image-2.0"), catalog.get_model("seedance-2-0")])
    text = repr(table)
    assert "seed (0–2147483647)" in text and "e+09" not in text
    assert "duration (4–15)" in text and "prompt*" in text and "* required" in text
    header, rule, first, second = text.splitlines()[:4]
    assert header.index("kind") == first.index("  image ") + 2 == second.index("  video ") + 2
    assert header.index("inputs") == first.index("prompt*")
    html = table._repr_html_()
    assert "<code style='white-space:nowrap'>qwen-image-2.0</code>" in html and "* required" in html
