"""``Generation``: what ``-o VAR``, ``generate()`` and ``submit()`` hand back.

A thin, friendly face on a runtime ``Job``: awaitable, ``.wait()``-able,
with the outputs as objects that can be read and saved, and a rich display
of its media (the same static bundle the cell shows).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from . import _loop
from .models import Task
from .runtime import Job, OutputFile
from .session import get_session
from .views import show_job, use_widgets
from .views.render import media_bundle, status_bundle
from .views.text import status_line


class GeneratedOutput:
    """One output: ``.url``, ``.type``, ``.path`` (local copy), ``.data()``, ``.save()``."""

    def __init__(self, file: OutputFile, job: Job) -> None:
        self._file = file
        self._job = job

    url = property(lambda self: self._file.url)
    type = property(lambda self: self._file.type)
    path = property(lambda self: self._file.path)
    content_type = property(lambda self: self._file.content_type)
    index = property(lambda self: self._file.index)
    expire_at = property(lambda self: self._file.output.expire_at)  # Unix seconds, when its URL dies
    sha256 = property(lambda self: self._file.sha256)  # of the local copy, once kept
    size = property(lambda self: self._file.size)  # bytes, once kept
    generation = property(lambda self: Generation(self._job))

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
        """Copy to ``path`` (a folder keeps the file's own name)."""
        target = Path(path)
        name = (
            self._file.path.name
            if self._file.path is not None
            else f"{self._job.task_id}-{self._file.index}-{self.type}{_ext(self)}"
        )
        if target.is_dir() or str(path).endswith(("/", "\\")):
            target = target / name
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

    task_id = property(lambda self: self._job.task_id)
    server = property(lambda self: self._job.server)  # the API base URL its task lives on
    status = property(lambda self: self._job.status)
    request = property(lambda self: self._job.request)
    model = property(lambda self: self._job.request.model)
    prompt = property(lambda self: self._job.request.prompt)
    cached = property(lambda self: self._job.cached)
    error = property(lambda self: self._job.error)
    done = property(lambda self: self._job.done)

    @property
    def task(self) -> Task | None:
        return self._job.task

    @property
    def outputs(self) -> list[GeneratedOutput]:
        return [GeneratedOutput(f, self._job) for f in self._job.files]

    def wait(self, timeout: float | None = None) -> Generation:
        """Block until done; raises ``TaskFailed`` / the error that ended it."""
        self._job.wait(timeout)
        return self

    def __await__(self):
        yield from self._job.__await__()
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

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._job.done:
            bundle = media_bundle(self._job, embed_limit=self.embed_limit, embed=self.embed)
            if bundle is not None:
                return bundle
        return status_bundle(self._job), {}

    def __repr__(self) -> str:
        return f"<Generation {status_line(self._job)}>"
