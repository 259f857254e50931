"""``%hiapi history`` as a visual list a person would rather look at, with filters, and
``%hiapi models`` as a table whose numbers read as numbers. Real results from the sandbox."""

from __future__ import annotations

import re
import time

import pytest

from hiapi_notebook import catalog
from hiapi_notebook.api import generate_many
from hiapi_notebook.subcommands import HistoryArgs, parse_subcommand
from hiapi_notebook.views.history import HistoryView, when_text
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
    shown_when = re.findall(r'<span class="hiapi-journal-when" title="([^"]*)">([^<]*)</span>', html)
    assert [text for _, text in shown_when] == [when_text(r.created_at, time.time()) for r in records]
    assert all("just now when this was shown" in title for title, _ in shown_when)  # said on hover only
    assert "rejected" in html  # the failure's reason on hover
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
    assert header.split() == ["when", "status", "model", "prompt", "task", "id", "cost", "local", "files"]
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


def test_history_says_the_time_not_an_age_that_would_freeze_in_the_saved_file():
    now = time.mktime((2026, 12, 3, 14, 30, 0, 0, 0, -1))
    made = time.mktime((2026, 12, 3, 14, 29, 50, 0, 0, -1))
    assert when_text(made, now) == "Dec 3, 14:29"
    assert when_text(made, now + 400 * 86400) == "2026-12-03 14:29"  # another year: the year too


def test_history_lists_each_local_file_and_a_click_copies_the_whole_task_id(made, monkeypatch):
    session, gens = made
    monkeypatch.setenv("HIAPI_FRONTEND", "jupyterlab")  # links open beside the notebook there
    html = HistoryView(session.journal.history(10))._repr_html_()
    assert "<span>local files</span>" in html
    video = gens[3]
    for output in video.outputs:  # the clip and its frames: each a link beside the notebook
        relative = f"hiapi-outputs/{video.task_id}/{output.path.name}"
        assert f'<a href="{relative}" target="_blank"' in html and f">{output.path.name}</a>" in html
    failed = re.search(r'data-status="fail".*?<span class="hiapi-journal-files">(.*?)</span><span', html)
    assert failed and failed.group(1) == "—"  # a failure kept nothing
    ids = re.findall(r'<span class="hiapi-journal-id" data-copy="([^"]*)" title="([^"]*)" onclick="', html)
    assert [i for i, _ in ids] == [g.task_id for g in reversed(gens)]
    assert all(title.startswith(f"{i} · a click copies it") for i, title in ids)  # whole on hover
    assert "writeText" in html and ".hiapi-journal-id:hover{white-space:normal" in html
    text = repr(HistoryView(session.journal.history(10)))
    assert f"hiapi-outputs/{gens[0].task_id}/{gens[0].outputs[0].path.name}" in text


def test_history_names_files_as_text_where_links_would_not_open(made, monkeypatch):
    session, gens = made
    monkeypatch.setenv("HIAPI_FRONTEND", "vscode")
    html = HistoryView(session.journal.history(10))._repr_html_()
    name = gens[0].outputs[0].path.name
    assert f'<a href="hiapi-outputs/{gens[0].task_id}/{name}"' not in html
    assert f"hiapi-outputs/{gens[0].task_id}/{name}" in html and f">{name}</span>" in html
