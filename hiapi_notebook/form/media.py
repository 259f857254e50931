"""The form's media fields (``input_urls``, ``first_frame_url``, ...): what is chosen,
shown as thumbnails (each with ×), and three ways to choose: an upload, a picker of
earlier results (``picker.py``), and a URL box that also takes a file or variable name.

An upload is kept in ``hiapi-inputs/`` beside the notebook (``uploads.py``); a picked
result is named by the notebook variable that holds it, else by its local copy. What the
control shows is what is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .. import inputs
from ..catalog import FieldSpec, MediaField, ModelSpec
from ..errors import RequestValidationError
from ..generation import GeneratedOutput, Generation
from ..inputs import MediaInputError, Named
from ..views import frontend
from ..views.text import esc
from .fields import UNSET, FieldControl, error_html, route_note, tooltip
from .picker import Picker
from .previews import THUMB, close_all, preview
from .uploads import VSCODE_NOTE, keep_upload, show_count, uploaded_files

if TYPE_CHECKING:
    from traitlets.utils.bunch import Bunch

ACCEPT = {"image": "image/*", "video": "video/*", "audio": "audio/*", None: "image/*,video/*,audio/*"}
CHIP_PX = 120  # a chip's width: its label wraps there rather than being cut


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
    ``note`` says what the form knows about the field: which route it belongs to,
    and in VS Code why there is no upload.
    """

    kind = "media"

    def __init__(self, spec: FieldSpec, field: MediaField, note: str | None = None) -> None:
        import ipywidgets as w

        self.spec = spec
        self.name = spec.name
        self.field = field
        self.items: list[Any] = []
        self.uploads: list[Path] = []  # what the upload button counts
        self._listeners: list[Callable[..., None]] = []
        self._own_change = False  # the upload's value set here, not by a user
        many = "URLs, files or variable names" if field.many else "a URL, file or variable name"
        self.widget = w.Text(
            description=spec.name,
            placeholder=many,
            style={"description_width": "150px"},
            **tooltip(spec.description or spec.name),
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
            description="earlier results", icon="images", tooltip="earlier results to use: click one"
        )
        self.pick.add_class("hiapi-media-pick")
        self.pick.add_class(f"hiapi-media-pick-{spec.name}")
        self.picker_view = Picker(field, spec.name, self._use_picked)
        self.picker = self.picker_view.grid  # the cards
        self.chosen = w.HBox(layout=w.Layout(margin="0 0 0 158px", flex_flow="row wrap"))
        self.chosen.add_class("hiapi-media-chosen")
        self.chosen.add_class(f"hiapi-media-chosen-{spec.name}")
        self.error = w.HTML()
        notes = [note] if note else []
        if frontend.detect() == "vscode":
            self.upload.layout.display = "none"  # it would look like it worked, and send nothing
            notes.append(VSCODE_NOTE)
        self.note = w.HTML(
            "".join(f'<div style="font-size:12px;opacity:.8">{esc(n)}</div>' for n in notes),
            layout=w.Layout(margin="0 0 0 158px", display="" if notes else "none"),
        )
        self.note.add_class("hiapi-media-note")
        self.note.add_class(f"hiapi-media-note-{spec.name}")
        self.row = w.VBox(
            [
                w.HBox(
                    [self.widget, self.upload, self.pick, self.error], layout=w.Layout(align_items="center")
                ),
                self.note,
                self.chosen,
                self.picker_view.box,
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
        if self._own_change:
            return
        files = uploaded_files(change["new"])  # ipywidgets 7 and 8 give different shapes
        if not files:
            return
        self.error.value = ""
        try:
            for name, data in files:
                inputs.check_media(self.field, data, name)
                path = keep_upload(name, data)
                self.add(path)
                self.uploads.append(path)
        except (MediaInputError, OSError) as exc:
            self.error.value = error_html(str(exc))
        finally:
            self._count_uploads(force=True)

    def _count_uploads(self, force: bool = False) -> None:
        """The upload button counts the uploads this field holds (not 0 after each)."""
        left = list(self.items)  # the same file chosen twice counts twice, removed once once
        kept = []
        for path in self.uploads:
            if path in left:
                left.remove(path)
                kept.append(path)
        if kept == self.uploads and not force:
            return
        self.uploads = kept
        self._own_change = True
        try:
            show_count(self.upload, [p.name for p in self.uploads])
        finally:
            self._own_change = False

    def _on_pick(self, change: Bunch) -> None:
        if change["new"]:
            self.picker_view.open()
        else:
            self.picker_view.close()

    def _use_picked(self, generation: Generation) -> None:
        self.error.value = ""
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
            remove = w.Button(description="×", tooltip="remove", layout=w.Layout(width="32px", flex="none"))
            remove.add_class("hiapi-media-remove")
            remove.on_click(lambda _b, i=index: self.remove(i))
            word = self._word(value)
            # the whole word, wrapped within the chip: a path's end is what tells files apart
            label = w.HTML(
                f'<div class="hiapi-media-label" title="{esc(word)}" style="font-size:11px;'
                f'line-height:1.3;white-space:normal;overflow-wrap:anywhere">{esc(word)}</div>',
                layout=w.Layout(width="100%"),
            )
            chip = w.VBox(
                [w.HBox([preview(value, THUMB), remove], layout=w.Layout(align_items="flex-start")), label],
                layout=w.Layout(margin="2px", width=f"{CHIP_PX}px", overflow="visible"),
            )
            chip.add_class("hiapi-media-item")
            chips.append(chip)
        old, self.chosen.children = self.chosen.children, tuple(chips)
        close_all(old)  # after they left the box: no view is left showing a closed model
        if self.uploads:
            self._count_uploads()  # an uploaded file may have been removed
        if notify:
            for listener in self._listeners:
                listener()

    def _word(self, value: Any) -> str:
        return word_for(value)


# --- names ------------------------------------------------------------


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


# --- the form's side ---------------------------------------------------------------------------


Control: TypeAlias = "FieldControl | MediaControl"  # what the form holds for a catalogue field


def make_control(
    spec: FieldSpec,
    field: MediaField | None,
    plain: Callable[[FieldSpec], FieldControl],
    model: ModelSpec | None = None,
) -> Control:
    """The control for a catalogue field: a ``MediaControl`` for a media field (saying
    which route it is for, when ``model`` has another field for the same on another)."""
    if field is None:
        return plain(spec)
    return MediaControl(spec, field, route_note(model, spec.name) if model is not None else None)


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


__all__ = ["Control", "MediaControl", "make_control", "use_media", "word_for", "words_of"]
