"""The fallbacks for what Colab's pins (IPython 7.34, ipywidgets 7.7.1) lack, checked here on
the newer versions by taking the newer API away; the Colab-like kernel runs them for real
(tests/test_colab.py, ``@with_colab`` tests)."""

from __future__ import annotations

import types

import ipywidgets as w
import pytest

from hiapi_notebook.views.compat import widget_bundle


class Like7:
    """Takes ``_repr_mimebundle_`` away, as 7.x widgets lack it."""

    def __getattribute__(self, name):
        if name == "_repr_mimebundle_":
            raise AttributeError(name)
        return super().__getattribute__(name)


class Widget7(Like7, w.VBox):
    pass


class Model7(Like7, w.Widget):  # a model with no view, as 7.x's base Widget
    pass


def test_a_widget_without_a_mime_bundle_gets_the_one_ipywidgets_8_makes():
    children = [w.HTML("a"), w.FloatProgress()]
    old, new = Widget7(children), w.VBox(children)
    assert not hasattr(old, "_repr_mimebundle_")
    made = widget_bundle(old)
    expected = new._repr_mimebundle_()
    view = "application/vnd.jupyter.widget-view+json"
    assert made[view] == {**expected[view], "model_id": old.model_id}
    assert made[view]["model_id"] and made[view]["model_id"] != new.model_id
    assert made["text/plain"].startswith("Widget7(")
    old.close()
    new.close()


def test_a_model_with_no_view_shows_as_text_only():
    model = Model7()
    assert model._view_name is None
    assert widget_bundle(model).keys() == {"text/plain"}
    model.close()


def test_the_completer_falls_back_to_line_matchers_without_the_matcher_api(ip, monkeypatch):
    """IPython < 8.6 has no ``context_matcher``: the older line matchers take the line; what
    they offer is cut to IPython's token, which stops at ':' (``16:9`` is two tokens there)."""
    import IPython.core.completer as completer_module
    from IPython.core.completer import IPCompleter

    from hiapi_notebook.magics import complete

    monkeypatch.delattr(completer_module, "context_matcher")
    completer = IPCompleter(shell=ip, namespace={}, parent=ip)  # a fresh one: ip's has ours already
    complete.install(types.SimpleNamespace(Completer=completer))
    matcher = completer.magic_arg_matchers[0]
    assert matcher.__name__ == "hiapi_line_matcher"
    assert not completer.custom_matchers  # the v2 matcher was not installed

    def offered(line):
        completer.text_until_cursor = completer.line_buffer = line
        return matcher(line)

    assert offered("%%hiapi seedance-2-0 --aspect_ratio 16:") == ["9"]
    assert offered("%%hiapi seedance-2-0 --aspect_ratio ")[:2] == ["1:1", "4:3"]
    assert offered("%hiapi his") == ["history"]
    assert offered("x = ab") == []  # other lines are left to IPython
    with pytest.raises(ImportError):
        from IPython.core.completer import context_matcher  # noqa: F401
