"""The model catalogue: the facts of ``data/models.json`` as typed specs, plus early checks.

The server is the authority on models and fields. The catalogue feeds completion, forms and
clear errors before anything is sent, so it is strict only where the facts are precise (enum
lists, ranges, required fields) and lets anything vague through: an unknown model passes, an
unknown field passes unless it looks like a typo of a known one, an "enum" without its list
accepts any value.

Media inputs: a field named ``*_url`` (one) or ``*_urls`` (a list), or one marked as media
(``"media": "image"`` in the data, or ``MEDIA_NAMES`` for names HiAPI's pages describe as
image URLs, like Nano-Banana's ``image_input``), takes media (``media_field``).
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

CALLBACK_FIELDS = ("callback", "callback_url", "callbackUrl", "webhook")
KINDS = ("image", "video", "audio")
DEFAULT_OUTPUTS = {"image": ["image"], "video": ["video", "first_frame"], "audio": ["audio"]}
TYPO_CUTOFF = 0.85  # close enough to a known name to be a typo rather than a new name
# Media fields the names do not say (the data is the shared catalogue, kept as published).
MEDIA_NAMES = {"image_input": "image", "reference_image": "image", "input_urls": "image"}
HINT_CUTOFF = 0.6  # close enough to offer as "did you mean" in a message that refuses anyway


class CatalogError(ValueError):
    """An input the catalogue can already tell the server would reject; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # "string" | "integer" | "number" | "boolean" | "enum" | "string[]" | ...
    required: bool = False
    enum: list | None = None
    default: Any = None
    min: float | None = None  # a number's bound, a string's length, a list's item count
    max: float | None = None
    max_length: int | None = None
    description: str | None = None
    also_accepts: list | None = None  # values allowed outside the range, e.g. duration -1
    media: str | None = None  # the data's marker for a media field whose name does not say so


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "image" | "video" | "audio"
    fields: dict[str, FieldSpec]  # prompt first, then as documented
    outputs: list[str]
    price: dict | None = None
    status: str | None = None
    routes: list[str] = field(default_factory=lambda: ["default"])  # usable routes only
    confirmed: bool = True  # False: the name was seen only in third-party code

    @property
    def retired(self) -> bool:
        status = self.status or ""
        return any(w in status for w in ("legacy", "retired"))


def get_model(name: str) -> ModelSpec | None:
    """The spec for ``name``; a ``name@route`` suffix is stripped when the full name is unknown."""
    models = _catalogue()
    if name in models:
        return models[name]
    base, sep, _route = name.rpartition("@")
    return models.get(base) if sep else None


def model_names(kind: str | None = None) -> list[str]:
    """Confirmed model names (of one kind if given): current ones first, then legacy and retired."""
    return [m.name for m in all_models() if kind is None or m.kind == kind]


def all_models() -> list[ModelSpec]:
    """Every confirmed model, in the order of ``model_names()``."""
    confirmed = [m for m in _catalogue().values() if m.confirmed]
    return sorted(confirmed, key=lambda m: (m.retired, m.name.lower()))


def closest(word: str, candidates: list[str] | tuple[str, ...], cutoff: float = TYPO_CUTOFF) -> str | None:
    """The typo rule, for every name the package knows (models, fields, subcommands,
    options): the candidate ``word`` most resembles, if at least ``cutoff`` alike.
    At ``TYPO_CUTOFF`` a name is refused as a typo; at ``HINT_CUTOFF`` it is only a hint."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def suggest_model(name: str) -> str | None:
    """The closest known model name, for a "did you mean" hint."""
    names = list(_catalogue())
    base = name.rpartition("@")[0] or name
    by_lower = {n.lower(): n for n in names}
    if base.lower() in by_lower:
        return by_lower[base.lower()]
    close = closest(base.lower(), list(by_lower), HINT_CUTOFF)
    return by_lower[close] if close else None


def check_model_name(model: str) -> None:
    """A name the catalogue does not know but that is one typo from a known one is
    refused before anything is paid for (``CatalogError``); a name unlike any known
    one (a model newer than the catalogue) passes, and the server decides."""
    if get_model(model) is not None:
        return
    near = closest(model.partition("@")[0], model_names())
    if near:
        raise CatalogError(f"unknown model {model!r}: did you mean {near}?", field="model")


def validate_input(model_name: str, input: dict) -> None:
    """Raise ``CatalogError`` for an input the server is documented to reject."""
    if not isinstance(input, dict):
        raise CatalogError("input must be a JSON object", field="input")
    for name in CALLBACK_FIELDS:
        if name in input:
            raise CatalogError(
                f"input.{name} is not allowed: pass callback={{'url': ..., 'when': 'final'}} "
                "next to input, not inside it",
                field=name,
            )
    spec = get_model(model_name)
    if spec is None:
        return
    for f in spec.fields.values():
        if f.required and f.default is None and _missing(input.get(f.name)):
            raise CatalogError(f"input.{f.name} is required for {spec.name}", field=f.name)
    for name, value in input.items():
        known = spec.fields.get(name)
        if known is not None:
            if value is not None:
                _check_value(known, value)
            continue
        near = closest(name, list(spec.fields))
        if near:
            raise CatalogError(f"unknown input.{name} for {spec.name}: did you mean {near}?", field=name)


@dataclass(frozen=True)
class MediaField:
    """A field that takes media: what kind, one value or a list, and how many at most."""

    name: str
    kind: str | None  # "image" | "video" | "audio"; None: any of them
    many: bool  # a list field (``*_urls``)
    max: int | None  # the most items it takes (1 for a single field)
    assets: bool = False  # the catalogue says it also takes ``asset://`` ids


def media_field(model_name: str | None, name: str) -> MediaField | None:
    """The media facts of ``name`` for ``model_name``; None when it takes no media.
    A field the catalogue does not know is media when its name ends in ``_url(s)``."""
    spec = get_model(model_name) if model_name else None
    f = spec.fields.get(name) if spec is not None else None
    named = name.endswith(("_url", "_urls")) and name not in CALLBACK_FIELDS
    if not named and (f is None or not f.media):
        return None
    kind = (f.media if f is not None else None) or _kind_from_name(name)
    many = f.type == "string[]" if f is not None else name.endswith("_urls")
    most = (int(f.max) if f is not None and f.max is not None else None) if many else 1
    assets = f is not None and "asset" in (f.description or "").lower()
    return MediaField(name=name, kind=kind, many=many, max=most, assets=assets)


def _kind_from_name(name: str) -> str | None:
    for kind, words in (
        ("video", ("video",)),
        ("audio", ("audio", "voice", "music", "sound")),
        ("image", ("image", "frame", "photo", "picture", "mask", "input_url")),
    ):
        if any(word in name for word in words):
            return kind
    return None


def estimate_cost(model_name: str, input: dict) -> float | None:
    """Estimated USD cost of one task from the catalogue's prices, or None if not computable."""
    spec = get_model(model_name)
    if spec is None or not spec.price:
        return None
    for key, unit in _PRICE_UNITS.items():
        if key not in spec.price:
            continue
        rate = _rate(spec.price[key], spec, input)
        quantity = _quantity(unit, spec, input)
        if rate is None or quantity is None:
            return None
        return round(rate * quantity, 6)
    return None


# -- checks --------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_value(f: FieldSpec, value: Any) -> None:
    if f.also_accepts and value in f.also_accepts:
        return
    kind = f.type
    if f.enum:
        if value not in f.enum:
            allowed = ", ".join(str(v) for v in f.enum)
            raise CatalogError(
                f"invalid input.{f.name} {value!r}: allowed values are {allowed}", field=f.name
            )
    elif kind in ("integer", "number"):
        ok = isinstance(value, int) if kind == "integer" else isinstance(value, int | float)
        if not ok or isinstance(value, bool):
            raise CatalogError(
                f"input.{f.name} must be {'an integer' if kind == 'integer' else 'a number'}, got {value!r}",
                field=f.name,
            )
        _check_range(f, value, value, "")
    elif kind == "boolean" and not isinstance(value, bool):
        raise CatalogError(f"input.{f.name} must be true or false, got {value!r}", field=f.name)
    elif kind == "string":
        if not isinstance(value, str):
            raise CatalogError(f"input.{f.name} must be a string, got {value!r}", field=f.name)
        if f.max_length is not None and len(value) > f.max_length:
            raise CatalogError(
                f"input.{f.name} has {len(value)} characters: allowed at most {f.max_length}", field=f.name
            )
        _check_range(f, len(value), value, " characters")
    elif kind == "string[]":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise CatalogError(f"input.{f.name} must be a list of strings", field=f.name)
        _check_range(f, len(items), value, " items")


def _check_range(f: FieldSpec, size: float, value: Any, unit: str) -> None:
    low = f.min if f.min is not None else float("-inf")
    high = f.max if f.max is not None else float("inf")
    if low <= size <= high:
        return
    bounds = (
        f"{_num(f.min)} to {_num(f.max)}"
        if f.min is not None and f.max is not None
        else f"at least {_num(f.min)}"
        if f.min is not None
        else f"at most {_num(f.max)}"
    )
    shown = f"has {size}{unit}" if unit else f"{value!r} is out of range"
    raise CatalogError(f"input.{f.name} {shown}: allowed {bounds}{unit}", field=f.name)


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


# -- prices --------------------------------------------------------------------------------

# price key in the catalogue -> what its rate is multiplied by
_PRICE_UNITS = {
    "per_image_usd_by_resolution": "each",
    "per_image_usd_by_quality": "each",
    "per_image_usd": "each",
    "usd_per_call_list_price": "each",
    "usd_per_song": "each",
    "usd_per_second_list_price": "second",
    "usd_per_1000_chars_list_price": "kchar",
}


def _value(spec: ModelSpec, input: dict, name: str) -> Any:
    value = input.get(name)
    if value is None and name in spec.fields:
        value = spec.fields[name].default
    return value


def _rate(price: Any, spec: ModelSpec, input: dict) -> float | None:
    """A flat rate, or the row of a table keyed by whichever input value names it (1K, high...)."""
    if isinstance(price, int | float):
        return float(price)
    if isinstance(price, dict):
        for name in spec.fields:
            value = _value(spec, input, name)
            if isinstance(value, str) and value in price:
                return float(price[value])
    return None


def _quantity(unit: str, spec: ModelSpec, input: dict) -> float | None:
    if unit == "each":
        return 1.0
    if unit == "second":
        seconds = _value(spec, input, "duration") or _value(spec, input, "length")
        return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None
    text = _value(spec, input, "text") or _value(spec, input, "prompt")
    return len(text) / 1000 if isinstance(text, str) else None


# -- loading -------------------------------------------------------------------------------


@functools.cache
def _catalogue() -> dict[str, ModelSpec]:
    data = resources.files("hiapi_notebook").joinpath("data/models.json")
    raw = json.loads(data.read_text("utf-8"))
    models: dict[str, ModelSpec] = {}
    for entry in raw.get("models", []):
        models[entry["name"]] = _model_spec(entry, confirmed=True)
    for entry in raw.get("unconfirmed_models", []):
        # one entry lists several slugs as "a / b / c"
        for name in entry["name"].split(" / "):
            models.setdefault(name, _model_spec({**entry, "name": name}, confirmed=False))
    return models


def _model_spec(entry: dict, *, confirmed: bool) -> ModelSpec:
    inputs = entry.get("inputs") or {}
    order = sorted(inputs, key=lambda n: n != "prompt")  # stable: prompt first, rest as written
    kind = entry.get("kind", "image")
    own_route = entry["name"].rpartition("@")[2] if "@" in entry["name"] else None
    routes = ["default"] + [
        r["name"]
        for r in entry.get("routes", [])
        if r["name"] not in ("default", own_route) and not r.get("status")
    ]
    return ModelSpec(
        name=entry["name"],
        kind=kind,
        fields={n: _field_spec(n, inputs[n]) for n in order},
        outputs=list(entry.get("outputs") or DEFAULT_OUTPUTS.get(kind, [kind])),
        price=entry.get("price"),
        status=entry.get("status"),
        routes=routes,
        confirmed=confirmed,
    )


def _field_spec(name: str, raw: dict) -> FieldSpec:
    return FieldSpec(
        name=name,
        type=raw.get("type", "string").split(" ")[0],  # "string[] (format uri)" -> "string[]"
        required=bool(raw.get("required", False)),
        enum=raw.get("enum"),
        default=raw.get("default"),
        min=raw.get("min"),
        max=raw.get("max"),
        max_length=raw.get("max_length"),
        description=raw.get("description"),
        also_accepts=raw.get("also_accepts"),
        media=raw.get("media") or MEDIA_NAMES.get(name),
    )
