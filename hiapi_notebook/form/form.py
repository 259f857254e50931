"""``PromptForm``: click instead of type.

A kind filter and a model dropdown (the catalogue), controls built from the
model's fields, key/value rows for fields the catalogue does not describe, and
Generate. Each click submits in the background through ``api.start`` (the kernel
stays free) and adds a row to the history under the form, newest first: a live
status bar, then the result. "Copy as magic" shows the ``%%hiapi`` cell that
reproduces the settings (``grammar.format_cell``).

Everything the background loop changes is a widget trait (status text, bar,
``Image.value``/``Video.value``), never ``with output:`` capture, which is
unreliable from threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Container
from typing import TYPE_CHECKING, Any

from .. import api, catalog
from ..catalog import ModelSpec
from ..errors import HiAPIError, RequestValidationError
from ..generation import Generation
from ..grammar import CellArgs, format_cell, value_text
from ..models import Request
from ..views.compat import widget_bundle
from ..views.frontend import use_widgets
from ..views.gallery import Gallery
from ..views.text import NO_MATH, esc, excerpt
from .checks import FormChecks
from .estimate import form_estimate, submitted_text
from .fields import (
    ExtraField,
    FieldControl,
    copy_button_html,
    model_label,
    option_values,
    starting_model,
)
from .history import HistoryRow
from .media import Control, make_control, use_media, words_of
from .twin import FormTwin, close_dead_forms, made_here

if TYPE_CHECKING:
    from traitlets.utils.bunch import Bunch

log = logging.getLogger("hiapi_notebook")

KINDS = (("all", ""), ("image", "image"), ("video", "video"), ("audio", "audio"))

# --- the form ------------------------------------------------------------------------------


class PromptForm(FormChecks):
    """``PromptForm(model=None, prompt="", kind=None, **fields)``: a form for one model.

    ``.submit()`` does what Generate does and returns the ``Generation``;
    ``.results`` lists the finished ones; ``.value`` / ``.request()`` give the
    current request; ``.as_magic()`` the ``%%hiapi`` cell that reproduces it.
    Identical settings submitted again get a new variant, so each click is a new
    task (a result recorded in the journal for the same variant is reused; pass
    ``fresh=True`` to always send).
    """

    def __init__(
        self,
        model: str | None = None,
        prompt: str = "",
        kind: str | None = None,
        *,
        fresh: bool = False,
        thumb: int = 256,
        **fields: Any,
    ) -> None:
        import ipywidgets as w

        settings = api.settings()
        self.fresh = fresh
        self.thumb = int(thumb)
        self.embed_limit = int(settings.embed_limit)
        if kind is not None and kind not in catalog.KINDS:
            raise RequestValidationError(f"kind must be one of {', '.join(catalog.KINDS)}, not {kind!r}")
        model = model or settings.default_model
        if not model:
            model = starting_model(kind)
        self._generations: list[Generation] = []
        self._rows: list[HistoryRow] = []
        self._variants = api.Variants()
        self._fields: dict[str, Control] = {}
        self._extras: list[ExtraField] = []
        self._messages: dict[str, str] = {}
        self._last_click: tuple[str, float] | None = None
        self.repeat_window = 1.5  # seconds in which the same request again is a double click
        self._kept = FormTwin(thumb=self.thumb)  # what a saved notebook shows with no kernel

        self.kind_dropdown = w.Dropdown(
            options=KINDS, value=kind or "", description="kind", layout=w.Layout(width="150px")
        )
        self.model_dropdown = w.Dropdown(
            options=self._model_options(kind or "", model),
            value=model,
            description="model",
            layout=w.Layout(width="420px"),
        )
        self.prompt_area = w.Textarea(
            value=prompt or "",
            placeholder="prompt: describe what to make",
            rows=3,
            layout=w.Layout(width="100%"),
        )
        self.prompt_error = w.HTML()
        self.fields_box = w.VBox()
        self.extra_box = w.VBox()
        self.add_field_button = w.Button(
            description="+ field",
            tooltip=("add an input the catalogue does not describe (name and value)"),
            layout=w.Layout(width="90px"),
        )
        self.generate_button = w.Button(
            description="Generate", button_style="primary", icon="play", tooltip="submit in the background"
        )
        self.status_label = w.HTML()
        # one click puts the cell on the clipboard, in the browser: no round trip to the kernel
        self.copy_magic = w.HTML()
        self.error = w.HTML()
        self.notice = w.HTML()  # a word that is not an error (say, a double click ignored)
        self.history = w.VBox()
        for widget, cls in (
            (self.kind_dropdown, "hiapi-form-kind"),
            (self.model_dropdown, "hiapi-form-model"),
            (self.prompt_area, "hiapi-form-prompt"),
            (self.generate_button, "hiapi-form-generate"),
            (self.add_field_button, "hiapi-form-add-field"),
            (self.copy_magic, "hiapi-form-copy-magic"),
            (self.status_label, "hiapi-form-status"),
            (self.error, "hiapi-form-message"),
            (self.history, "hiapi-form-history"),
        ):
            widget.add_class(cls)
        self.widget = w.VBox(
            [
                w.HBox([self.kind_dropdown, self.model_dropdown]),
                w.HBox([self.prompt_area, self.prompt_error], layout=w.Layout(align_items="center")),
                self.fields_box,
                self.extra_box,
                self.add_field_button,
                w.HBox(
                    [self.generate_button, self.copy_magic, self.status_label, self.error, self.notice],
                    layout=w.Layout(align_items="center", flex_flow="row wrap"),
                ),
                self.history,
            ]
        )
        self.widget.add_class("hiapi-form")
        made_here(self.widget)
        close_dead_forms()  # a reopened notebook's frozen forms, before this one is shown

        self._build_fields(model, {})
        for name, value in fields.items():
            field = self._fields.get(name)
            if field is None or not field.set(value):
                self._add_extra(name, value)
        self.kind_dropdown.observe(self._on_kind, names="value")
        self.model_dropdown.observe(self._on_model, names="value")
        self.prompt_area.observe(self._changed, names="value")
        self.generate_button.on_click(self._on_generate)
        self.add_field_button.on_click(lambda _b: self._add_extra())
        self._update_status()
        self._show_cell()

    # --- model and controls -----------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_dropdown.value

    @model.setter
    def model(self, name: str) -> None:
        if name not in option_values(self.model_dropdown.options):
            self.model_dropdown.options = self._model_options(self.kind_dropdown.value, name)
        self.model_dropdown.value = name

    @property
    def spec(self) -> ModelSpec | None:
        return catalog.get_model(self.model)

    @property
    def prompt(self) -> str:
        return self.prompt_area.value

    @prompt.setter
    def prompt(self, text: str) -> None:
        self.prompt_area.value = text

    @property
    def controls(self) -> dict[str, Any]:
        """The control of each catalogue field, by name (the prompt has ``prompt_area``)."""
        return {name: f.widget for name, f in self._fields.items()}

    def _model_options(self, kind: str, current: str | None) -> list[tuple[str, str]]:
        """(label, name) in alphabetical order; retired models say so in their label."""
        names = catalog.model_names(kind or None)
        if current and current not in names:
            names = [current] + names  # a model the catalogue does not know, or of another kind
        return sorted(((model_label(name), name) for name in names), key=lambda pair: pair[1].lower())

    def _build_fields(self, model: str, keep: dict[str, Any]) -> None:
        spec = catalog.get_model(model)
        prompt_field = self._prompt_field(spec)
        self._fields = {}
        if spec is not None:
            for name, fs in spec.fields.items():
                if name == prompt_field:
                    continue
                field = make_control(fs, catalog.media_field(model, name), FieldControl, spec)
                if name in keep:
                    field.set(keep[name])
                field.observe(self._changed)
                self._fields[name] = field
        self.fields_box.children = tuple(f.row for f in self._fields.values())
        kind = spec.kind if spec else "image"
        self.prompt_area.placeholder = (
            {
                "video": "prompt: describe the video",
                "audio": "prompt: describe the sound or music",
            }.get(kind, "prompt: describe the image")
            if prompt_field == "prompt"
            else "text to speak"
        )

    def _on_kind(self, change: Bunch) -> None:
        kind = change["new"]
        current = self.model
        names = catalog.model_names(kind or None)
        if current in names or not names:
            self.model_dropdown.options = self._model_options(kind, current)
            self.model_dropdown.value = current
        else:
            options = self._model_options(kind, None)
            self.model_dropdown.options = options  # ipywidgets selects the first: _on_model rebuilds
            if self.model_dropdown.value != options[0][1]:
                self.model_dropdown.value = options[0][1]

    def _on_model(self, change: Bunch) -> None:
        if change["new"] is None or change["new"] == change["old"]:
            return
        keep: dict[str, Any] = {}
        for name, field in self._fields.items():
            try:
                value = field.read()
            except ValueError:
                continue
            if not field.is_default(value):
                keep[name] = value
        self._build_fields(change["new"], keep)
        for extra in list(self._extras):  # a key/value row the new model has a control for
            control = self._fields.get(extra.key.value.strip())
            try:
                item = extra.read()
            except ValueError:
                continue
            if control is not None and item is not None and control.set(item[1]):
                self._extras.remove(extra)
        self.extra_box.children = tuple(e.row for e in self._extras)
        self._clear_errors()
        self._changed()

    def _add_extra(self, key: str = "", value: Any = "") -> ExtraField:
        extra = ExtraField(key, value, on_change=self._changed, on_remove=self._remove_extra)
        self._extras.append(extra)
        self.extra_box.children = tuple(e.row for e in self._extras)
        return extra

    def _remove_extra(self, extra: ExtraField) -> None:
        if extra in self._extras:
            self._extras.remove(extra)
        self.extra_box.children = tuple(e.row for e in self._extras)
        self._changed()

    def add_field(self, name: str, value: Any) -> None:
        """Set ``name``: its control when the model has one, else a key/value row."""
        field = self._fields.get(name)
        if field is not None and field.set(value):
            return
        for extra in self._extras:
            if extra.key.value.strip() == name:
                extra.value.value = value_text(value)
                return
        self._add_extra(name, value)

    # --- submitting -----------------------------------------------------------------------
    def submit(self, *, fresh: bool | None = None) -> Generation:
        """Submit the current settings in the background; returns the ``Generation``.

        Invalid settings show inline and raise ``RequestValidationError``; nothing is sent.
        """
        return self._submit(self.request(), fresh)

    def _submit(self, request: Request, fresh: bool | None) -> Generation:
        try:
            generation = api.start(
                request,
                variant=self._variants.peek(request),
                fresh=self.fresh if fresh is None else fresh,
                show=False,
            )
        except (HiAPIError, ValueError) as exc:
            self._form_error(str(exc))
            raise
        self._variants.take(request)
        self.notice.value = ""
        self._generations.append(generation)
        self._kept.add(generation)
        spec = self.spec
        row = HistoryRow(
            generation,
            spec.kind if spec else "image",
            thumb=self.thumb,
            embed_limit=self.embed_limit,
            on_change=self._update_status,
            on_use=self._use_from_history,
        )
        self._rows.insert(0, row)
        self.history.children = (row.widget,) + tuple(self.history.children)
        row.start()
        self._update_status()
        return generation

    def _on_generate(self, _button: object = None) -> None:
        """A click. A second click on the same request within ``repeat_window`` seconds is
        a double click, not a second paid task: it is ignored, and the form says so."""
        try:
            request = self.request()
            key = api.Variants.key(request)
            now = time.monotonic()
            last = self._last_click
            if last is not None and last[0] == key and now - last[1] < self.repeat_window:
                self.notice.value = (
                    '<span class="hiapi-form-notice" style="font-size:12px;opacity:.8">'
                    "ignored a second click: this request was just sent</span>"
                )
                return
            self._last_click = (key, now)
            self._submit(request, None)  # the request just built: its media are read once
        except (HiAPIError, ValueError):
            pass  # shown inline
        except Exception as exc:  # a button must never leave a traceback in the kernel log only
            log.exception("hiapi form: submit failed")
            self._form_error(f"{type(exc).__name__}: {exc}")

    def use(self, value: Any, field: str | None = None) -> str:
        """Use a result (or a file, an image...) as an input: in ``field``, or the first
        media field of the current model that takes it. Returns the field's name."""
        return use_media(self._fields, self.model, value, field)

    def _use_from_history(self, generation: Generation) -> None:
        try:
            self.use(generation)
        except (HiAPIError, ValueError) as exc:
            self._form_error(str(exc))

    @property
    def generations(self) -> list[Generation]:
        """Every submission of this form, oldest first."""
        return list(self._generations)

    @property
    def results(self) -> list[Generation]:
        """The finished ``Generation``s (failures included: see ``.error``), oldest first."""
        return [g for g in self._generations if g.done]

    @property
    def running(self) -> list[Generation]:
        return [g for g in self._generations if not g.done]

    @property
    def rows(self) -> list[HistoryRow]:
        """The history under the form, newest first."""
        return list(self._rows)

    def wait(self, timeout: float | None = None) -> list[Generation]:
        """Block until every submission so far has ended; returns ``.results``."""
        for g in list(self._generations):
            try:
                g.wait(timeout)
            except Exception:
                pass
        return self.results

    def gallery(self, **options: Any) -> Gallery:
        """The finished results as a static ``Gallery`` (it stays in a saved notebook)."""
        return Gallery(self.results, **options)

    # --- status beside the button ---------------------------------------------------------------
    def _changed(self, _change: object = None) -> None:
        self.notice.value = ""
        if (
            any((self.prompt_error.value, self.error.value))
            or any(f.error.value for f in self._fields.values())
            or any(e.error.value for e in self._extras)
        ):
            self._clear_errors()
        self._update_status()
        self._show_cell()

    def _show_cell(self) -> None:
        cell = self.as_magic()
        self.copy_magic.value = copy_button_html(cell)
        self._kept.show_cell(cell)

    def _update_status(self) -> None:
        running = len(self.running)
        parts = [f"{running} running"] if running else []
        estimate = form_estimate(self)
        if estimate:
            parts.append(estimate)
        submitted = submitted_text(self._generations)
        if submitted:
            parts.append(submitted)
        self.status_label.value = (
            f'<span class="{NO_MATH}" style="font-size:12px">{esc(" · ".join(parts))}</span>' if parts else ""
        )

    # --- copy as magic --------------------------------------------------------------------------
    def as_magic(self) -> str:
        """The ``%%hiapi`` cell that sends exactly what Generate would send now."""
        data, _errors = self._collect(check=False)
        data = words_of(self._fields, data)  # media by the variable or file that holds them
        prompt_field = self._prompt_field(self.spec)
        body = data.pop(prompt_field, "") if prompt_field == "prompt" else ""
        return format_cell(CellArgs(model=self.model, fields=data), body)

    # --- display -----------------------------------------------------------------------------
    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        bundle = widget_bundle(self.widget)  # ipywidgets 7 widgets have no _repr_mimebundle_
        bundle["text/plain"] = repr(self)
        return bundle

    def _ipython_display_(self) -> None:
        """The form, then its static twin (``twin.py``): what a saved notebook shows once
        no kernel drives the form; the twin hides itself while the live form shows."""
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        if use_widgets():
            self._kept.display()

    def __repr__(self) -> str:
        prompt = self.prompt_area.value
        return (
            f"PromptForm(model={self.model!r}, prompt={excerpt(prompt, 40)!r}) — "
            f"{len(self._generations)} submitted, {len(self.results)} finished "
            "(widgets need a notebook; .submit() works anywhere)"
        )


__all__ = ["PromptForm"]
