"""A crafted ``.hiapi/`` folder (say from a cloned repository): the paths its journal names
are read only inside the folder they belong to, so ``%hiapi history`` and a re-run never
put another file's bytes into the notebook."""

from __future__ import annotations

import base64
import os

import pytest
from hostile import tiny_png

from hiapi_notebook.api import generate
from hiapi_notebook.models import Task
from hiapi_notebook.views.history import HistoryView

IMAGE = "gpt-image-2/text-to-image"
EDIT = "gpt-image-2/image-to-image"


@pytest.fixture
def secrets(tmp_path):
    """Files outside the notebook's folders that a crafted journal points at: a PNG and a
    JPEG (media, so a reader that trusted the path would embed them), and a link to one."""
    outside = tmp_path.parent / f"{tmp_path.name}-secrets"
    outside.mkdir()
    png = outside / "secret.png"
    png.write_bytes(tiny_png(5, 3))
    jpeg = outside / "secret.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"SECRET-JPEG-BYTES" * 8 + b"\xff\xd9")
    return png, jpeg


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def crafted_row(session, png, jpeg):
    """A journal row whose output path and input thumbnail climb out of their folders."""
    journal = session.journal
    thumb = os.path.relpath(jpeg, journal.path.parent)  # ../../…/secret.jpg from the journal's folder
    ref = {"$media": "sha256:" + "ab" * 32, "source": "file a.png", "name": "a.png", "thumb": thumb}
    rec, _ = journal.claim(EDIT, {"prompt": "crafted", "input_urls": [ref]}, server=session.client.base_url)
    journal.set_task_id(rec.id, "tk-crafted")
    task = Task.from_dict(
        {
            "taskId": "tk-crafted",
            "status": "success",
            "output": [{"url": "https://cdn.example/x.png", "type": "image", "expireAt": 1}],
        }
    )
    journal.record_result(rec.id, task)
    climbing = os.path.relpath(png)  # relative to the notebook's folder: ../…/secret.png
    journal.record_files(rec.id, [{"index": 0, "path": climbing, "sha256": "cd" * 32, "bytes": 99}])
    return journal.get(rec.id)


def test_history_embeds_no_file_outside_the_journals_folders(session, secrets):
    png, jpeg = secrets
    row = crafted_row(session, png, jpeg)
    assert row.files[0]["path"].startswith("..")
    for embed in ("full", "preview"):
        html = HistoryView(
            session.journal.history(10),
            folder=session.journal.path.parent,
            outputs=session.outputs_dir,
            embed=embed,
        )._repr_html_()
        assert b64(png.read_bytes()) not in html and b64(jpeg.read_bytes()) not in html
        assert "secret" not in html
    # A link inside the outputs folder that leads out is not followed either.
    (session.outputs_dir / "tk-linked").mkdir(parents=True)
    os.symlink(png, session.outputs_dir / "tk-linked" / "0-image.png")
    session.journal.record_files(row.id, [{"index": 0, "path": "hiapi-outputs/tk-linked/0-image.png"}])
    html = HistoryView(session.journal.history(10), outputs=session.outputs_dir, embed="full")._repr_html_()
    assert b64(png.read_bytes()) not in html


def test_the_history_magic_and_a_rerun_trust_no_climbing_path(ip, secrets):
    from hiapi_notebook.session import get_session

    png, jpeg = secrets
    session = get_session()
    crafted_row(session, png, jpeg)
    session.configure(embed="full")
    view = ip.run_line_magic("hiapi", "history")
    html = view._repr_html_()
    assert "crafted" in html  # the row is listed...
    assert b64(png.read_bytes()) not in html and b64(jpeg.read_bytes()) not in html  # ...not the files
    # The form's picker of earlier results offers none whose copy lies outside its folder.
    assert all(job.task_id != "tk-crafted" for job in session.recorded(10))


def test_a_real_result_still_shows_in_the_history(session):
    gen = generate("a fox for the history", model=IMAGE, show=False)
    html = HistoryView(
        session.journal.history(10),
        folder=session.journal.path.parent,
        outputs=session.outputs_dir,
        embed="full",
    )._repr_html_()
    assert b64(gen.outputs[0].path.read_bytes()) in html
