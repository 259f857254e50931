"""Google Colab, reproduced by its constraints: its pinned packages (``tests/colab/colab-runtime.txt``,
from Colab's own published list) in ``.venv-colab`` on Python 3.13, and a kernel whose shell is a
``ZMQInteractiveShell`` subclass named ``Shell`` with ``google.colab`` imported
(``tests/colab/colab_kernel.py``).

``pip install hiapi-notebook`` there must change none of the pins: Colab asks for a runtime
restart when IPython or ipykernel change and warns that it can crash. The kernel tests that
matter run there too (``@with_colab`` in test_magic_kernel, test_widgets_kernel, the journal
test, every notebook in test_notebooks); this file checks the venv and the kernel themselves.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from kernel_harness import COLAB, ROOT, colab_python

pytestmark = pytest.mark.kernel
PINS_FILE = ROOT / "tests" / "colab" / "colab-runtime.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    """{name: version} of every ``name==version`` line."""
    found = {}
    for line in PINS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[canonical(name)] = version.strip()
    return found


def installed(python: str) -> dict[str, str]:
    done = subprocess.run(
        [python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {canonical(p["name"]): p["version"] for p in json.loads(done.stdout)}


def test_the_pins_are_colabs_own_list():
    found = pins()
    assert found["ipython"] == "7.34.0" and found["ipywidgets"] == "7.7.1"
    assert found["ipykernel"] == "6.17.1" and found["traitlets"] == "5.7.1"
    assert len(found) >= 30


def test_the_venv_holds_exactly_the_pins_with_the_package_installed():
    """After `make test` installed the package into it: every pin as Colab has it."""
    python = colab_python()
    version = subprocess.run([python, "--version"], capture_output=True, text=True).stdout
    assert version.startswith("Python 3.13"), version
    have = installed(python)
    assert "hiapi-notebook" in have
    changed = {name: (want, have.get(name)) for name, want in pins().items() if have.get(name) != want}
    assert changed == {}, f"pinned packages that differ (pin, installed): {changed}"


def test_installing_the_package_changes_no_pin(tmp_path):
    """What ``pip install hiapi-notebook[sandbox]`` would do in Colab's set, from pip's own report."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            colab_python(),
            *("-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check"),
            *("--report", str(report), f"{ROOT}[sandbox]"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    would = {
        canonical(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert "hiapi-notebook" in would, would
    pinned = pins()
    changed = {name: (pinned[name], version) for name, version in would.items() if name in pinned}
    assert changed == {}, f"the install would change these pins (pin, new): {changed}"
    assert set(would) == {"hiapi-notebook"}, (
        f"it would also install {sorted(set(would) - {'hiapi-notebook'})}"
    )


@pytest.mark.parametrize("kernel", [COLAB], indirect=True)
def test_the_kernel_is_what_colab_runs(kernel):
    """Colab's shell class, Colab's module, Colab's versions; and the package sees Colab."""
    reply, msgs = kernel.execute(
        "import sys, IPython, ipywidgets, traitlets, ipykernel\n"
        "from hiapi_notebook.views import frontend\n"
        "print(type(get_ipython()).__name__, 'google.colab' in sys.modules, IPython.__version__,\n"
        "      ipywidgets.__version__, traitlets.__version__, ipykernel.__version__,\n"
        "      frontend.detect(), frontend.use_widgets(), frontend.files_resolve())"
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream").split()
    assert text == ["Shell", "True", "7.34.0", "7.7.1", "5.7.1", "6.17.1", "colab", "True", "False"], text
    assert Path(kernel.python).parent.parent.name == ".venv-colab"
