"""Every notebook in notebooks/ runs top to bottom against the sandbox (nbclient),
with assertions on what it shows, in a copy of the repository's notebooks/ folder
that git sees as a fresh clone does: running it leaves no untracked files.
Each runs in this venv's kernel and in the Colab-like kernel (Colab's pinned
IPython 7.34 / ipywidgets 7.7.1, its ``Shell`` class and ``google.colab``).
nbclient keeps only messages sent while their cell runs, so background-only
updates are checked at the kernel level instead."""

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from kernel_harness import COLAB, kernel_on_path, missing
from nbclient import NotebookClient
from PIL import Image, ImageOps

from hiapi_notebook.sandbox import SandboxServer

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Each notebook in this venv's kernel ("python3") and in the Colab-like one.
RUNS = [
    pytest.param(path, kernel, id=f"{path.stem}-{kernel}")
    for path in NOTEBOOKS
    for kernel in ("python3", COLAB)
]
SECRET = "sk-notebook-9d2e4b7a1c-never-shown"


def git(*args: str, cwd: Path) -> str:
    """git with no user or system configuration (a global excludes file would hide files)."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        **{
            f"GIT_{who}_{what}": v
            for who in ("AUTHOR", "COMMITTER")
            for what, v in (("NAME", "t"), ("EMAIL", "t@t"))
        },
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {args[0]}: {done.stderr.strip()}"
    return done.stdout


def fresh_clone(dest: Path) -> Path:
    """``dest`` as a clone of this repository holds it for the notebooks: notebooks/ and
    every .gitignore, committed. Returns its notebooks/ folder."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        missing("the untracked-files check needs git and a git checkout of the repository")
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        if (name.startswith("notebooks/") or Path(name).name == ".gitignore") and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, dest / name)
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "clone", cwd=dest)
    return dest / "notebooks"


def changes_besides(clone: Path, notebook: str) -> list[str]:
    """What git status shows besides ``notebook`` itself (saved with its outputs)."""
    status = git("status", "--porcelain", "--untracked-files=all", cwd=clone)
    return [line for line in status.splitlines() if line != f" M notebooks/{notebook}"]


def run_notebook(
    path: Path, workdir: Path, env: dict[str, str], kernel: str = "python3"
) -> nbformat.NotebookNode:
    """Run a copy of ``path`` in ``workdir`` in the kernel named ``kernel``."""
    shutil.copy(path, workdir / path.name)
    nb = nbformat.read(workdir / path.name, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)
    for name in ("HIAPI_API_KEY", "HIAPI_BASE_URL"):
        if name not in env:
            os.environ.pop(name, None)
    try:
        NotebookClient(
            nb, timeout=180, kernel_name=kernel, resources={"metadata": {"path": str(workdir)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    nbformat.write(nb, workdir / path.name)
    return nb


def outputs_text(cell) -> str:
    return json.dumps(cell.get("outputs", []))


def cells_with(nb, source_start: str):
    found = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    assert found, f"no cell starts with {source_start!r}"
    return found


def errors_in(nb):
    return [
        (c.source.splitlines()[0], o.get("ename"), o.get("evalue"))
        for c in nb.cells
        if c.cell_type == "code" and "raises-exception" not in c.metadata.get("tags", [])
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]


@pytest.mark.parametrize(("path", "kernel"), RUNS)
def test_notebook_runs_on_the_builtin_sandbox(path, kernel, tmp_path, tmp_path_factory):
    folder = fresh_clone(tmp_path)
    env = {"HIAPI_SANDBOX_SPEED": "10", "HIAPI_POLL_INTERVAL": "0.1"}
    if kernel != "python3":  # its kernelspec on JUPYTER_PATH, outside the clone, for nbclient to find
        kernel, found = kernel_on_path(kernel, tmp_path_factory.mktemp("jupyter"))
        env.update(found)
    nb = run_notebook(path, folder, env, kernel)
    assert errors_in(nb) == []
    # What the notebook writes (local copies, journal, saved files) is ignored by git.
    assert changes_besides(tmp_path, path.name) == []
    saved = (folder / path.name).read_text()
    assert "Error displaying widget" not in saved
    # Colab draws outputs in an iframe with no route to the files beside the notebook:
    # pictures and clips are embedded there, linked to the local copies elsewhere.
    embedded = kernel != "python3"
    if path.stem.startswith("01"):
        check_quickstart(nb, folder, embedded)
    if path.stem.startswith("02"):
        check_widgets(nb)
    if path.stem.startswith("03"):
        check_reproducible(nb, folder, embedded)
    if path.stem.startswith("04"):
        check_chaining(nb, folder, embedded)


def shows_picture(cell, embedded: bool) -> bool:
    """A picture in the saved cell: an image output, or (where files beside the notebook do
    not load) one embedded in the HTML as a data URI."""
    if embedded:
        return any('src="data:image/' in o.get("data", {}).get("text/html", "") for o in cell.outputs)
    return any("image/png" in o.get("data", {}) for o in cell.outputs)


def check_clip(video: str, folder, embedded: bool) -> None:
    """The clip's poster is in the notebook; the clip plays from its local copy beside it,
    or, where that cannot load, from the notebook itself."""
    assert 'poster="data:image/' in video, video[:200]
    src = re.search(r' src="([^"]+)"', video)[1]
    if embedded:
        head, data = src.split(",", 1)
        assert head == "data:video/mp4;base64" and base64.b64decode(data)[4:8] == b"ftyp", head
    else:
        assert src.startswith("hiapi-outputs/") and (folder / src).read_bytes()[4:8] == b"ftyp", src


def check_quickstart(nb, folder, embedded):
    (connect,) = cells_with(nb, "%load_ext hiapi_notebook")
    assert "sandbox" in outputs_text(connect) and "synthetic" in outputs_text(connect)
    (fox,) = cells_with(nb, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 16:9 -o fox")
    kinds = [list(o.get("data", {})) for o in fox.outputs]
    assert shows_picture(fox, embedded), kinds
    assert 'data-status=\\"success\\"' in outputs_text(fox)
    # the live widget was swapped for its static twin inside the waiting cell
    assert not any("application/vnd.jupyter.widget-view+json" in k for k in kinds), kinds
    (owl,) = cells_with(nb, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 1:1")
    assert "barn owl reading" in outputs_text(owl)
    (clip,) = cells_with(nb, "%%hiapi seedance-2-0")
    html = "".join(o.get("data", {}).get("text/html", "") for o in clip.outputs)
    (video,) = re.findall(r"<video [^>]*>", html)
    check_clip(video, folder, embedded)
    (trio,) = cells_with(nb, "%%hiapi gpt-image-2/text-to-image -n 3")
    assert outputs_text(trio).count("tk-hiapi-") >= 3
    (statuses,) = cells_with(nb, "[g.status for g in trio]")
    assert statuses.outputs[0]["data"]["text/plain"] == "['success', 'success', 'success']"
    (awaited,) = cells_with(nb, "done = await later")
    assert awaited.outputs[0]["data"]["text/plain"] == "'success'"
    (caught,) = cells_with(nb, "try:")
    assert "aspect_ratio" in outputs_text(caught) and "allowed" in outputs_text(caught)
    (failed,) = cells_with(nb, "%%hiapi gpt-image-2/text-to-image\nThis prompt asks")
    assert 'data-status=\\"fail\\"' in outputs_text(failed)
    assert "asked to fail" in outputs_text(failed)
    # IPython shows a UsageError as one stderr line (no traceback); the cell still
    # counts as failed, so Run All stops there.
    (error,) = nb.cells[-1].outputs
    assert error.output_type == "stream" and error.name == "stderr"
    assert error.text.startswith("UsageError: ") and "aspect_ratio" in error.text
    assert error.text.count("\n") == 1 and "Traceback" not in error.text


def check_widgets(nb):
    (form,) = cells_with(nb, "import hiapi_notebook\n\nform = ")
    data = form.outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data and "text/plain" in data
    (submitted,) = cells_with(nb, "hummingbird = form.submit()")
    assert submitted.outputs[0]["data"]["text/plain"] == "'success'"
    (magic,) = cells_with(nb, "print(form.as_magic())")
    assert magic.outputs[0]["text"] == (
        "%%hiapi gpt-image-2/text-to-image --aspect_ratio 3:2 --resolution 1K --size auto\n"
        "A watercolour hummingbird at a foxglove\n"
    )
    (sweep,) = cells_with(nb, "%%hiapi gpt-image-2/text-to-image --sweep")
    html = sweep.outputs[-1]["data"]["text/html"]
    assert 'data-done="4" data-total="4"' in html
    for label in ("1:1", "16:9", "1K", "2K"):
        assert label in html
    (compare,) = cells_with(nb, "%%hiapi --models")
    assert "gpt-image-2.5-flare/text-to-image" in outputs_text(compare)
    (gallery,) = cells_with(nb, "hiapi_notebook.Gallery(")
    assert outputs_text(gallery).count("<img") >= 7
    (statuses,) = cells_with(nb, "[(g.prompt[:24], g.status) for g in kites]")
    assert statuses.outputs[0]["data"]["text/plain"].count("'fail'") == 2
    assert statuses.outputs[0]["data"]["text/plain"].count("'success'") == 2


def check_reproducible(nb, folder, embedded):
    first, second, fresh = cells_with(nb, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 4:3")
    assert "cached" not in outputs_text(first) and "cached" in outputs_text(second)
    assert shows_picture(second, embedded)  # the recorded result is shown, not a link
    (same,) = cells_with(nb, "again.cached")
    assert same.outputs[0]["data"]["text/plain"] == "(True, True)"
    (differs,) = cells_with(nb, "other.task_id != base.task_id")
    assert differs.outputs[0]["data"]["text/plain"] == "True"
    copies = list((folder / "hiapi-outputs").rglob("*.png"))
    assert len(copies) == 2 and all(p.stat().st_size > 1000 for p in copies)
    assert len(list((folder / "figures").glob("*.png"))) == 1
    manifest = json.loads((folder / "results.json").read_text())
    assert len(manifest["results"]) == 2
    assert all(r["files"][0]["sha256"] for r in manifest["results"])


def check_chaining(nb, folder, embedded):
    (fox,) = cells_with(nb, "%%hiapi gpt-image-2/text-to-image --aspect_ratio 16:9 -o fox")
    (woodcut,) = cells_with(nb, "%%hiapi gpt-image-2/image-to-image --input_urls fox -o woodcut")
    (clip,) = cells_with(nb, "%%hiapi seedance-2-0 --first_frame_url woodcut")
    for cell in (fox, woodcut, clip):
        assert 'data-status=\\"success\\"' in outputs_text(cell)
    for cell in (fox, woodcut):
        assert shows_picture(cell, embedded)
    html = "".join(o.get("data", {}).get("text/html", "") for o in clip.outputs)
    (video,) = re.findall(r"<video [^>]*>", html)
    check_clip(video, folder, embedded)
    manifest = json.loads((folder / "chain.json").read_text())
    results = manifest["results"]
    by_model = [(r["request"]["model"], [i["source"] for i in r["inputs"]]) for r in results]
    t2i, i2i, i2v, from_file, both = results
    assert by_model[1] == (
        "gpt-image-2/image-to-image",
        [f"variable fox: result {t2i['task_id']} (image output 0)"],
    )
    assert by_model[2] == ("seedance-2-0", [f"variable woodcut: result {i2i['task_id']} (image output 0)"])
    assert by_model[3][1] == ["file sketch.png"]
    assert by_model[4][1] == ["PIL image 480×320 RGB", f"result {t2i['task_id']} (image output 0)"]
    # on the sandbox the clip starts on the refined picture itself
    refined = Image.open(folder / i2i["files"][0]["path"]).convert("RGB")
    first = next(f for f in i2v["files"] if f["path"].endswith("first_frame.png"))
    first_frame = Image.open(folder / first["path"]).convert("RGB")
    assert first_frame.tobytes() == ImageOps.fit(refined, first_frame.size).tobytes()
    (caught,) = cells_with(nb, "try:")
    assert "input.input_urls: 'kitten.png' is not a URL, a file or a notebook variable" in outputs_text(
        caught
    )
    journal = b"".join(p.read_bytes() for p in (folder / ".hiapi").glob("journal.sqlite3*"))
    assert b"base64" not in journal


def test_key_never_reaches_the_saved_notebook(tmp_path):
    with SandboxServer(port=0, speed=10) as srv:
        nb = run_notebook(
            NOTEBOOKS[0],
            tmp_path,
            {"HIAPI_API_KEY": SECRET, "HIAPI_BASE_URL": srv.url, "HIAPI_POLL_INTERVAL": "0.1"},
        )
        assert srv.task_count >= 5
    assert errors_in(nb) == []
    saved = (tmp_path / NOTEBOOKS[0].name).read_text()
    assert SECRET not in saved
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
