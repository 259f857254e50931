"""Media inputs: whatever a user hands a media field, as the request sends it and as the
journal records it.

HiAPI's URL fields take public http(s) URLs, and HiAPI's own tools send local files in
the same fields as base64 ``data:`` URIs. So a media field here takes:

- an http(s) URL, a ``data:`` URI or an ``asset://`` id: sent as written;
- a result (a ``Generation`` or one of its outputs): its URL while it lives and the
  result came from the server being called, otherwise its local copy inline; from a
  result with several outputs, the one of the kind the field wants;
- a file path (``str`` or ``Path``), ``bytes``, a PIL image or a numpy array (H×W×3 or
  H×W×4, uint8): sent inline. PIL and numpy are imported only when such a value comes.

``prepare`` does it for ``api.build_request``, the one place requests are checked, so the
magic, ``generate``, ``generate_many`` and the form all get it. Every bad value is one
line that names the field and the forms it takes, before anything is sent. Inline media
are recorded as references (``media.py``): content hash, source, name, size and a small
thumbnail file, never their bytes.
"""

from __future__ import annotations

import difflib
import io
import itertools
import mimetypes
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalog, media
from .catalog import MediaField
from .errors import HiAPIError, RequestValidationError, in_ipython
from .generation import GeneratedOutput, Generation
from .session import get_session

ACCEPTED = (
    "an http(s) URL, a data: URI, an asset:// id, a result (Generation or one of its outputs), "
    "a file path, bytes, a PIL image or a numpy array"
)
URL_MARGIN = 600  # a result's URL is sent only while it has this many seconds left to live
THUMB_PX = 64
THUMBS_DIR = "inputs"  # beside the journal: the history's small pictures of the inputs
# Output types that are pictures, best first, for a field that wants an image.
IMAGE_OUTPUTS = ("image", "first_frame", "last_frame", "thumbnail")
UPLOADS_FOLDER = "hiapi-inputs"  # where the form keeps uploads (``form.media.UPLOADS_DIR``)
NEAR_SCAN = 2000  # files looked at per folder for a near name: a huge folder is not read whole
SHOWN_WORD = 200  # characters of a word a message repeats; a longer one is no file name


class MediaInputError(RequestValidationError):
    """A media value that cannot be sent, in one line: the field, what is wrong, and what
    the field takes (``ACCEPTED`` unless said)."""

    def __init__(self, field: str, problem: str, takes: str = ACCEPTED) -> None:
        super().__init__(f"input.{field}: {problem}; it takes {takes}")
        self.field = field


@dataclass(frozen=True)
class Named:
    """A value and the word that named it on the magic's line or in the form (a notebook
    variable), so the record says where an input came from."""

    value: Any
    name: str


def is_sent_as_written(text: str) -> bool:
    return text.startswith(media.SCHEMES)


def resolve_word(word: str, namespace: Mapping[str, Any] | None, folder: Path | None = None) -> Any:
    """A word of the magic's line (or the form's URL box) for a media field: a URL, data:
    URI or asset id as written; else a notebook variable; else a file in ``folder``; else
    the word itself, which ``prepare`` then refuses. The variable comes first: ``fox`` is
    the result bound to ``fox``, even when a file named ``fox`` lies beside the notebook."""
    word = word.strip()
    if not word or is_sent_as_written(word):
        return word
    if namespace is not None and word.isidentifier() and word in namespace:
        return Named(namespace[word], word)
    path = expanded(word)
    candidate = path if folder is None or path.is_absolute() else folder / path
    return candidate if _there(candidate, "file") else word


def resolve_words(
    model: str | None,
    fields: Mapping[str, Any],
    namespace: Mapping[str, Any] | None,
    folder: Path | None = None,
) -> dict[str, Any]:
    """``fields`` with each word of a media field resolved (``resolve_word``); others as given."""
    out = dict(fields)
    for name, value in fields.items():
        if catalog.media_field(model, name) is None:
            continue
        if isinstance(value, str):
            out[name] = resolve_word(value, namespace, folder)
        elif isinstance(value, list):
            out[name] = [resolve_word(v, namespace, folder) if isinstance(v, str) else v for v in value]
    return out


# --- preparing a request --------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    wire: str  # what is sent
    ref: dict[str, Any] | None  # what the journal keeps instead (None: the wire value itself)


class _Context:
    """What one ``prepare`` needs to know about the session, looked up once."""

    def __init__(self, force: bool) -> None:
        session = get_session()
        self.force = force
        self.limit_mb = float(session.settings.max_input_mb)
        self.server = session.client.base_url
        journal = session.journal
        self.thumbs = journal.path.parent / THUMBS_DIR if journal is not None else None
        self.now = time.time()


def prepare(
    model: str, input: Mapping[str, Any], *, force: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the input to send, the references of its inline media by field). Fields that take
    no media pass unchanged; a bad media value raises ``MediaInputError``."""
    wire = dict(input)
    refs: dict[str, Any] = {}
    context: _Context | None = None
    for name, value in input.items():
        field = catalog.media_field(model, name)
        if field is None or value is None:
            continue
        items = _items(field, value)
        if context is None:
            context = _Context(force)
        done = [_one(field, item, context) for item in items]
        if field.many:
            wire[name] = [d.wire for d in done]
            if any(d.ref for d in done):
                refs[name] = [d.ref or d.wire for d in done]
        else:
            wire[name] = done[0].wire
            if done[0].ref:
                refs[name] = done[0].ref
    return wire, refs


def _items(field: MediaField, value: Any) -> list[Any]:
    """The values given for a field: a list field takes one value or a list."""
    if isinstance(value, Named) and isinstance(value.value, list | tuple):
        value = [Named(v, f"{value.name}[{i}]") for i, v in enumerate(value.value)]
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not field.many:
        if len(items) != 1:
            raise MediaInputError(field.name, f"got a list of {len(items)}", "one media value")
        return items
    if field.max is not None and len(items) > field.max:
        raise MediaInputError(
            field.name, f"got {len(items)} items", f"at most {field.max} item{'s' if field.max != 1 else ''}"
        )
    return items


def _one(field: MediaField, value: Any, context: _Context, source: str | None = None) -> _Item:
    if isinstance(value, Named):  # the record names it as the notebook does
        item = _one(field, value.value, context, source=f"variable {value.name}")
        return _Item(item.wire, {**item.ref, "name": value.name} if item.ref else None)
    if isinstance(value, str):
        if value.startswith(("http://", "https://", "asset://")):
            return _Item(value, None)
        if value.startswith("data:"):
            try:
                _declared, data = media.parse_data_uri(value)
            except ValueError as exc:
                raise MediaInputError(field.name, f"its data: URI is not usable ({exc})") from None
            mime = _check(field, data, "the data: URI", context.limit_mb)
            return _Item(value, _ref(data, mime, source or "data: URI", "data URI", "data", context))
        path = expanded(value)
        if not _there(path):
            if context.force:
                return _Item(value, None)  # --force: sent as written; the server decides
            raise MediaInputError(field.name, missing_file(value))
        return _file(field, path, value, context, source)
    if isinstance(value, os.PathLike):
        return _file(field, Path(value), os.fspath(value), context, source)
    if isinstance(value, Generation | GeneratedOutput):
        return _result(field, value, context, source)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        mime = _check(field, data, f"the bytes ({_mb(len(data))})", context.limit_mb)
        return _inline(data, mime, source or "bytes", "bytes", context)
    module = type(value).__module__ or ""
    if module.startswith("PIL.") and hasattr(value, "save"):
        w, h = getattr(value, "size", (0, 0))
        _check_pixels(field, int(w) * int(h) * len(value.getbands()), "the PIL image", context.limit_mb)
        data = _pil_png(value)
        mime = _check(field, data, "the PIL image", context.limit_mb)
        size = "×".join(map(str, getattr(value, "size", ())))
        return _inline(data, mime, source or f"PIL image {size} {value.mode}", "PIL image", context)
    if module.split(".")[0] == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype"):
        data = _array_png(field, value, context.limit_mb)
        mime = _check(field, data, "the numpy array", context.limit_mb)
        shape = "×".join(map(str, value.shape))
        return _inline(data, mime, source or f"numpy array {shape}", "numpy array", context)
    raise MediaInputError(field.name, f"a {type(value).__name__} is not a media value")


def missing_file(word: str) -> str:
    """What to say of a word that names nothing: where the file was looked for, and a near
    name if one is there (``hiapi-inputs/my_photo.png`` for ``my_photo.jpg``)."""
    shown = word if len(word) <= SHOWN_WORD else word[: SHOWN_WORD - 1] + "…"
    problem = f"{shown!r} is not a URL, a file or a notebook variable"
    if len(word) > SHOWN_WORD or "\x00" in word:
        return problem  # no file has such a name: nothing to look for
    path = expanded(word)
    looked = path.parent if path.is_absolute() else Path.cwd() / path.parent
    try:
        where = looked.resolve()
    except (OSError, RuntimeError, ValueError):
        where = looked
    near = near_file(path)
    hint = f": did you mean {near!r}?" if near else ""
    return f"{problem} (no file {path.name!r} in {where}){hint}"


def _there(path: Path, what: str = "any") -> bool:
    """Whether ``path`` names a file (or anything); a name no file system takes (too long,
    a NUL in it) names nothing, rather than raising."""
    try:
        return path.is_file() if what == "file" else path.exists()
    except (OSError, ValueError):
        return False


def expanded(word: str) -> Path:
    """``~`` and ``~user`` expanded where they name a home folder; the word as written otherwise."""
    try:
        return Path(word).expanduser()
    except RuntimeError:  # an unknown user, or no home folder at all
        return Path(word)


def near_file(path: Path) -> str | None:
    """A media file whose name is close to ``path``'s, in its folder or in the form's uploads
    folder beside it, as the user would write it (relative to the notebook's folder when
    inside it). The same name with another extension comes first."""
    folder = path.parent if path.is_absolute() else Path.cwd() / path.parent
    wanted = path.name.lower()
    stem = Path(wanted).stem
    names: dict[str, Path] = {}
    for place in (folder, folder / UPLOADS_FOLDER, Path.cwd() / UPLOADS_FOLDER):
        try:
            entries = list(itertools.islice(place.iterdir(), NEAR_SCAN))
        except OSError:
            continue
        for entry in entries:
            kind = (mimetypes.guess_type(entry.name)[0] or "").split("/")[0]
            if kind in ("image", "video", "audio") and not entry.name.startswith("."):
                names.setdefault(entry.name.lower(), entry)
    same = [name for name in names if Path(name).stem == stem]
    close = same or difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.75)
    if not close:
        return None
    found = names[close[0]]
    try:
        return found.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(found)


def _file(field: MediaField, path: Path, given: str, context: _Context, source: str | None) -> _Item:
    data = _read_regular(field, path, given, int(context.limit_mb * 2**20), context.limit_mb)
    mime = _check(field, data, given, context.limit_mb)
    label = f"file {given}" if source is None else f"{source}: file {given}"
    return _inline(data, mime, label, path.name, context)


def _read_regular(field: MediaField, path: Path, given: str, limit: int, limit_mb: float) -> bytes:
    """The bytes of a regular file (links followed), at most ``limit`` + 1 read: a FIFO
    would block forever and ``/dev/zero`` (its size reads 0) fill memory, so anything that
    is not a regular file is refused before a byte is read. Opened without blocking and
    checked again once open, so a file swapped meanwhile is caught too."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        if path.is_dir():
            raise MediaInputError(field.name, f"{given} is a folder, not a file") from None
        raise MediaInputError(field.name, f"cannot read {given} ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise MediaInputError(field.name, f"{given} is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise MediaInputError(field.name, f"{given} is {_kind(info.st_mode)}, not a regular file")
        _check_size(field, info.st_size, given, limit_mb)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with open(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise MediaInputError(field.name, f"cannot read {given} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    _check_size(field, len(data), given, limit_mb)  # grew since: refused at limit + 1
    return data


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for the one-line refusal."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _result(
    field: MediaField, value: Generation | GeneratedOutput, context: _Context, source: str | None
) -> _Item:
    generation = value.generation if isinstance(value, GeneratedOutput) else value
    who = generation.task_id or "a result"
    if not generation.done:
        try:
            generation.wait()  # the result of a --no-wait cell: its live bar is on screen meanwhile
        except HiAPIError:
            pass
    if not generation.job.succeeded:
        raise MediaInputError(
            field.name, f"the result {who} did not succeed ({generation.status}): it has no output"
        )
    output = value if isinstance(value, GeneratedOutput) else _pick(field, generation)
    label = f"result {who} ({output.type} output {output.index})"
    label = f"{source}: {label}" if source else label
    name = f"{who}/{output.index}-{output.type}"
    if (
        output.url.startswith(("http://", "https://"))
        and generation.server == context.server
        and (output.expire_at is None or output.expire_at - context.now > URL_MARGIN)
    ):
        digest, size = output.sha256, output.size
        if digest is None:  # kept in memory only (no journal): hash the bytes here
            data = output.local_data()
            digest, size = (media.sha256(data), len(data)) if data is not None else (None, None)
        key = f"sha256:{digest}" if digest else f"url:{output.url}"
        ref = {media.REF: key, "source": label, "name": name, "bytes": size, "sent": "url", "url": output.url}
        if output.content_type:
            ref["type"] = output.content_type
        return _Item(output.url, ref)
    data = output.local_data()
    if data is None:
        try:
            data = output.data()  # not kept here: fetched while its URL still answers
        except HiAPIError as exc:
            raise MediaInputError(
                field.name, f"the {output.type} of {who} has no local copy and its URL is gone ({exc})"
            ) from None
    mime = _check(field, data, f"the {output.type} of {who}", context.limit_mb)
    return _inline(data, mime, label, name, context)


def _pick(field: MediaField, generation: Generation) -> GeneratedOutput:
    """The output of the kind the field wants: a video's first frame for an image field."""
    outputs = generation.outputs
    if field.kind == "image":
        ranked = sorted(
            (o for o in outputs if o.type in IMAGE_OUTPUTS or media.kind_of(o.content_type) == "image"),
            key=lambda o: IMAGE_OUTPUTS.index(o.type) if o.type in IMAGE_OUTPUTS else len(IMAGE_OUTPUTS),
        )
    elif field.kind in ("video", "audio"):
        ranked = [o for o in outputs if o.type == field.kind or media.kind_of(o.content_type) == field.kind]
    else:
        ranked = list(outputs)
    if not ranked:
        have = ", ".join(sorted({o.type for o in outputs})) or "none"
        raise MediaInputError(
            field.name,
            f"the result {generation.task_id} has no {field.kind or 'media'} output (it has {have})",
            media.type_names(field.kind),
        )
    return ranked[0]


# --- checks and encodings --------------------------------------------------------------------


def _check_size(field: MediaField, size: int, what: str, limit_mb: float) -> None:
    if size > limit_mb * 2**20:
        raise MediaInputError(
            field.name,
            f"{what} is {_mb(size)}, over the {limit_mb:g} MB limit per input ({_raise_limit()} raises it)",
            f"media up to {limit_mb:g} MB each, or an http(s) URL the server fetches",
        )


def _raise_limit() -> str:
    return "%hiapi config max_input_mb=N" if in_ipython() else "HIAPI_MAX_INPUT_MB=N"


def _check(field: MediaField, data: bytes, what: str, limit_mb: float) -> str:
    """The sniffed media type, if the field takes it; else one line saying what it takes."""
    _check_size(field, len(data), what, limit_mb)
    mime = media.sniff(data)
    kind = media.kind_of(mime)
    if mime is None or kind is None:
        raise MediaInputError(
            field.name, f"{what} is not a media file this package knows", media.type_names(field.kind)
        )
    if field.kind is not None and kind != field.kind:
        raise MediaInputError(
            field.name, f"{what} is a {media.NAMES[mime]} {kind}", media.type_names(field.kind)
        )
    damage = media.image_problem(data, mime)
    if damage:
        raise MediaInputError(field.name, f"{what} is {damage}", media.type_names(field.kind))
    return mime


def check_media(field: MediaField, data: bytes, what: str) -> str:
    """Check bytes for a field before keeping them (the form's upload): their media type,
    or ``MediaInputError`` (wrong kind, over the size limit)."""
    return _check(field, data, what, float(get_session().settings.max_input_mb))


def pick_output(field: MediaField, value: Generation | GeneratedOutput) -> GeneratedOutput:
    """The output of a result that ``field`` would get; ``MediaInputError`` when none fits."""
    return value if isinstance(value, GeneratedOutput) else _pick(field, value)


def _inline(data: bytes, mime: str, source: str, name: str, context: _Context) -> _Item:
    return _Item(media.data_uri(data, mime), _ref(data, mime, source, name, "data", context))


def _ref(data: bytes, mime: str, source: str, name: str, sent: str, context: _Context) -> dict[str, Any]:
    digest = media.sha256(data)
    ref = {media.REF: f"sha256:{digest}", "source": source, "name": name, "bytes": len(data)}
    ref.update({"type": mime, "sent": sent})
    thumb = _thumbnail(digest, data, mime, context)
    if thumb:
        ref["thumb"] = thumb
    return ref


def _thumbnail(digest: str, data: bytes, mime: str, context: _Context) -> str | None:
    """A small picture of an image input beside the journal (its path relative to the
    journal's folder), so the history shows what went in without holding the bytes."""
    if context.thumbs is None or media.kind_of(mime) != "image":
        return None
    target = context.thumbs / f"{digest[:24]}.jpg"
    if not target.exists():
        small = media.thumbnail(data, THUMB_PX)
        if small is None:
            return None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(small)
        except OSError:
            return None
    return f"{THUMBS_DIR}/{target.name}"


def _pil_png(image: Any) -> bytes:
    out = io.BytesIO()
    if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    image.save(out, format="PNG")
    return out.getvalue()


def _array_png(field: MediaField, array: Any, limit_mb: float) -> bytes:
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != 3 or shape[2] not in (3, 4) or str(array.dtype) != "uint8" or 0 in shape:
        raise MediaInputError(
            field.name,
            f"a numpy array of shape {'×'.join(map(str, shape)) or '()'} {array.dtype} is no picture",
            "numpy arrays of H×W×3 or H×W×4 uint8 (RGB or RGBA), or " + ACCEPTED,
        )
    _check_pixels(field, int(shape[0]) * int(shape[1]) * int(shape[2]), "the numpy array", limit_mb)
    return media.png(array.tobytes(), shape[1], shape[0], shape[2])


PNG_SHRINK = 4  # a PNG holds a picture in at least a quarter of its pixel bytes, all but flat ones


def _check_pixels(field: MediaField, pixel_bytes: int, what: str, limit_mb: float) -> None:
    """Refuse, from its size alone, a picture whose PNG would all but surely be over the limit:
    encoding a 20000×20000 array first took 50 s and 7 GB before the size check said no."""
    if pixel_bytes > PNG_SHRINK * limit_mb * 2**20:
        raise MediaInputError(
            field.name,
            f"{what} holds {_mb(pixel_bytes)} of pixels, far over the {limit_mb:g} MB limit per input "
            "once encoded (%hiapi config max_input_mb=N raises it)",
            f"media up to {limit_mb:g} MB each; shrink the picture first",
        )


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 / 10 else f"{size / 1024:.0f} KB"


def label(value: Any) -> Any:
    """A short stand-in for a media value in a grid's labels: the word, file or task id."""
    if isinstance(value, Named):
        return value.name
    if media.is_ref(value):
        return media.ref_label(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Generation):
        return value.task_id or "result"
    if isinstance(value, GeneratedOutput):
        return f"{value.generation.task_id}/{value.type}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"bytes ({_mb(len(value))})"
    module = type(value).__module__ or ""
    if module.startswith("PIL.") or module.split(".")[0] == "numpy":
        return type(value).__name__
    if isinstance(value, str) and value.startswith("data:"):
        return value[:24] + "…"
    if isinstance(value, list):
        return [label(v) for v in value]
    return value


__all__ = [
    "ACCEPTED",
    "MediaInputError",
    "Named",
    "check_media",
    "label",
    "missing_file",
    "pick_output",
    "prepare",
    "resolve_word",
    "resolve_words",
]
