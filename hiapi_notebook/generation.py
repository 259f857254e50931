"""``Generation``: what ``-o VAR``, ``generate()`` and ``submit()`` hand back.

A thin, friendly face on a runtime ``Job``: awaitable, ``.wait()``-able,
with the outputs as objects that can be read and saved, and a rich display
of its media (the same static bundle the cell shows).
"""

from __future__ import annotations

import shutil
from collections.abc import Container, Generator
from pathlib import Path
from typing import Any

from . import _loop
from .errors import RequestValidationError
from .models import Request, Task
from .records import inside, safe_name, task_folder
from .runtime import Job, OutputFile
from .session import get_session
from .views import late, show_job, use_widgets
from .views.render import media_bundle, status_bundle
from .views.text import status_line


class GeneratedOutput:
    """One output: ``.url``, ``.type``, ``.path`` (local copy), ``.data()``, ``.save()``."""

    def __init__(self, file: OutputFile, job: Job) -> None:
        self._file = file
        self._job = job

    @property
    def url(self) -> str:
        return self._file.url

    @property
    def type(self) -> str:
        return self._file.type

    @property
    def path(self) -> Path | None:
        return self._file.path

    @property
    def content_type(self) -> str | None:
        return self._file.content_type

    @property
    def index(self) -> int:
        return self._file.index

    @property
    def expire_at(self) -> int | None:
        """Unix seconds, when its URL dies."""
        return self._file.output.expire_at

    @property
    def sha256(self) -> str | None:
        """Of the local copy, once kept."""
        return self._file.sha256

    @property
    def size(self) -> int | None:
        """Bytes, once kept."""
        return self._file.size

    @property
    def generation(self) -> Generation:
        return Generation(self._job)

    def local_data(self) -> bytes | None:
        """The bytes kept here (local copy or memory), or None: never fetched."""
        return self._file.read()

    def data(self) -> bytes:
        """The bytes: the local copy when there is one, else fetched from the URL."""
        data = self._file.read()
        if data is None:
            client = get_session().client
            data, ctype = _loop.run_sync(client.fetch(self.url))
            self._file.data, self._file.content_type = data, self._file.content_type or ctype
        return data

    def save(self, path: str | Path) -> Path:
        """Copy to ``path``; into a folder under a name of its own (task id, index, type),
        so the results of many tasks saved together never overwrite each other.

        The id and the type come from the server: they become one safe file name, and the
        file is written only once it is known to land inside that folder."""
        target = Path(path)
        ext = self._file.path.suffix if self._file.path is not None else _ext(self)
        name = f"{task_folder(self._job.task_id)}-{self._file.index}-{safe_name(self.type)}{ext}"
        if target.is_dir() or str(path).endswith(("/", "\\")):
            folder = target
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / name
            landed = inside(folder, target)
            if landed is None or landed.parent != folder.resolve():
                raise RequestValidationError(f"refusing to save {name!r}: it would land outside {folder}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if self._file.path is not None and self._file.path.exists():
            shutil.copyfile(self._file.path, target)
        else:
            target.write_bytes(self.data())
        return target

    def __repr__(self) -> str:
        return f"<GeneratedOutput {self.type} {self.path or self.url}>"


def _ext(out: GeneratedOutput) -> str:
    import mimetypes

    return mimetypes.guess_extension(out.content_type or "") or ""


class Generation:
    """A submitted request: live until done, then its task and outputs."""

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def job(self) -> Job:
        return self._job

    @property
    def task_id(self) -> str | None:
        return self._job.task_id

    @property
    def server(self) -> str | None:
        """The API base URL its task lives on."""
        return self._job.server

    @property
    def status(self) -> str:
        return self._job.status

    @property
    def request(self) -> Request:
        return self._job.request

    @property
    def model(self) -> str:
        return self._job.request.model

    @property
    def prompt(self) -> str:
        return self._job.request.prompt

    @property
    def cached(self) -> bool:
        return self._job.cached

    @property
    def error(self) -> BaseException | None:
        return self._job.error

    @property
    def done(self) -> bool:
        return self._job.done

    @property
    def task(self) -> Task | None:
        return self._job.task

    @property
    def outputs(self) -> list[GeneratedOutput]:
        return [GeneratedOutput(f, self._job) for f in self._job.files]

    def wait(self, timeout: float | None = None) -> Generation:
        """Block until done; raises ``TaskFailed`` / the error that ended it."""
        try:
            self._job.wait(timeout)
        finally:
            late.resend_ended()  # a run nobody watches: late results into the saved notebook
        return self

    def __await__(self) -> Generator[Any, None, Generation]:
        try:
            yield from self._job.__await__()
        finally:
            late.resend_ended()
        return self

    def save(self, folder: str | Path) -> list[Path]:
        """Copy every output into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return [o.save(folder) for o in self.outputs]

    @property
    def embed_limit(self) -> int:
        """With ``embed="full"``, media up to this size go into the saved notebook whole
        (``%hiapi config embed_limit=``)."""
        return int(get_session().settings.embed_limit)

    @property
    def embed(self) -> str:
        """What the saved notebook keeps of the media: ``preview`` (linked to the local
        copies), ``full`` or ``none`` (``%hiapi config embed=``)."""
        return str(get_session().settings.embed)

    def _ipython_display_(self) -> None:
        """Shown in a cell: the result once done; while it runs, a live bar that follows it
        here too (never a frozen one), in a notebook."""
        from IPython.display import display

        if not self._job.done and use_widgets():
            show_job(self._job, embed_limit=self.embed_limit, embed=self.embed)
            return
        data, metadata = self._repr_mimebundle_()
        display(data, metadata=metadata, raw=True)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._job.done:
            bundle = media_bundle(self._job, embed_limit=self.embed_limit, embed=self.embed)
            if bundle is not None:
                return bundle
        return status_bundle(self._job), {}

    def __repr__(self) -> str:
        return f"<Generation {status_line(self._job)}>"
