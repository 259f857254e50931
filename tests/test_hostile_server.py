"""A malicious HiAPI server (``hostile.HostileServer``, real HTTP on loopback) against the
client: the names it chooses never leave their folder nor share one, its slow bodies end
with the task's timeout, its gzip bombs stop early. What could exhaust the machine if the
client did not hold runs in a child under resource limits (``hostile.run_bounded``)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from hostile import Body, HostileServer, gzip_bomb, run_bounded, tiny_png

from hiapi_notebook.api import generate
from hiapi_notebook.session import reset_session

IMAGE = "gpt-image-2/text-to-image"


@pytest.fixture
def hostile():
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture
def on_hostile(hostile, tmp_path, monkeypatch):
    """A session on the hostile server, its journal and local copies in tmp_path/nb."""
    notebook = tmp_path / "nb"
    notebook.mkdir()
    monkeypatch.chdir(notebook)
    monkeypatch.setenv("HIAPI_NOTEBOOK_DISPLAY", "text")
    session = reset_session()
    session.configure(base_url=hostile.url, api_key="k", poll_interval=0.02)
    yield session
    reset_session()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def climbing_type(target: Path) -> str:
    """An output type that, used as a file name, climbs to ``target`` (folders made on the way)."""
    return "x/" + "../" * 30 + str(target).lstrip("/")


def test_a_server_chosen_type_or_id_never_escapes_the_save_folder(hostile, on_hostile, tmp_path):
    escape = tmp_path / "outside" / "PWNED"
    hostile.ids = iter(["..", "tk-ok"])
    hostile.outputs = lambda task_id, root: [
        {"url": f"{root}/files/ok.png", "type": climbing_type(escape) + ".png"},
        {"url": f"{root}/files/ok.png", "type": "image\n\x00/../../evil"},
    ]
    for prompt in ("first", "second"):
        gen = generate(prompt, model=IMAGE, show=False)
        assert gen.status == "success"
        kept = tmp_path / "kept"
        saved = gen.save(kept)
        assert len(saved) == 2 and all(p.parent == kept and p.is_file() for p in saved), saved
        assert all(p.read_bytes() == tiny_png() for p in saved)
        assert all(o.path is not None and o.path.is_relative_to(Path("hiapi-outputs")) for o in gen.outputs)
        single = gen.outputs[0].save(str(kept) + "/")
        assert single.parent == kept
    assert not (tmp_path / "outside").exists()
    allowed = (tmp_path / "kept", tmp_path / "nb" / "hiapi-outputs", tmp_path / "nb" / ".hiapi")
    stray = [p for p in files_under(tmp_path) if not any(p.is_relative_to(a) for a in allowed)]
    assert stray == []


def test_the_magic_saves_a_climbing_type_inside_its_folder(hostile, ip, tmp_path):
    from hiapi_notebook.session import get_session

    get_session().configure(base_url=hostile.url, api_key="k", poll_interval=0.02)
    escape = tmp_path / "outside" / "FROM_MAGIC"
    hostile.outputs = lambda task_id, root: [{"url": f"{root}/files/ok.png", "type": climbing_type(escape)}]
    ip.run_cell_magic("hiapi", f"{IMAGE} --save kept -o kept_result", "a fox")
    assert ip.user_ns["kept_result"].status == "success"
    saved = files_under(tmp_path / "kept")
    assert len(saved) == 1 and saved[0].read_bytes() == tiny_png()
    assert not (tmp_path / "outside").exists()


def test_ids_that_clean_to_one_name_keep_their_own_folders(hostile, on_hostile):
    ids = ["..", "...", "abc~", "abc_", ".", "abc"]
    hostile.ids = iter(ids)
    bodies = {task_id: tiny_png(2 + n, 2) for n, task_id in enumerate(ids)}
    hostile.files.update({f"{n}.png": Body(bodies[t]) for n, t in enumerate(ids)})
    hostile.outputs = lambda task_id, root: [
        {"url": f"{root}/files/{ids.index(task_id)}.png", "type": "image"}
    ]
    gens = [generate(f"prompt {n}", model=IMAGE, show=False) for n in range(len(ids))]
    folders = [g.outputs[0].path.parent for g in gens]
    assert len(set(folders)) == len(ids), folders
    assert all(f.parent == Path("hiapi-outputs") and f.name not in ("", ".", "..") for f in folders)
    for gen in gens:  # each copy is its own task's bytes, and the journal's hash matches it
        (out,) = gen.outputs
        data = out.path.read_bytes()
        assert data == bodies[gen.task_id]
        assert out.sha256 == hashlib.sha256(data).hexdigest()
    rows = {r.task_id: r for r in on_hostile.journal.history(20)}
    for task_id in ids:
        (entry,) = rows[task_id].files
        assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


def test_a_five_thousand_character_type_is_kept_under_a_short_name(hostile, on_hostile, caplog):
    long_type = "image" + "é" * 4995
    hostile.outputs = lambda task_id, root: [{"url": f"{root}/files/ok.png", "type": long_type}]
    gen = generate("a long type", model=IMAGE, show=False)
    (out,) = gen.outputs
    assert out.path is not None and gen.job.files[0].problem is None
    assert out.path.read_bytes() == tiny_png()
    assert len(out.path.name) < 80 and len(out.type) <= 64
    saved = gen.save("kept")
    assert len(saved[0].name) < 150 and saved[0].read_bytes() == tiny_png()
    assert all(len(r.getMessage()) < 500 for r in caplog.records)


def test_content_disposition_names_are_not_used(hostile, on_hostile, tmp_path):
    hostile.files["cd.png"] = Body(
        tiny_png(), headers={"Content-Disposition": 'attachment; filename="../../../../CD_PWNED.png"'}
    )
    hostile.outputs = lambda task_id, root: [{"url": f"{root}/files/cd.png", "type": "image"}]
    gen = generate("a named file", model=IMAGE, show=False)
    assert gen.outputs[0].path.is_file() and gen.outputs[0].path.name == "0-image.png"
    gen.save(tmp_path / "kept")
    assert not any(p.name.startswith("CD_PWNED") for p in files_under(tmp_path.parent))


def test_a_trickling_output_ends_with_the_tasks_timeout(hostile, on_hostile):
    hostile.files["slow.png"] = Body(tiny_png() + bytes(200), every=0.5)  # about 2 minutes whole
    hostile.outputs = lambda task_id, root: [{"url": f"{root}/files/slow.png", "type": "image"}]
    started = time.monotonic()
    gen = generate("slowly", model=IMAGE, show=False, timeout=3)
    took = time.monotonic() - started
    assert took < 15, took  # the download ends with the task's 3 s, not byte by byte
    (out,) = gen.outputs
    assert out.path is None or not out.path.exists()
    assert "within 3 s" in (gen.job.files[0].problem or ""), gen.job.files[0].problem


def test_outputs_are_asked_for_unencoded(hostile, on_hostile):
    generate("plain", model=IMAGE, show=False)
    gets = hostile.file_gets()
    assert gets and all(h.get("Accept-Encoding") == "identity" for _path, h in gets), gets


BOMB_DOWNLOAD = """
import asyncio
from pathlib import Path
from hiapi_notebook.client import AsyncHiAPI
from hiapi_notebook.errors import HiAPIError

async def main():
    client = AsyncHiAPI(api_key="k", base_url={url!r}, max_retries=0)
    dest = Path("bomb/0-image.png")
    try:
        await client.download({file!r}, dest, max_bytes=2 * 2**30)
        problem = None
    except HiAPIError as exc:
        problem = str(exc)
    on_disk = sum(p.stat().st_size for p in Path("bomb").rglob("*") if p.is_file())
    await client.aclose()
    report(problem=problem, on_disk=on_disk)

asyncio.run(main())
"""


def test_a_gzip_bomb_stops_within_a_few_dozen_megabytes(hostile, tmp_path):
    bomb = gzip_bomb(1024)  # about 1 MB sent, 1 GB inflated
    hostile.files["bomb.png"] = Body(bomb, headers={"Content-Encoding": "gzip"})
    # Limited to 100 MB files and 1.5 GB of memory: a client that does not stop fails here.
    code = BOMB_DOWNLOAD.format(url=hostile.url, file=f"{hostile.root}/files/bomb.png")
    result = run_bounded(code, memory_mb=1500, file_mb=100, seconds=120, env={"CWD": str(tmp_path)}).result()
    assert result["problem"] and "compression bomb" in result["problem"], result
    assert result["on_disk"] == 0  # the temporary file goes with the refusal
    assert len(bomb) < 2 * 2**20


def test_a_create_whose_twin_is_in_flight_waits_for_the_replay(sandbox, session):
    # Seven 409s in a row: more than the four retries of an ordinary failure.
    sandbox.inject("409", method="POST", times=7, retry_after=0.2)
    gen = generate("a twin", model=IMAGE, show=False)
    assert gen.status == "success"


def test_a_huge_key_is_called_malformed_before_anything_is_sent(sandbox, monkeypatch):
    from hiapi_notebook import errors
    from hiapi_notebook.client import HiAPI

    monkeypatch.setenv("HIAPI_API_KEY", "sk-" + "a" * 2**20)
    with pytest.raises(errors.RequestValidationError, match="malformed.*characters long") as info:
        HiAPI(base_url=sandbox.url)
    assert len(str(info.value)) < 300 and "aaaa" not in str(info.value)


def test_the_wait_for_a_twin_is_bounded():
    from hiapi_notebook.retry import TWIN_WAIT, twin_in_flight

    assert twin_in_flight(409, "IDEMPOTENCY_KEY_PROCESSING", 5.0)
    assert not twin_in_flight(409, "IDEMPOTENCY_KEY_PROCESSING", TWIN_WAIT + 1)
    assert not twin_in_flight(409, "CONFLICT", 1.0) and not twin_in_flight(429, None, 1.0)
