"""The form's media fields (``input_urls``, ``first_frame_url``, ...): what is chosen,
shown as thumbnails (each with ×), and three ways to choose: an upload, a picker of this
notebook's earlier results, and a URL box that also takes a file or variable name.

An upload is kept in ``hiapi-inputs/`` beside the notebook, so "Copy as magic" can name
it and a re-run finds it; a picked result is named by the notebook variable that holds
it, else by its local copy. What the control shows is what is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .. import inputs, media
from ..catalog import FieldSpec, MediaField
from ..errors import RequestValidationError
from ..generation import GeneratedOutput, Generation
from ..inputs import MediaInputError, Named
from ..views.status import close_all
from ..views.text import esc, excerpt
from .fields import UNSET, FieldControl, error_html

if TYPE_CHECKING:
    from ipywidgets import DOMWidget, Widget
    from traitlets.utils.bunch import Bunch

UPLOADS_DIR = "hiapi-inputs"
ACCEPT = {"image": "image/*", "video": "video/*", "audio": "audio/*", None: "image/*,video/*,audio/*"}
THUMB = 72
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def user_namespace() -> dict[str, Any] | None:
    """The notebook's variables, when running in IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell.user_ns if shell is not None else None


class MediaControl:
    """One media field: chosen items, an upload, earlier results and a URL box.

    ``widget`` is the URL box (a file or variable name works there too, as on the
    magic's line); ``read()`` gives the chosen values followed by the box's words.
    """

    kind = "media"

    def __init__(self, spec: FieldSpec, field: MediaField) -> None:
        import ipywidgets as w

        self.spec = spec
        self.name = spec.name
        self.field = field
        self.items: list[Any] = []
        self._listeners: list[Callable[..., None]] = []
        many = "URLs, files or variable names" if field.many else "a URL, file or variable name"
        self.widget = w.Text(
            description=spec.name,
            placeholder=many,
            tooltip=spec.description or spec.name,
            style={"description_width": "150px"},
            layout={"width": "420px"},
        )
        self.widget.add_class(f"hiapi-field-{spec.name}")
        self.upload = w.FileUpload(
            accept=ACCEPT.get(field.kind, ACCEPT[None]),
            multiple=field.many,
            description="upload",
            layout=w.Layout(width="110px"),
        )
        self.upload.add_class("hiapi-media-upload")
        self.upload.add_class(f"hiapi-media-upload-{spec.name}")
        self.pick = w.ToggleButton(
            description="earlier results", icon="images", tooltip="results of this notebook to use"
        )
        self.pick.add_class("hiapi-media-pick")
        self.pick.add_class(f"hiapi-media-pick-{spec.name}")
        self.picker = w.HBox(layout=w.Layout(display="none", overflow="auto", margin="0 0 0 158px"))
        self.picker.add_class("hiapi-media-picker")
        self.picker.add_class(f"hiapi-media-picker-{spec.name}")
        self.chosen = w.HBox(layout=w.Layout(margin="0 0 0 158px", flex_flow="row wrap"))
        self.chosen.add_class("hiapi-media-chosen")
        self.chosen.add_class(f"hiapi-media-chosen-{spec.name}")
        self.error = w.HTML()
        self.row = w.VBox(
            [
                w.HBox(
                    [self.widget, self.upload, self.pick, self.error], layout=w.Layout(align_items="center")
                ),
                self.chosen,
                self.picker,
            ]
        )
        self.row.add_class(f"hiapi-media-{spec.name}")
        self.upload.observe(self._on_upload, names="value")
        self.pick.observe(self._on_pick, names="value")
        self.widget.observe(self._on_text, names="value")

    # --- the FieldControl interface the form uses ---------------------------------------------
    def observe(self, callback: Callable[..., None]) -> None:
        """``callback()`` on every change: typing, an upload, a pick, a removal."""
        self._listeners.append(callback)
        self.widget.observe(callback, names="value")

    def read(self) -> Any:
        """The values to send: chosen items, then the URL box's words (resolved as the
        magic resolves them); ``UNSET`` when empty; ``ValueError`` for a bad box."""
        values = list(self.items) + [
            inputs.resolve_word(word, user_namespace()) for word in self._typed_words()
        ]
        if not values:
            return UNSET
        return values if self.field.many or len(values) > 1 else values[0]

    def is_default(self, value: Any) -> bool:
        return value is UNSET or (isinstance(value, list) and not value)

    def set(self, value: Any) -> bool:
        """Show ``value``: text (URLs, names) in the box, anything else as chosen items."""
        values = list(value) if isinstance(value, list | tuple) else [value]
        values = [v for v in values if v is not UNSET and v is not None]
        texts = [v for v in values if isinstance(v, str)]
        self.items = [v for v in values if not isinstance(v, str)]
        self.widget.value = " ".join(texts) if all(" " not in t for t in texts) else json.dumps(texts)
        self._redraw()
        return True

    def words(self) -> str | list[str]:
        """How "Copy as magic" names what is chosen: variable names and file paths."""
        names = [self._word(v) for v in self.items] + self._typed_words()
        return names[0] if len(names) == 1 else names  # a list field takes one value as well

    # --- choosing -----------------------------------------------------------------------------
    def add(self, value: Any) -> None:
        """Choose ``value`` too (a single field: instead)."""
        if isinstance(value, Generation | GeneratedOutput):
            inputs.pick_output(self.field, value)  # MediaInputError when it has nothing this field takes
        if self.field.many:
            if self.field.max is not None and len(self.items) >= self.field.max:
                raise MediaInputError(
                    self.name, f"already has {len(self.items)}: remove one first", f"at most {self.field.max}"
                )
            self.items.append(value)
        else:
            self.items = [value]
            self.widget.value = ""
        self._redraw()

    def remove(self, index: int) -> None:
        del self.items[index]
        self._redraw()

    def _typed_words(self) -> list[str]:
        text = self.widget.value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                words = json.loads(text)
            except ValueError:
                raise ValueError(f"{self.name}: not a valid JSON list") from None
            if not isinstance(words, list) or not all(isinstance(x, str) for x in words):
                raise ValueError(f"{self.name} needs a list of URLs or names")
            return words
        return text.split()

    def _on_text(self, change: Bunch) -> None:
        if change["new"].strip() and self.items and not self.field.many:
            self.items = []  # a single field holds one value: what is typed replaces the choice
            self._redraw(notify=False)

    def _on_upload(self, change: Bunch) -> None:
        files = change["new"]
        if not files:
            return
        self.error.value = ""
        try:
            for entry in files:
                data = bytes(entry["content"])
                inputs.check_media(self.field, data, str(entry["name"]))
                self.add(keep_upload(str(entry["name"]), data))
        except (MediaInputError, OSError) as exc:
            self.error.value = error_html(str(exc))
        finally:
            self.upload.value = ()  # the same file can be chosen again

    def _on_pick(self, change: Bunch) -> None:
        import ipywidgets as w

        if not change["new"]:
            self.picker.layout.display = "none"
            return
        cards = []
        for generation in inputs.earlier_results(self.field):
            output = inputs.pick_output(self.field, generation)
            button = w.Button(
                description="use", tooltip=generation.task_id or "", layout=w.Layout(width="72px")
            )
            button.add_class("hiapi-media-pick-use")
            button.on_click(lambda _b, g=generation: self._use_picked(g))
            card = w.VBox([_preview(output, THUMB), button], layout=w.Layout(margin="2px"))
            card.add_class("hiapi-media-pick-item")
            cards.append(card)
        if not cards:
            cards = [w.HTML('<span style="font-size:12px">no earlier results of this kind yet</span>')]
        old, self.picker.children = self.picker.children, tuple(cards)
        _close(old)  # after they left the box: no view is left showing a closed model
        self.picker.layout.display = ""

    def _use_picked(self, generation: Generation) -> None:
        try:
            self.add(generation)
        except MediaInputError as exc:
            self.error.value = error_html(str(exc))
            return
        if not self.field.many:
            self.pick.value = False

    def _redraw(self, notify: bool = True) -> None:
        import ipywidgets as w

        chips = []
        for index, value in enumerate(self.items):
            remove = w.Button(description="×", tooltip="remove", layout=w.Layout(width="32px"))
            remove.add_class("hiapi-media-remove")
            remove.on_click(lambda _b, i=index: self.remove(i))
            label = w.HTML(
                f'<span style="font-size:11px" title="{esc(self._word(value))}">'
                f"{esc(excerpt(self._word(value), 18))}</span>"
            )
            chip = w.VBox([_preview(value, THUMB), w.HBox([label, remove])], layout=w.Layout(margin="2px"))
            chip.add_class("hiapi-media-item")
            chips.append(chip)
        old, self.chosen.children = self.chosen.children, tuple(chips)
        _close(old)
        if notify:
            for listener in self._listeners:
                listener()

    def _word(self, value: Any) -> str:
        return word_for(value)


# --- names, previews and uploads ------------------------------------------------------------


def word_for(value: Any) -> str:
    """The word the magic's line would use for ``value``: a variable's name, a file's path,
    else a URL."""
    if isinstance(value, Named):
        return value.name
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, str):
        return value
    namespace = user_namespace() or {}
    job = getattr(value, "job", None)
    for name, bound in namespace.items():
        if name.startswith("_"):
            continue
        if bound is value or (
            job is not None and getattr(bound, "job", None) is job and _is_generation(bound)
        ):
            return name
    if isinstance(value, Generation):
        output = next(iter(value.outputs), None)
        if output is None:
            return value.task_id or "result"
    elif isinstance(value, GeneratedOutput):
        output = value
    else:
        return str(inputs.label(value))
    return _relative(output.path) if output.path is not None else output.url


def _is_generation(value: Any) -> bool:
    return isinstance(value, Generation)


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def keep_upload(name: str, data: bytes) -> Path:
    """Keep an upload in ``hiapi-inputs/`` beside the notebook, under its own name (a
    different file of the same name gets its hash added): the path is what is sent, named
    in "Copy as magic", and found again by a re-run."""
    safe = _SAFE.sub("_", Path(name).name).lstrip(".") or "upload"
    folder = Path(UPLOADS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe
    if target.exists() and target.read_bytes() != data:
        target = folder / f"{target.stem}-{media.sha256(data)[:8]}{target.suffix}"
    if not target.exists():
        target.write_bytes(data)
    return target


def _preview(value: Any, px: int) -> DOMWidget:
    """A small picture of a value (an HTML label when there is none)."""
    import ipywidgets as w

    data = _bytes_of(value)
    mime = media.sniff(data) if data else None
    if data and mime is not None and media.kind_of(mime) == "image":
        small = media.thumbnail(data, px * 2)
        if small is not None or len(data) <= 256 * 1024:
            image = w.Image(
                value=small or data,
                format="jpeg" if small is not None else mime.split("/")[1],
                layout=w.Layout(max_width=f"{px}px", max_height=f"{px}px", object_fit="contain"),
            )
            image.add_class("hiapi-media-thumb")
            return image
    what = media.NAMES.get(mime, "") if mime else ""
    return w.HTML(
        f'<div class="hiapi-media-thumb" style="width:{px}px;height:{px // 2}px;font-size:11px;'
        f'border:1px solid #ccc;display:flex;align-items:center;justify-content:center">'
        f"{esc(what or 'link')}</div>"
    )


def _bytes_of(value: Any) -> bytes | None:
    """The bytes behind a chosen value, when they are here (never fetched)."""
    if isinstance(value, Named):
        return _bytes_of(value.value)
    if isinstance(value, Path):
        try:
            return value.read_bytes() if value.stat().st_size <= 64 * 2**20 else None
        except OSError:
            return None
    if isinstance(value, Generation):
        outputs = value.outputs
        picture = next(
            (o for o in outputs if o.type in inputs.IMAGE_OUTPUTS), outputs[0] if outputs else None
        )
        return picture.local_data() if picture is not None else None
    if isinstance(value, GeneratedOutput):
        return value.local_data()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return None


def _close(widgets: Iterable[Widget]) -> None:
    """Close widgets being replaced, and theirs, layouts and styles too: the kernel and the
    front end keep every open one."""
    for widget in widgets:
        close_all(widget)


# --- the form's side ---------------------------------------------------------------------------


Control: TypeAlias = "FieldControl | MediaControl"  # what the form holds for a catalogue field


def make_control(
    spec: FieldSpec, field: MediaField | None, plain: Callable[[FieldSpec], FieldControl]
) -> Control:
    """The control for a catalogue field: a ``MediaControl`` for a media field."""
    return MediaControl(spec, field) if field is not None else plain(spec)


def use_media(controls: Mapping[str, Control], model: str, value: Any, field: str | None = None) -> str:
    """Put ``value`` (a result, file, image...) in a media field of the form: ``field``, or
    the first that takes it. Returns the field's name; a field that cannot take it is one
    line (``RequestValidationError``)."""
    media_controls = {n: c for n, c in controls.items() if isinstance(c, MediaControl)}
    if field is not None:
        control = media_controls.get(field)
        if control is None:
            known = ", ".join(media_controls) or "none"
            raise RequestValidationError(
                f"{field} is not a media field of {model} (its media fields: {known})"
            )
        control.add(value)
        return field
    for name, control in media_controls.items():
        try:
            control.add(value)
        except MediaInputError:
            continue
        return name
    what = "media" if not media_controls else "input of this kind"
    raise RequestValidationError(
        f"{model} takes no {what}: choose a model that does (say gpt-image-2/image-to-image "
        "or seedance-2-0), then use it"
    )


def words_of(controls: Mapping[str, Control], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each media field's values as the words "Copy as magic" writes."""
    out = dict(data)
    for name, control in controls.items():
        if isinstance(control, MediaControl) and name in out:
            out[name] = control.words()
    return out


__all__ = ["Control", "MediaControl", "keep_upload", "make_control", "use_media", "word_for", "words_of"]
