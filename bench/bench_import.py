"""What loading the package costs: ``import hiapi_notebook`` and ``%load_ext hiapi_notebook``
against ``import ipywidgets``, each in fresh Python processes (median of several runs), and which
heavy modules each one brought in, with the chain of this package's imports that led to them.
Prints figures; nothing passes or fails.

  .venv/bin/python bench/bench_import.py [--runs N]

The ``%load_ext`` and ``ipywidgets (in IPython)`` rows start from an InteractiveShell that already
exists, as in a kernel: they count only the step itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("PIL", "ipywidgets", "hiapi_notebook.sandbox", "numpy", "httpx", "rich")

# Runs in the child. A finder first on sys.meta_path sees every import; for each heavy module it
# records the chain of this package's import lines on the stack when that module was first asked for.
CHILD = """
import json, os, sys, time, traceback
sys.path.insert(0, ROOT)
PACKAGE = os.path.join(ROOT, "hiapi_notebook", "")
first = {}

class Watch:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in HEAVY and name not in first:
            frames = [f for f in traceback.extract_stack() if f.filename.startswith(PACKAGE)]
            chain = [f"{os.path.relpath(f.filename, PACKAGE)}:{f.lineno}" for f in frames]
            first[name] = " -> ".join(chain) or "outside the package"
        return None

exec(SETUP)
before = set(sys.modules)
sys.meta_path.insert(0, Watch)
t0 = time.perf_counter()
exec(STEP)
seconds = time.perf_counter() - t0
sys.meta_path.remove(Watch)
new = set(sys.modules) - before
print(json.dumps({
    "seconds": seconds,
    "modules": len(new),
    "packages": sorted({m.split(".")[0] for m in new} - set(sys.stdlib_module_names) - {"hiapi_notebook"}),
    "heavy": {h: first.get(h) for h in HEAVY if h in new},
}))
"""

SHELL = "from IPython.core.interactiveshell import InteractiveShell\nshell = InteractiveShell.instance()"
CASES = [
    ("import hiapi_notebook", "", "import hiapi_notebook"),
    ("%load_ext hiapi_notebook", SHELL, "shell.run_line_magic('load_ext', 'hiapi_notebook')"),
    ("import ipywidgets (in IPython)", SHELL, "import ipywidgets"),
    ("import ipywidgets (plain Python)", "", "import ipywidgets"),
]


def measure(setup: str, step: str) -> dict:
    given = f"ROOT = {str(ROOT)!r}\nHEAVY = {HEAVY!r}\nSETUP = {setup!r}\nSTEP = {step!r}\n"
    done = subprocess.run([sys.executable, "-c", given + CHILD], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"the child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per case (default: %(default)s)")
    runs = parser.parse_args().runs
    print(f"Python {sys.version.split()[0]}, median of {runs} fresh processes per row")
    print(f"  {'step':34} {'median':>9} {'min':>9} {'modules':>8}   heavy modules it imported")
    pulled: dict[str, dict[str, str | None]] = {}
    packages: dict[str, list[str]] = {}
    for label, setup, step in CASES:
        results = [measure(setup, step) for _ in range(runs)]
        times = [r["seconds"] * 1000 for r in results]
        heavy = results[-1]["heavy"]
        pulled[label] = heavy
        packages[label] = results[-1]["packages"]
        print(
            f"  {label:34} {statistics.median(times):6.1f} ms {min(times):6.1f} ms "
            f"{results[-1]['modules']:8d}   {', '.join(heavy) or '-'}"
        )
    for label in ("import hiapi_notebook", "%load_ext hiapi_notebook"):
        print(f"  {label}: third-party packages imported: {', '.join(packages[label]) or 'none'}")
        for module, where in pulled[label].items():
            print(f"  {label}: {module} imported through {where}")


if __name__ == "__main__":
    main()
