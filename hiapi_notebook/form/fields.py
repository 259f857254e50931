"""The form's controls: one per catalogue field (``FieldControl``), and key/value
rows for fields the catalogue does not describe (``ExtraField``). Each reads back
exactly what it shows, or a short reason why it cannot."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .. import catalog
from ..catalog import FieldSpec, ModelSpec
from ..grammar import decode_value, reads_back
from ..views.text import COLOURS, esc, excerpt

LONG_TEXT = ("lyrics", "negative_prompt", "instruction", "text")
LABEL_WIDTH = "150px"
FIELD_WIDTH = "460px"

FIELD_NAME_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ROUTE_OF = re.compile(r"\s*([A-Za-z0-9_-]+) route\b")  # a description that opens "ext route ..."


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def tooltip(text: str) -> dict[str, str]:
    """A described control's hover text, as the installed ipywidgets names it:
    ``tooltip`` in 8, ``description_tooltip`` in 7 (Colab's 7.7 warns on the other)."""
    import ipywidgets

    major = int(str(ipywidgets.__version__).split(".")[0])
    return {"tooltip": text} if major >= 8 else {"description_tooltip": text}


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def error_html(message: str | None) -> str:
    if not message:
        return ""
    return (
        f'<span class="hiapi-form-error" style="color:{COLOURS["danger"]};font-size:12px;'
        f'white-space:nowrap" title="{esc(message)}">{esc(one_line(message))}</span>'
    )


# --- one control per catalogue field ---------------------------------------------------------


class FieldControl:
    """A control for one catalogue field, its inline error, and how to read it."""

    def __init__(self, spec: FieldSpec) -> None:
        import ipywidgets as w

        self.spec = spec
        self.name = spec.name
        d = spec.default
        # One column of labels (LABEL_WIDTH) and one of inputs wide enough for their
        # placeholders and a usable slider track.
        common: dict[str, Any] = {
            "description": spec.name,
            "style": {"description_width": LABEL_WIDTH},
            "layout": {"width": FIELD_WIDTH},
            **tooltip(spec.description or spec.name),
        }
        lo, hi = spec.min, spec.max
        if spec.enum:
            options = [(str(v), v) for v in spec.enum]
            if d is None or d not in spec.enum:
                options.insert(0, ("—", UNSET))
            self.kind = "enum"
            self.widget = w.Dropdown(options=options, value=d if d in spec.enum else UNSET, **common)
        elif spec.type == "boolean":
            self.kind = "bool"
            # the box sits in the inputs' column, its name in the labels' column like the others
            common["layout"] = {"width": "auto"}
            common["description"] = ""
            self.widget = w.Checkbox(value=bool(d), indent=False, **common)
            self.label = w.Label(spec.name, layout=w.Layout(width=LABEL_WIDTH, margin="0 4px 0 0"))
            self.label.add_class("hiapi-field-label")
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
            cls = w.Textarea if spec.name in LONG_TEXT else w.Text
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
        parts = [self.label, self.widget, self.error] if self.kind == "bool" else [self.widget, self.error]
        self.row = w.HBox(parts, layout=w.Layout(align_items="center"))

    def observe(self, callback: Callable[..., None]) -> None:
        """``callback(change)`` whenever the control's value changes."""
        self.widget.observe(callback, names="value")

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
                    value if isinstance(value, str) and reads_back(value) else json.dumps(value)
                )
            return True
        except Exception:
            return False


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


class ExtraField:
    """A key/value row for a field the catalogue does not describe."""

    def __init__(
        self,
        key: str = "",
        value: Any = "",
        *,
        on_change: Callable[..., None],
        on_remove: Callable[[ExtraField], None],
    ) -> None:
        import ipywidgets as w

        self.key = w.Text(value=key, placeholder="field", layout=w.Layout(width="160px"))
        text = (
            value
            if isinstance(value, str) and reads_back(value)
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
        self.remove.on_click(lambda _b: on_remove(self))
        for widget in (self.key, self.value):
            widget.observe(on_change, names="value")

    def read(self) -> tuple[str, Any] | None:
        key, text = self.key.value.strip(), self.value.value.strip()
        if not key and not text:
            return None
        if not key:
            raise ValueError("name this field")
        if not FIELD_NAME_OK.match(key) and not key.replace("-", "_").replace(".", "_").isidentifier():
            raise ValueError(f"{excerpt(key, 20)!r} is not a field name")
        return key, decode_value(text)


# --- the model dropdown and the copy button ---------------------------------------------------


# The click runs in the page: the Clipboard API needs the click itself (a user gesture). Where a
# front end or browser refuses it, the cell shows selected in a text box with a one-line hint.
_COPY_SCRIPT = (
    "(b=>{const t=b.dataset.cell,p=b.parentElement,s=p.querySelector('.hiapi-copy-state'),"
    "a=p.querySelector('textarea');const f=()=>{a.value=t;a.style.display='block';a.focus();a.select();"
    "s.textContent='selected: press Ctrl+C (⌘C) to copy'};if(navigator.clipboard&&window.isSecureContext)"
    "{navigator.clipboard.writeText(t).then(()=>{s.textContent='copied';a.style.display='none'},f)}else{f()}})(this)"
)


def copy_button_html(cell: str) -> str:
    """A "Copy as magic" button carrying ``cell``; the text box is its fallback."""
    return (
        '<span class="hiapi-copy" style="display:inline-flex;flex-wrap:wrap;align-items:center;gap:6px">'
        '<button type="button" class="jupyter-button widget-button hiapi-copy-button" '
        f'title="put the %%hiapi cell that sends these settings on the clipboard" data-cell="{esc(cell)}" '
        f'onclick="{esc(_COPY_SCRIPT)}">Copy as magic</button>'
        '<span class="hiapi-copy-state" style="font-size:12px"></span>'
        '<textarea class="hiapi-copy-text" readonly rows="4" '
        'style="display:none;width:100%;font-family:var(--jp-code-font-family,monospace)"></textarea></span>'
    )


def model_label(name: str) -> str:
    """A dropdown label: the name, marked when the model is retired or a legacy name."""
    spec = catalog.get_model(name)
    if spec is None or not spec.retired:
        return name
    return f"{name} (retired)" if "retired" in (spec.status or "") else f"{name} (legacy name)"


def option_values(options: Any) -> list[str]:
    """The values of a dropdown's options, given as names or as (label, name) pairs."""
    return [o[1] if isinstance(o, tuple) else o for o in options]


def starting_model(kind: str | None) -> str:
    """A sensible first model: the flagship image model, else the first of the kind
    that takes a prompt (the alphabetical first may take none)."""
    if kind in (None, "", "image"):
        return "gpt-image-2/text-to-image"
    names = catalog.model_names(kind)
    prompted = [n for n in names if (spec := catalog.get_model(n)) is not None and "prompt" in spec.fields]
    return (prompted or names or ["gpt-image-2/text-to-image"])[0]


def field_route(spec: FieldSpec) -> str | None:
    """The route a field belongs to, when the catalogue's description opens with it
    ("default route; 1-16 URLs", "ext route name for the references")."""
    match = ROUTE_OF.match(spec.description or "")
    return match.group(1).lower() if match else None


def route_note(model: ModelSpec, name: str) -> str | None:
    """Which of a model's media fields to use, when two of them take the same thing on
    different routes (``input_urls`` on the default route, ``image_urls`` on ``ext``):
    the form sends on the default route. None when there is nothing to choose."""
    routes = {
        n: route
        for n, f in model.fields.items()
        if catalog.media_field(model.name, n) is not None and (route := field_route(f)) is not None
    }
    if name not in routes or len(set(routes.values())) < 2:
        return None
    default = next((n for n, r in routes.items() if r == "default"), None)
    route = routes[name]
    if route == "default":
        others = ", ".join(f"{n} ({r} route)" for n, r in routes.items() if r != "default")
        return f"use this one: the default route's field, where the form sends (not {others})"
    instead = f": use {default}" if default else ""
    return f"the {route} route's field; the form sends on the default route{instead}"
