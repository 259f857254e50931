"""How much a lone picture's second copy weighs in a saved notebook (issue 22, item 11).

Six lone pictures (1K, 2K and 4K, two aspect ratios, drawn by the built-in sandbox at full
detail) are generated in a notebook executed twice by nbclient: as a front end a person saves
from sees it (``HIAPI_FRONTEND=jupyterlab``: the preview once, inside the HTML) and as a headless
run keeps it (the preview also as a plain image output, as every run did before). Prints the
size of each saved .ipynb. The second run is answered from the journal of the first.

  .venv/bin/python bench/picture_copies.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELLS = ["%load_ext hiapi_notebook\n%hiapi connect"] + [
    f"%%hiapi gpt-image-2/text-to-image --resolution {res} --aspect_ratio {ratio}\nA red fox, {res} {ratio}"
    for res in ("1K", "2K", "4K")
    for ratio in ("16:9", "1:1")
]


def run(folder: Path, front_end: str) -> int:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    env = {"HIAPI_FRONTEND": front_end, "HIAPI_SANDBOX_DETAIL": "full", "HIAPI_SANDBOX_SPEED": "50"}
    old = dict(os.environ)
    os.environ.update(env)
    for name in ("HIAPI_API_KEY", "HIAPI_BASE_URL", "HIAPI_HOME"):
        os.environ.pop(name, None)
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    path = folder / f"{front_end}.ipynb"
    nbformat.write(nb, path)
    return path.stat().st_size


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        both = run(Path(folder), "headless")
        once = run(Path(folder), "jupyterlab")
    print(f"six lone pictures, preview twice (as before; headless runs): {both / 1024:.0f} KB")
    print(f"six lone pictures, preview once (JupyterLab, Notebook 7, VS Code, Colab): {once / 1024:.0f} KB")


if __name__ == "__main__":
    main()
