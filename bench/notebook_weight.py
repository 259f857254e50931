"""How heavy a notebook of real-size results is, and what that costs in JupyterLab.

A notebook with a sweep of eight 4K images and four 1080p clips of 8 s, made by the built-in
sandbox at full detail (a 4K PNG weighs about 15 MB, a clip about 5 MB), is executed twice:
with ``embed=preview`` (the default) and with ``embed=full`` (self-contained). For each it
prints the .ipynb size, the time JupyterLab (in headless Chromium) takes to save it, and the
time to reopen it with no kernel until every picture is decoded. Then it checks, in the
reopened preview notebook, that every picture is sharp at the size it is shown (at least
twice as many pixels as CSS pixels, or the whole original) and that each original is one
click away (a thumbnail's click shows it; a clip's source is its local copy), and prints which
of the issue's targets hold.

Both runs use one sandbox, so the second reuses the first's results from the journal.
"Opens" is the time a running JupyterLab takes from opening the notebook to drawing it with
every picture decoded; the time with JupyterLab's own page load is printed beside it.
Needs the dev tools (`make install`) and Chromium (`make test` installs it).

  .venv/bin/python bench/notebook_weight.py
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))  # the test suite's JupyterLab launcher

import nbformat  # noqa: E402
from harness import CHROMIUM, CHROMIUM_ARGS, LabServer, without_kernels  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbformat.sign import NotebookNotary  # noqa: E402

from hiapi_notebook.sandbox import SandboxServer  # noqa: E402

RATIOS = ("16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5")  # gpt-image-2 at 4K
CLIPS = ("16:9", "9:16", "1:1", "4:3")
KERNEL_ENV = {"HIAPI_HOME": "", "HIAPI_POLL_INTERVAL": "0.2", "HIAPI_NOTEBOOK_DISPLAY": ""}
MB = 2**20
REOPENS = 3  # the median of these is reported

# Open with no kernel; done when every cell has its outputs and every picture shown is decoded.
OPENED_JS = """(cells) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.context || !w.context.isReady || w.content.widgets.length < cells) return false;
  const outputs = w.content.widgets.filter(c => c.model.type === 'code')
                   .every(c => c.node.querySelector('.jp-OutputArea-output'));
  const shown = [...w.node.querySelectorAll('.jp-OutputArea img')].filter(i => i.checkVisibility());
  return outputs && shown.length > 0 && shown.every(i => i.complete && i.naturalWidth > 0);
}"""

SHARP_JS = """() => [...document.querySelectorAll('.jp-OutputArea img')].filter(i => i.checkVisibility())
  .map(i => ({natural: i.naturalWidth, css: i.clientWidth, src: i.getAttribute('src').slice(0, 24)}))"""


def notebook(embed: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        }
    )
    sources = [
        f"%load_ext hiapi_notebook\n%hiapi config embed={embed}",
        f"%%hiapi gpt-image-2/text-to-image --resolution 4K --sweep aspect_ratio={','.join(RATIOS)}\n"
        "A lighthouse on a cliff at dusk, storm clouds over a dark sea",
    ]
    sources += [
        f"%%hiapi seedance-2-0 --resolution 1080p --duration 8 --aspect_ratio {ratio}\n"
        f"A paper boat drifting down a rainy street ({ratio})"
        for ratio in CLIPS
    ]
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def execute(folder: Path, embed: str, server: SandboxServer) -> tuple[Path, float, float]:
    """Run the notebook in a kernel, write it, sign it (a notebook one saved oneself is trusted).
    Returns (path, seconds to run, seconds to write)."""
    path = folder / f"weight-{embed}.ipynb"
    nb = notebook(embed)
    env = {**os.environ, **KERNEL_ENV, "HIAPI_BASE_URL": server.url, "HIAPI_API_KEY": "bench"}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        t0 = time.perf_counter()
        NotebookClient(
            nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
        ran = time.perf_counter() - t0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        raise SystemExit(f"the {embed} notebook failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    t0 = time.perf_counter()
    nbformat.write(nb, path)
    wrote = time.perf_counter() - t0
    NotebookNotary().sign(nb)
    return path, ran, wrote


def reopen(browser, lab: LabServer, path: str, cells: int):
    """Open the notebook at ``path`` with no kernel, in a JupyterLab page that has loaded first.
    Returns (seconds until every output is drawn, seconds from the page's load, page, context)."""
    context = browser.new_context(base_url=lab.url, viewport={"width": 1400, "height": 1000})
    without_kernels(context, r".*/lab(\?.*)?$")
    page = context.new_page()
    page.set_default_timeout(600_000)
    t0 = time.perf_counter()
    page.goto("/lab?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", polling=50)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    t1 = time.perf_counter()
    page.evaluate("(path) => { window.jupyterapp.commands.execute('docmanager:open', {path}); }", path)
    page.wait_for_function(OPENED_JS, arg=cells, polling=50)
    t2 = time.perf_counter()
    if page.evaluate("() => !!window.jupyterapp.shell.currentWidget.sessionContext.session"):
        raise SystemExit("a kernel started: the reopening is meant to have none")
    return t2 - t1, t2 - t0, page, context


def save_in_lab(page, file: Path) -> float:
    """What Ctrl-S costs: JupyterLab serialises the notebook and the server writes it."""
    before = file.stat().st_mtime_ns
    t0 = time.perf_counter()
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
    seconds = time.perf_counter() - t0
    if file.stat().st_mtime_ns == before:
        raise SystemExit(f"JupyterLab did not write {file.name}")
    return seconds


def check_sharp(page) -> list[dict]:
    """Pictures shown with fewer pixels than twice their CSS width (and less than an original)."""
    return [i for i in page.evaluate(SHARP_JS) if i["natural"] < 2 * i["css"] and i["natural"] < 1920]


def check_one_click(page, lab_root: Path, folder: str) -> list[str]:
    """Problems found opening each original: thumbnails open their 4K original in place, and
    each clip's source is its local copy."""
    problems = []
    buttons = page.locator(".jp-OutputArea button.hiapi-zoom")
    for i in range(buttons.count()):
        buttons.nth(i).click()
        try:
            page.wait_for_function(
                "() => { const o = document.querySelector('.hiapi-lb-full:popover-open img');"
                " return o && o.complete && o.naturalWidth > 0; }",
                timeout=60_000,
            )
            natural = page.evaluate(
                "() => { const o = document.querySelector('.hiapi-lb-full:popover-open img');"
                " return [o.naturalWidth, o.naturalHeight]; }"
            )
            if max(natural) != 3840:
                problems.append(
                    f"thumbnail {i}: opens a {natural[0]}x{natural[1]} picture, not the 4K original"
                )
        except Exception as exc:
            problems.append(f"thumbnail {i}: {exc}")
        page.keyboard.press("Escape")
    for src in page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea video')].map(v => v.src)"):
        local = re.search(r"/files/(.*?\.mp4)", src)
        if not local or not (lab_root / local[1]).is_file():
            problems.append(f"a clip plays from {src[:80]}, not its local copy")
    return problems


def main() -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    work = Path(tempfile.mkdtemp(prefix="hiapi-weight-"))
    folder = work / "weight"
    folder.mkdir()
    results = {}
    server = SandboxServer(speed=20, detail="full").start()  # one server: the second run reuses the first
    try:
        for embed in ("preview", "full"):
            path, ran, wrote = execute(folder, embed, server)
            results[embed] = {"size": path.stat().st_size, "run": ran, "write": wrote}
            print(
                f"{embed:8}: ran in {ran:.0f} s; {path.stat().st_size / MB:.1f} MB, written in {wrote:.2f} s"
            )
        originals = sorted((folder / "hiapi-outputs").rglob("*.*"))
        kept = sum(p.stat().st_size for p in originals)
        print(f"originals beside the notebook: {len(originals)} files, {kept / MB:.0f} MB")

        lab = LabServer({}).start()
        try:
            shutil.copytree(folder, lab.root / "weight")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                for embed in ("preview", "full"):
                    opens, cold, saves = [], [], []
                    for attempt in range(REOPENS):
                        seconds, loaded, page, context = reopen(
                            browser, lab, f"weight/weight-{embed}.ipynb", 6
                        )
                        opens.append(seconds)
                        cold.append(loaded)
                        saves.append(save_in_lab(page, lab.root / "weight" / f"weight-{embed}.ipynb"))
                        if embed == "preview" and attempt == 0:
                            results["blurry"] = check_sharp(page)
                            results["shown"] = len(page.evaluate(SHARP_JS))
                            results["unreachable"] = check_one_click(page, lab.root, "weight")
                        context.close()
                    results[embed]["open"] = statistics.median(opens)
                    results[embed]["cold"] = statistics.median(cold)
                    results[embed]["save"] = statistics.median(saves)
                    print(
                        f"{embed:8}: a running JupyterLab opens it (no kernel, every picture decoded) in "
                        f"{results[embed]['open']:.2f} s ({results[embed]['cold']:.2f} s with loading "
                        f"JupyterLab itself) and saves it in {results[embed]['save']:.2f} s "
                        f"(medians of {REOPENS}; opens {', '.join(f'{s:.2f}' for s in opens)})"
                    )
                browser.close()
        finally:
            lab.stop()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    preview, full = results["preview"], results["full"]
    faster = full["open"] / preview["open"]
    print()
    print("targets:")
    print(
        f"  [{'x' if preview['size'] <= 5 * MB else ' '}] saved at no more than 5 MB with the default: "
        f"{preview['size'] / MB:.2f} MB (embed=full: {full['size'] / MB:.0f} MB)"
    )
    blurry = results["blurry"]
    print(
        f"  [{' ' if blurry else 'x'}] every picture sharp at its display size: "
        f"{results['shown'] - len(blurry)} of {results['shown']} shown with at least 2x its CSS pixels"
        + (f"; not: {blurry}" if blurry else "")
    )
    unreachable = results["unreachable"]
    print(
        f"  [{' ' if unreachable else 'x'}] each original one click away"
        + (
            f": {unreachable}"
            if unreachable
            else " (8 thumbnails opened their 4K originals, 4 clips play their local copies)"
        )
    )
    print(
        f"  [{'x' if faster >= 5 else ' '}] opens at least 5x faster than embed=full: {faster:.1f}x "
        f"({preview['open']:.2f} s against {full['open']:.2f} s; with JupyterLab's own load "
        f"{full['cold'] / preview['cold']:.1f}x, {preview['cold']:.2f} s against {full['cold']:.2f} s); "
        f"saving: {full['save'] / preview['save']:.1f}x "
        f"({preview['save']:.2f} s against {full['save']:.2f} s)"
    )


if __name__ == "__main__":
    main()
