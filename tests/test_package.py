"""The path most users take, tested as they take it: the built wheel, not this checkout.

``python -m build`` makes the wheel and the sdist once per session; ``twine check`` reads them.
Then, for the lowest and the highest Python the package supports, a clean venv gets only
``pip install <wheel> ipykernel nbclient`` (no extras, no test tools, no HIAPI_API_KEY) and runs
the quickstart notebook with nbclient: ``%hiapi connect`` starts the built-in sandbox (drawing at
full size, as a user's does), the first ``%%hiapi`` image cell must hold a real preview linked to
its PNG original beside the notebook, the video cell a real poster and the local copy of a real
MP4 (the sample clip a plain install serves), and the one line about
``pip install 'hiapi-notebook[sandbox]'`` must be shown.

An interpreter that is missing is skipped with the reason printed in the summary.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import nbformat
import pytest

import hiapi_notebook

pytestmark = [pytest.mark.package, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "01-quickstart.ipynb"
SAMPLE_CLIP = ROOT / "hiapi_notebook" / "sandbox" / "sample" / "clip.mp4"
PYTHONS = ("3.11", "3.13")  # the lowest and the highest supported, as the classifiers say
EXTRA_HINT = "pip install 'hiapi-notebook[sandbox]'"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEV_TOOLS = ("pytest", "ruff", "mypy", "playwright", "jupyterlab", "build", "twine", "hiapi")

# Run inside the clean venv: nbclient starts that venv's own python3 kernel.
RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient

path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, path)
"""

# Prepended to the notebook: proves the kernel runs the installed wheel in the clean venv.
WHERE = """\
import importlib.util, sys
print(sys.prefix)
print(importlib.util.find_spec("hiapi_notebook").origin)
print(importlib.util.find_spec("imageio_ffmpeg"))"""


def run(args: list, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(
            f"{command} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, built the way a release is (isolated build environment)."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])
    print(f"\nbuilt wheel and sdist in {time.monotonic() - started:.1f} s")
    return out


def the_wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("hiapi_notebook-*-py3-none-any.whl")
    return wheel


def test_the_wheel_and_sdist_pass_twine_check_and_carry_what_pypi_shows(dist):
    version = hiapi_notebook.__version__
    assert {p.name for p in dist.iterdir()} == {
        f"hiapi_notebook-{version}-py3-none-any.whl",
        f"hiapi_notebook-{version}.tar.gz",
    }
    checked = run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    with zipfile.ZipFile(the_wheel(dist)) as wheel:
        names = set(wheel.namelist())
        meta = Parser().parsestr(wheel.read(f"hiapi_notebook-{version}.dist-info/METADATA").decode())
    for shipped in (
        "py.typed",
        "data/models.json",
        "sandbox/sample/clip.mp4",
        "sandbox/sample/first_frame.png",
    ):
        assert f"hiapi_notebook/{shipped}" in names, shipped
    assert not any(n.startswith(("tests/", "notebooks/", "bench/")) for n in names)
    assert meta["Version"] == version and meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier")
    for needed in (
        "Framework :: Jupyter",
        "Framework :: IPython",
        "Framework :: Jupyter :: JupyterLab",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
    ):
        assert needed in classifiers, needed
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Repository", "Issues", "Changelog"}
    base = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in base) == [
        "httpx",
        "ipython",
        "ipywidgets",
        "pillow",
        "sniffio",
    ]
    assert meta.get_all("Provides-Extra") == ["sandbox"]  # test tools are a dependency group
    # PyPI cannot resolve relative links: every image the README shows is an absolute URL
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", meta.get_payload())
    assert images and all(src.startswith("https://") for src in images), images


def find_python(version: str) -> str | None:
    """The interpreter `pythonX.Y` names, as a real path; None when there is none.

    A pyenv shim for a version that is installed but not selected says "command not found";
    pyenv itself then tells which installed version provides it.
    """
    name = f"python{version}"
    where = shutil.which(name)
    if where is None:
        return None
    probe = [where, "-c", "import sys; print(sys.executable)"]
    attempts: list[dict[str, str] | None] = [None]
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "whence", name], capture_output=True, text=True)
        attempts += [{**os.environ, "PYENV_VERSION": v} for v in reversed(found.stdout.split())]
    for env in attempts:
        done = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=60)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return None


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """The user's environment less anything of this checkout, its venv, Jupyter paths or a key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HIAPI_", "JUPYTER_", "PYTHON", "PYENV_VERSION", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["JUPYTER_DATA_DIR"] = str(home / "jupyter-data")  # no kernelspec of the user's wins
    env["JUPYTER_CONFIG_DIR"] = str(home / "jupyter-config")
    env["HIAPI_SANDBOX_SPEED"] = "10"  # the same lifecycle, ten times faster
    env["HIAPI_POLL_INTERVAL"] = "0.2"
    return env


def outputs_of(nb, source_start: str):
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    assert cells, f"the quickstart has no cell starting with {source_start!r}"
    return cells[0].outputs


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    assert data[:3] == b"\xff\xd8\xff", data[:16]
    at = 2
    while at < len(data):
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise AssertionError("no start-of-frame segment")


@pytest.mark.parametrize("version", PYTHONS, ids=[f"py{v}" for v in PYTHONS])
def test_the_quickstart_runs_from_a_plain_install(version, dist, tmp_path, capsys):
    python = find_python(version)
    if python is None:
        pytest.skip(f"python{version} is not on PATH: install Python {version} to test the wheel on it")
    timings = {}
    started = time.monotonic()
    venv = tmp_path / "venv"
    run([python, "-m", "venv", venv])
    bin_python = venv / "bin" / "python"
    env = clean_env(venv, tmp_path)
    pip = [bin_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, the_wheel(dist), "ipykernel", "nbclient"], env=env, cwd=tmp_path)
    timings["venv + pip install"] = time.monotonic() - started

    installed = json.loads(run([bin_python, "-m", "pip", "list", "--format=json"], env=env).stdout)
    names = {p["name"].lower() for p in installed}
    assert "hiapi-notebook" in names and "imageio-ffmpeg" not in names
    assert not names & set(DEV_TOOLS), names & set(DEV_TOOLS)

    shown = run([venv / "bin" / "hiapi-notebook", "--version"], env=env).stdout.strip()
    assert shown == f"hiapi-notebook {hiapi_notebook.__version__}"

    folder = tmp_path / "work"  # the notebook's folder: no checkout on its path
    folder.mkdir()
    nb = nbformat.read(QUICKSTART, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(WHERE))
    notebook = folder / QUICKSTART.name
    nbformat.write(nb, notebook)
    (tmp_path / "run_notebook.py").write_text(RUNNER)
    started = time.monotonic()
    run([bin_python, tmp_path / "run_notebook.py", notebook, folder], env=env, cwd=folder)
    timings["notebook"] = time.monotonic() - started
    nb = nbformat.read(notebook, as_version=4)

    errors = [
        (c.source.splitlines()[0], o.get("ename"), o.get("evalue"))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []

    where = "".join(o.get("text", "") for o in nb.cells[0].outputs).splitlines()
    assert Path(where[0]).resolve() == venv.resolve(), where
    assert Path(where[1]).resolve().is_relative_to(venv.resolve()), where  # the wheel, not this checkout
    assert where[2] == "None", where  # and no imageio-ffmpeg: the sandbox extra is not there

    connect = outputs_of(nb, "%load_ext hiapi_notebook")
    printed = "".join(o.get("text", "") for o in connect if o.output_type == "stream")
    notes = [line for line in printed.splitlines() if EXTRA_HINT in line]
    assert len(notes) == 1 and "video" in notes[0], printed
    assert "sandbox" in json.dumps(connect)

    image = outputs_of(nb, "%%hiapi gpt-image-2/text-to-image")
    previews = [base64.b64decode(o.data["image/jpeg"]) for o in image if "image/jpeg" in o.get("data", {})]
    assert previews, json.dumps(image)[:2000]
    width, height = jpeg_size(previews[0])
    assert width >= 64 and height >= 64 and len(previews[0]) > 2000, (width, height, len(previews[0]))
    html = "".join(o.get("data", {}).get("text/html", "") for o in image)
    assert 'data-status="success"' in html
    original = folder / re.search(r'<a class="hiapi-original" href="([^"]+)"', html)[1]
    assert png_size(original.read_bytes()) == (1024, 576)  # 1K at 16:9, drawn at full size
    assert (width, height) == (1024, 576)  # shown 512 px wide: the preview has twice the pixels

    video = "".join(o.get("data", {}).get("text/html", "") for o in outputs_of(nb, "%%hiapi seedance"))
    (tag,) = re.findall(r"<video [^>]*>", video)
    clip = (folder / re.search(r' src="([^"]+)"', tag)[1]).read_bytes()
    assert clip[4:8] == b"ftyp" and clip == SAMPLE_CLIP.read_bytes()
    posters = re.findall(r'poster="data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)"', tag)
    assert posters and len(base64.b64decode(posters[0])) > 1000

    with capsys.disabled():
        print(f"\n[python {version}] " + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()))
