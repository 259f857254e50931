"""Widgets a view no longer needs are closed whole, in process: every model of the tree,
layouts and styles included (the kernel and the front end keep each open one for the
notebook's life). tests/test_widget_lifetime_kernel.py counts the comm messages of 20 tasks."""

from __future__ import annotations

import io

import ipywidgets as w
from PIL import Image

from hiapi_notebook.form import PromptForm
from hiapi_notebook.views.status import StatusBar, close_all

I2I = "gpt-image-2/image-to-image"


def models(widget) -> list:
    """Every widget model of a tree: the widgets, their layouts and styles."""
    found = [widget]
    for name in ("layout", "style"):
        part = getattr(widget, name, None)
        if isinstance(part, w.Widget):
            found.append(part)
    for child in getattr(widget, "children", ()):
        found += models(child)
    return found


def is_open(model) -> bool:
    return model.comm is not None


def test_close_all_closes_every_model_of_a_task_bar():
    bar = StatusBar()
    box = w.VBox([bar.title, w.HBox([bar.bar, bar.state])])
    tree = models(box)
    assert len(tree) == 13 and all(map(is_open, tree))  # what a task's bar is made of
    close_all(box)
    assert not any(map(is_open, tree))


def test_close_all_leaves_a_shared_model_of_another_widget_alone():
    keep = w.Layout(width="10px")
    other = w.Button(layout=keep)
    close_all(w.VBox([w.HTML("closed")]))
    assert is_open(other) and is_open(keep)


def test_the_forms_replaced_chips_are_closed_whole(ip, sandbox, tmp_path):
    form = PromptForm(model=I2I, prompt="restyle it")
    control = form._fields["input_urls"]
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(picture, format="PNG")
    control.add(picture.getvalue())
    first = [m for chip in control.chosen.children for m in models(chip)]
    assert len(first) > 5 and all(map(is_open, first))
    control.add(picture.getvalue())  # redrawn: two new chips replace the first
    assert not any(map(is_open, first))
    assert all(is_open(m) for chip in control.chosen.children for m in models(chip))
