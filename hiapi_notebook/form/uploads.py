"""Uploads in the form's media fields, as both ipywidgets give them.

ipywidgets 8's ``FileUpload.value`` is a tuple of dicts (``name``, ``type``, ``size``,
``content``, ``last_modified``); 7.7's (Google Colab's) is a read-only dict name ->
``{"metadata": {...}, "content": bytes}``, rebuilt whenever its ``_counter`` moves. The
button's label counts ``len(value)`` in 8 and ``_counter`` in 7, so after an upload is
kept the count is set to what the field holds from uploads, not reset to 0.

An upload is kept in ``hiapi-inputs/`` beside the notebook: "Copy as magic" names its
path and a re-run finds it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import media

UPLOADS_DIR = "hiapi-inputs"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EPOCH = datetime.datetime.fromtimestamp(0, tz=datetime.UTC)

# VS Code's notebooks never pass a FileUpload's value to the kernel (vscode-jupyter#13469).
VSCODE_NOTE = (
    "VS Code does not pass uploads to the kernel (vscode-jupyter issue 13469): "
    "type a file's path or a variable's name"
)


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """(name, content) of each file in a ``FileUpload.value`` of ipywidgets 7 or 8;
    entries of any other shape are left out (what a front end sends is not trusted)."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):  # ipywidgets 7: name -> {"metadata": {...}, "content": ...}
        for key, entry in value.items():
            if isinstance(entry, Mapping):
                meta = entry.get("metadata")
                name = meta.get("name") if isinstance(meta, Mapping) else None
                pairs.append((name or key, entry.get("content")))
    elif isinstance(value, list | tuple):  # ipywidgets 8: ({"name": ..., "content": ...}, ...)
        pairs = [(e.get("name"), e.get("content")) for e in value if isinstance(e, Mapping)]
    return [
        (name if isinstance(name, str) and name else "upload", bytes(content))
        for name, content in pairs
        if isinstance(content, bytes | bytearray | memoryview)
    ]


def show_count(upload: Any, names: list[str]) -> None:
    """Make ``upload``'s label count ``names`` (the uploads the field holds) and leave
    it ready for the same file again. The caller ignores the change this makes."""
    if hasattr(upload, "_counter"):  # ipywidgets 7: the label shows _counter; value is read-only
        upload._counter = len(names)  # rebuilds value from the last upload ...
        upload.set_trait("value", {})  # ... so empty it: the same file again is a change
        return
    upload.value = tuple(  # 8: the label shows len(value); the same file again differs (content)
        {"name": name, "type": "", "size": 0, "content": memoryview(b""), "last_modified": _EPOCH}
        for name in names
    )


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
