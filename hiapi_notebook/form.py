"""``PromptForm``: click instead of type.

A kind filter and a model dropdown (the catalogue), controls built from the
model's fields, key/value rows for fields the catalogue does not describe, and
Generate. Each click submits in the background through ``api.start`` (the kernel
stays free) and adds a row to the history under the form, newest first: a live
status bar, then the result. "Copy as magic" shows the ``%%hiapi`` cell that
reproduces the settings.

Everything the background loop changes is a widget trait (status text, bar,
``Image.value``/``Video.value``), never ``with output:`` capture, which is
unreliable from threads.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from typing import Any

from . import catalog
from .catalog import CatalogError, FieldSpec, ModelSpec
from .errors import HiAPIError, RequestValidationError
from .runtime import Job
from .views.gallery import Gallery
from .views.media import _kind, read_within, sniff
from .views.status import LiveStatus, StatusBar
from .views.text import COLOURS, esc, excerpt

log = logging.getLogger("hiapi_notebook")

KINDS = (("all", ""), ("image", "image"), ("video", "video"), ("audio", "audio"))
_LONG_TEXT = ("lyrics", "negative_prompt", "instruction", "text")
# Names the %%hiapi line reads as its own options, not as model fields.
_MAGIC_OPTIONS = {
    "o",
    "out",
    "n",
    "route",
    "storage",
    "input",
    "callback",
    "timeout",
    "save",
    "sweep",
    "models",
    "model",
    "no_wait",
    "wait",
    "fresh",
    "force",
    "concurrency",
}
_FIELD_NAME_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _error_html(message: str | None) -> str:
    if not message:
        return ""
    return (
        f'<span class="hiapi-form-error" style="color:{COLOURS["danger"]};font-size:12px;'
        f'white-space:nowrap" title="{esc(message)}">{esc(_one_line(message))}</span>'
    )


# --- one control per catalogue field ---------------------------------------------------------


class _Field:
    """A control for one catalogue field, its inline error, and how to read it."""

    def __init__(self, spec: FieldSpec) -> None:
        import ipywidgets as w

        self.spec = spec
        self.name = spec.name
        d = spec.default
        common: dict[str, Any] = {
            "description": spec.name,
            "style": {"description_width": "150px"},
            "layout": {"width": "420px"} if spec.name in _LONG_TEXT else {},
        }
        common["tooltip"] = spec.description or spec.name
        if not common["layout"]:
            del common["layout"]
        lo, hi = spec.min, spec.max
        if spec.enum:
            options = [(str(v), v) for v in spec.enum]
            if d is None or d not in spec.enum:
                options.insert(0, ("—", UNSET))
            self.kind = "enum"
            self.widget = w.Dropdown(options=options, value=d if d in spec.enum else UNSET, **common)
        elif spec.type == "boolean":
            self.kind = "bool"
            self.widget = w.Checkbox(value=bool(d), indent=False, **common)
        elif spec.type == "integer" and isinstance(d, int) and lo is not None and hi is not None:
            self.kind = "int"
            cls = w.IntSlider if hi - lo <= 1000 else w.BoundedIntText
            self.widget = cls(value=d, min=int(lo), max=int(hi), **common)
        elif spec.type == "number" and isinstance(d, int | float) and lo is not None and hi is not None:
            self.kind = "float"
            self.widget = w.BoundedFloatText(value=float(d), min=float(lo), max=float(hi), **common)
        elif spec.type in ("integer", "number", "enum"):
            self.kind = "number" if spec.type != "enum" else "json"
            hint = {"integer": "whole number", "number": "number", "enum": "value"}[spec.type]
            if lo is not None or hi is not None:
                hint += f" {_num(lo) if lo is not None else ''}–{_num(hi) if hi is not None else ''}"
            self.widget = w.Text(value="" if d is None else str(d), placeholder=hint, **common)
        elif spec.type == "string[]":
            self.kind = "list"
            value = ", ".join(map(str, d)) if isinstance(d, list) else ""
            self.widget = w.Text(value=value, placeholder="comma-separated, or a JSON list", **common)
        elif spec.type == "string":
            self.kind = "text"
            cls = w.Textarea if spec.name in _LONG_TEXT else w.Text
            self.widget = cls(
                value="" if d is None else str(d), placeholder="(required)" if spec.required else "", **common
            )
        else:
            self.kind = "json"
            self.widget = w.Text(
                value="" if d is None else json.dumps(d), placeholder=f"{spec.type} (JSON)", **common
            )
        self.widget.add_class(f"hiapi-field-{spec.name}")
        self.error = w.HTML()
        self.row = w.HBox([self.widget, self.error], layout=w.Layout(align_items="center"))

    def read(self) -> Any:
        """The value to send, ``UNSET`` for none; ``ValueError`` with a short reason."""
        v = self.widget.value
        if self.kind in ("enum", "bool", "int", "float"):
            return v
        text = v.strip() if isinstance(v, str) else v
        if text == "":
            return UNSET
        if self.kind == "number":
            try:
                number = json.loads(text)
            except ValueError:
                number = None
            if self.spec.type == "integer" and (not isinstance(number, int) or isinstance(number, bool)):
                raise ValueError(f"{self.name} needs a whole number, not {excerpt(text, 20)!r}")
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise ValueError(f"{self.name} needs a number, not {excerpt(text, 20)!r}")
            return number
        if self.kind == "list":
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except ValueError:
                    raise ValueError(f"{self.name}: not a valid JSON list") from None
                if not isinstance(items, list):
                    raise ValueError(f"{self.name} needs a list")
                return items
            return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
        if self.kind == "json":
            from .magics.parse import decode_value

            return decode_value(text)
        return v  # text: as typed (spaces kept)

    def is_default(self, value: Any) -> bool:
        d = self.spec.default
        if value is UNSET:
            return True
        if self.kind == "bool" and d is None:
            return value is False
        if isinstance(value, list) and not value:
            return d in (None, [])
        if self.kind == "float":
            return isinstance(d, int | float) and value == d
        return value == d and type(value) is type(d)

    def set(self, value: Any) -> bool:
        """Put ``value`` in the control if it fits; False when it does not."""
        try:
            if self.kind == "enum":
                if value not in (self.spec.enum or []):
                    return False
                self.widget.value = value
            elif self.kind == "bool":
                if not isinstance(value, bool):
                    return False
                self.widget.value = value
            elif self.kind in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return False
                if not (self.widget.min <= value <= self.widget.max):
                    return False
                self.widget.value = int(value) if self.kind == "int" else float(value)
            elif self.kind == "list":
                self.widget.value = (
                    ", ".join(map(str, value))
                    if isinstance(value, list) and all(isinstance(i, str) and "," not in i for i in value)
                    else json.dumps(value)
                )
            elif self.kind == "text":
                if not isinstance(value, str):
                    return False
                self.widget.value = value
            elif self.kind == "number":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return False
                self.widget.value = str(value)
            else:
                self.widget.value = (
                    value if isinstance(value, str) and _json_text_is(value) else json.dumps(value)
                )
            return True
        except Exception:
            return False


def _json_text_is(text: str) -> bool:
    """True when ``text`` reads back as the same string (decode_value leaves it alone)."""
    from .magics.parse import decode_value

    return decode_value(text) == text


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


class _Extra:
    """A key/value row for a field the catalogue does not describe."""

    def __init__(self, form: PromptForm, key: str = "", value: Any = "") -> None:
        import ipywidgets as w

        self.key = w.Text(value=key, placeholder="field", layout=w.Layout(width="160px"))
        text = (
            value
            if isinstance(value, str) and _json_text_is(value)
            else ("" if value == "" else json.dumps(value))
        )
        self.value = w.Text(value=text, placeholder="value (JSON or text)", layout=w.Layout(width="260px"))
        self.key.add_class("hiapi-extra-key")
        self.value.add_class("hiapi-extra-value")
        self.remove = w.Button(description="×", tooltip="remove this field", layout=w.Layout(width="32px"))
        self.error = w.HTML()
        self.row = w.HBox(
            [self.key, self.value, self.remove, self.error], layout=w.Layout(align_items="center")
        )
        self.remove.on_click(lambda _b: form._remove_extra(self))
        for widget in (self.key, self.value):
            widget.observe(form._changed, names="value")

    def read(self) -> tuple[str, Any] | None:
        from .magics.parse import decode_value

        key, text = self.key.value.strip(), self.value.value.strip()
        if not key and not text:
            return None
        if not key:
            raise ValueError("name this field")
        if not _FIELD_NAME_OK.match(key) and not key.replace("-", "_").replace(".", "_").isidentifier():
            raise ValueError(f"{excerpt(key, 20)!r} is not a field name")
        return key, decode_value(text)


# --- one submission in the history ---------------------------------------------------------


class _HistoryRow(LiveStatus):
    """A submission under the form: live status, then the media, set as widget traits
    from the background loop (no output capture)."""

    def __init__(self, generation: Any, form: PromptForm, kind: str) -> None:
        import ipywidgets as w

        super().__init__(generation.job, StatusBar(width="160px", height="12px"))
        self.generation = generation
        self.form = form
        self.status.state.add_class("hiapi-history-state")
        thumb = f"{form.thumb}px"
        if kind == "video":
            self.media = w.Video(
                format="mp4",
                controls=True,
                autoplay=False,
                loop=True,
                layout=w.Layout(display="none", max_width=thumb),
            )
        elif kind == "audio":
            self.media = w.Audio(format="wav", controls=True, autoplay=False, layout=w.Layout(display="none"))
        else:
            self.media = w.Image(layout=w.Layout(display="none", max_width=thumb, height="auto"))
        self.media.add_class("hiapi-history-media")
        self.kind = kind
        self.links = w.HTML()
        self.widget = w.VBox(
            [
                w.HBox([self.status.bar, self.status.state], layout=w.Layout(align_items="center")),
                self.status.title,
                self.media,
                self.links,
            ],
            layout=w.Layout(border="1px solid #ddd", padding="4px", margin="2px 0"),
        )
        self.widget.add_class("hiapi-history-row")

    def start(self) -> _HistoryRow:
        self.follow()
        return self

    def refresh(self, job: Job | None = None) -> None:
        super().refresh(job)
        self.form._update_status()  # the running count beside the button

    def on_end(self) -> None:
        self._show_result()

    def _show_result(self) -> None:
        from .views.gallery import media_html

        job = self.job
        if not job.succeeded:
            return  # the red bar and the message in the state line say it all
        limit = self.form.embed_limit
        shown = None
        for f in job.files:
            data = read_within(f, limit)
            if data is None:
                continue
            mime = sniff(data, f.content_type)
            if _kind(f, mime) == self.kind and not (
                self.kind == "image" and f.type == "first_frame" and len(job.files) > 1
            ):
                shown = f
                self.media.format = mime.split("/", 1)[1] if "/" in mime else mime
                self.media.value = data
                self.media.layout.display = ""
                break
        items, links = media_html(job, thumb=self.form.thumb, embed_limit=limit)
        extra = ""
        if shown is None:  # not the kind expected (or too big for widget state): static HTML
            from .views.gallery import STYLE

            extra = STYLE + f'<div style="display:flex;gap:6px;flex-wrap:wrap">{items}</div>'
        self.links.value = extra + (
            '<div style="font-size:11px">' + " · ".join(links) + "</div>" if links else ""
        )


class _KeptHistory(Gallery):
    """The form's history as static HTML, newest first, for the saved notebook.

    In JupyterLab the live form (``.hiapi-form``) sits in the output just before
    this one; while it renders, a ``:has()`` rule hides this copy so results do not
    show twice. With no kernel the form cannot render and the copy shows.
    """

    HIDE = (
        "<style>.jp-OutputArea-child:has(.hiapi-form) + .jp-OutputArea-child "
        ".hiapi-form-kept{display:none}</style>"
    )

    def __init__(self, thumb: int) -> None:
        super().__init__(thumb=thumb, newest_first=True, title="PromptForm history")

    def render_html(self) -> str:
        return f'{self.HIDE}<div class="hiapi-form-kept">{super().render_html()}</div>'


# --- the form ------------------------------------------------------------------------------


class PromptForm:
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

        from .session import get_session

        settings = get_session().settings
        self.fresh = fresh
        self.thumb = int(thumb)
        self.embed_limit = int(settings.embed_limit)
        if kind is not None and kind not in catalog.KINDS:
            raise RequestValidationError(f"kind must be one of {', '.join(catalog.KINDS)}, not {kind!r}")
        model = model or settings.default_model
        if not model:
            model = _starting_model(kind)
        self._generations: list[Any] = []
        self._rows: list[_HistoryRow] = []
        self._variants: dict[str, int] = {}
        self._fields: dict[str, _Field] = {}
        self._extras: list[_Extra] = []
        self._messages: dict[str, str] = {}
        self._submitted_cost = 0.0
        self._kept = _KeptHistory(thumb=self.thumb)

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
        self.magic_button = w.Button(
            description="Copy as magic", tooltip="the %%hiapi cell that reproduces these settings"
        )
        self.magic_area = w.Textarea(rows=4, layout=w.Layout(width="100%", display="none"))
        self.error = w.HTML()
        self.history = w.VBox()
        for widget, cls in (
            (self.kind_dropdown, "hiapi-form-kind"),
            (self.model_dropdown, "hiapi-form-model"),
            (self.prompt_area, "hiapi-form-prompt"),
            (self.generate_button, "hiapi-form-generate"),
            (self.add_field_button, "hiapi-form-add-field"),
            (self.magic_button, "hiapi-form-copy-magic"),
            (self.magic_area, "hiapi-form-magic"),
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
                    [self.generate_button, self.status_label, self.magic_button, self.error],
                    layout=w.Layout(align_items="center", flex_flow="row wrap"),
                ),
                self.magic_area,
                self.history,
            ]
        )
        self.widget.add_class("hiapi-form")

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
        self.magic_button.on_click(self._on_copy_magic)
        self._update_status()

    # --- model and controls -----------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_dropdown.value

    @model.setter
    def model(self, name: str) -> None:
        if name not in self.model_dropdown.options:
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

    def _model_options(self, kind: str, current: str | None) -> list[str]:
        names = catalog.model_names(kind or None)
        if current and current not in names:
            names = [current] + names  # a model the catalogue does not know, or of another kind
        return names

    def _prompt_field(self, spec: ModelSpec | None) -> str:
        if spec is not None and "prompt" not in spec.fields and "text" in spec.fields:
            return "text"  # text-to-speech models take their words as `text`
        return "prompt"

    def _build_fields(self, model: str, keep: dict[str, Any]) -> None:
        spec = catalog.get_model(model)
        prompt_field = self._prompt_field(spec)
        self._fields = {}
        if spec is not None:
            for name, fs in spec.fields.items():
                if name == prompt_field:
                    continue
                field = _Field(fs)
                if name in keep:
                    field.set(keep[name])
                field.widget.observe(self._changed, names="value")
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

    def _on_kind(self, change) -> None:
        kind = change["new"]
        current = self.model
        names = catalog.model_names(kind or None)
        if current in names or not names:
            self.model_dropdown.options = self._model_options(kind, current)
            self.model_dropdown.value = current
        else:
            self.model_dropdown.options = names  # ipywidgets selects the first: _on_model rebuilds
            if self.model_dropdown.value != names[0]:
                self.model_dropdown.value = names[0]

    def _on_model(self, change) -> None:
        if change["new"] is None or change["new"] == change["old"]:
            return
        keep = {}
        for name, field in self._fields.items():
            try:
                value = field.read()
            except ValueError:
                continue
            if not field.is_default(value):
                keep[name] = value
        self._build_fields(change["new"], keep)
        for extra in list(self._extras):  # a key/value row the new model has a control for
            field = self._fields.get(extra.key.value.strip())
            try:
                item = extra.read()
            except ValueError:
                continue
            if field is not None and item is not None and field.set(item[1]):
                self._extras.remove(extra)
        self.extra_box.children = tuple(e.row for e in self._extras)
        self._clear_errors()
        self._changed()

    def _add_extra(self, key: str = "", value: Any = "") -> _Extra:
        extra = _Extra(self, key, value)
        self._extras.append(extra)
        self.extra_box.children = tuple(e.row for e in self._extras)
        return extra

    def _remove_extra(self, extra: _Extra) -> None:
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
                extra.value.value = (
                    value if isinstance(value, str) and _json_text_is(value) else json.dumps(value)
                )
                return
        self._add_extra(name, value)

    # --- reading and checking -----------------------------------------------------------------
    def _collect(self, check: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
        """(input to send, errors by field; "" for the form as a whole). ``check`` adds
        the catalogue's checks to the controls' own."""
        errors: dict[str, str] = {}
        spec = self.spec
        prompt_field = self._prompt_field(spec)
        data: dict[str, Any] = {}
        prompt = self.prompt_area.value.strip()
        if prompt:
            data[prompt_field] = prompt
        for name, field in self._fields.items():
            try:
                value = field.read()
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if not field.is_default(value):
                data[name] = value
        for i, extra in enumerate(self._extras):
            try:
                item = extra.read()
            except ValueError as exc:
                errors[f"\0extra{i}"] = str(exc)
                continue
            if item is not None:
                data[item[0]] = item[1]
        if check and not errors:
            try:
                catalog.validate_input(self.model, data)
            except CatalogError as exc:
                errors[exc.field or ""] = exc.message
        return data, errors

    @property
    def value(self) -> dict[str, Any]:
        """The current settings as ``build_request`` arguments (``model``, ``prompt``, fields);
        usable in ``generate_many``. Not checked against the catalogue (``request()`` is)."""
        data, errors = self._collect(check=False)
        if errors:
            raise RequestValidationError(_one_line(next(iter(errors.values()))))
        out: dict[str, Any] = {"model": self.model}
        if "prompt" in data:
            out["prompt"] = data.pop("prompt")
        out.update(data)
        return out

    def request(self, *, show_errors: bool = True):
        """The current request, checked; invalid settings raise ``RequestValidationError``
        (a ``ValueError``) and, with ``show_errors``, show beside their field."""
        from .api import build_request

        data, errors = self._collect()
        if show_errors:
            self._show_errors(errors)
        if errors:
            raise RequestValidationError(_one_line(next(iter(errors.values()))))
        try:
            return build_request(self.model, None, input=data)
        except (HiAPIError, ValueError) as exc:
            if show_errors:
                self._show_errors({"": str(exc)})
            raise

    def _clear_errors(self) -> None:
        self._messages = {}
        self.prompt_error.value = ""
        self.error.value = ""
        for field in self._fields.values():
            field.error.value = ""
        for extra in self._extras:
            extra.error.value = ""

    def _show_errors(self, errors: dict[str, str]) -> None:
        self._clear_errors()
        prompt_field = self._prompt_field(self.spec)
        for name, message in errors.items():
            shown = name if name and not name.startswith("\0") else "form"
            if name.startswith("\0extra"):
                shown = self._extras[int(name[6:])].key.value.strip() or "(unnamed field)"
            self._messages[shown] = _one_line(message)
            if name == prompt_field:
                self.prompt_error.value = _error_html(message)
            elif name in self._fields:
                self._fields[name].error.value = _error_html(message)
            elif name.startswith("\0extra"):
                self._extras[int(name[6:])].error.value = _error_html(message)
            else:
                target = next((e for e in self._extras if e.key.value.strip() == name), None)
                (target.error if target is not None else self.error).value = _error_html(message)

    def _form_error(self, message: str) -> None:
        self._messages["form"] = _one_line(message)
        self.error.value = _error_html(message)

    @property
    def errors(self) -> dict[str, str]:
        """The inline errors now shown, by field ("form" for the line beside Generate)."""
        return dict(self._messages)

    # --- submitting -----------------------------------------------------------------------
    def submit(self, *, fresh: bool | None = None):
        """Submit the current settings in the background; returns the ``Generation``.

        Invalid settings show inline and raise ``RequestValidationError``; nothing is sent.
        """
        from .api import start
        from .catalog import estimate_cost

        request = self.request()
        key = json.dumps([request.model, dict(request.input)], sort_keys=True, default=str)
        variant = self._variants.get(key, 0)
        try:
            generation = start(
                request, variant=variant, fresh=self.fresh if fresh is None else fresh, show=False
            )
        except (HiAPIError, ValueError) as exc:
            self._form_error(str(exc))
            raise
        self._variants[key] = variant + 1
        if not generation.job.cached:
            self._submitted_cost += estimate_cost(request.model, dict(request.input)) or 0.0
        self._generations.append(generation)
        self._kept.add(generation)
        spec = self.spec
        row = _HistoryRow(generation, self, spec.kind if spec else "image")
        self._rows.insert(0, row)
        self.history.children = (row.widget,) + tuple(self.history.children)
        row.start()
        self._update_status()
        return generation

    def _on_generate(self, _button=None) -> None:
        try:
            self.submit()
        except (HiAPIError, ValueError):
            pass  # shown inline
        except Exception as exc:  # a button must never leave a traceback in the kernel log only
            log.exception("hiapi form: submit failed")
            self._form_error(f"{type(exc).__name__}: {exc}")

    @property
    def generations(self) -> list[Any]:
        """Every submission of this form, oldest first."""
        return list(self._generations)

    @property
    def results(self) -> list[Any]:
        """The finished ``Generation``s (failures included: see ``.error``), oldest first."""
        return [g for g in self._generations if g.done]

    @property
    def running(self) -> list[Any]:
        return [g for g in self._generations if not g.done]

    @property
    def rows(self) -> list[_HistoryRow]:
        """The history under the form, newest first."""
        return list(self._rows)

    def wait(self, timeout: float | None = None) -> list[Any]:
        """Block until every submission so far has ended; returns ``.results``."""
        for g in list(self._generations):
            try:
                g.wait(timeout)
            except Exception:
                pass
        return self.results

    def gallery(self, **options: Any):
        """The finished results as a static ``Gallery`` (it stays in a saved notebook)."""
        from .views.gallery import Gallery

        return Gallery(self.results, **options)

    # --- status beside the button ---------------------------------------------------------------
    def _changed(self, _change=None) -> None:
        if (
            any((self.prompt_error.value, self.error.value))
            or any(f.error.value for f in self._fields.values())
            or any(e.error.value for e in self._extras)
        ):
            self._clear_errors()
        self._update_status()
        if self.magic_area.layout.display != "none":
            self.magic_area.value = self.as_magic()

    def _update_status(self) -> None:
        from .catalog import estimate_cost

        running = len(self.running)
        parts = [f"{running} running"] if running else []
        try:
            data, errors = self._collect()
            cost = None if errors else estimate_cost(self.model, data)
        except Exception:
            cost = None
        if cost is not None:
            parts.append(f"≈ ${cost:.3f} per task")
        if self._submitted_cost:
            parts.append(f"≈ ${self._submitted_cost:.3f} submitted")
        self.status_label.value = (
            f'<span style="font-size:12px">{esc(" · ".join(parts))}</span>' if parts else ""
        )

    # --- copy as magic --------------------------------------------------------------------------
    def _on_copy_magic(self, _button=None) -> None:
        self.magic_area.value = self.as_magic()
        self.magic_area.layout.display = ""

    def as_magic(self) -> str:
        """The ``%%hiapi`` cell that reproduces the current settings (non-default fields only)."""
        data, _errors = self._collect(check=False)
        prompt_field = self._prompt_field(self.spec)
        body = data.pop(prompt_field, "") if prompt_field == "prompt" else ""
        words = ["%%hiapi", _quote_word(self.model)]
        loose: dict[str, Any] = {}
        for name, value in data.items():
            if not _FIELD_NAME_OK.match(name) or name in _MAGIC_OPTIONS:
                loose[name] = value  # the line cannot say it as --NAME: --input JSON can
                continue
            words.append(_option(name, value))
        if loose:
            words.append("--input " + shlex.quote(json.dumps(loose, ensure_ascii=False)))
        body = body.replace("{", "{{").replace("}", "}}")  # the magic reads {name} as a variable
        return " ".join(words) + "\n" + body

    # --- display -----------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs: Any):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = repr(self)
        return bundle

    def _ipython_display_(self) -> None:
        """The form, then a static copy of its history that a saved notebook keeps
        (widget state is not saved); the copy hides itself while the live form shows."""
        from IPython.display import display

        from .views.status import use_widgets

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


def _starting_model(kind: str | None) -> str:
    """A sensible first model: the flagship image model, else the first of the kind
    that takes a prompt (the alphabetical first may take none)."""
    if kind in (None, "", "image"):
        return "gpt-image-2/text-to-image"
    names = catalog.model_names(kind)
    prompted = [n for n in names if "prompt" in catalog.get_model(n).fields]
    return (prompted or names or ["gpt-image-2/text-to-image"])[0]


def _quote_word(text: str) -> str:
    return shlex.quote(text)


def _option(name: str, value: Any) -> str:
    """``--name VALUE`` that ``parse_line`` reads back as exactly ``value``."""
    if isinstance(value, str) and _json_text_is(value):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    quoted = shlex.quote(text)
    return f"--{name}={quoted}" if text.startswith("-") else f"--{name} {quoted}"


__all__ = ["PromptForm"]
