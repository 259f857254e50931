"""A script gets script words: a cached re-run offers ``fresh=True`` (a notebook's
``--fresh`` is an option no script has), and a too-big input names the environment variable."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

from PIL import Image

SCRIPT = textwrap.dedent(
    """
    import hiapi_notebook as hn
    for _ in range(2):
        hn.generate("a lighthouse at dusk", model="gpt-image-2/text-to-image")
    try:
        hn.generate("too big", model="gpt-image-2/image-to-image", input_urls="big.png")
    except hn.errors.HiAPIError as exc:
        print("refused:", exc)
    """
)


def test_a_script_is_told_fresh_true_and_the_environment_variable(sandbox, tmp_path):
    picture = io.BytesIO()
    Image.new("RGB", (8, 8)).save(picture, format="PNG")
    (tmp_path / "big.png").write_bytes(picture.getvalue() + bytes(2 * 2**20))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "HIAPI_BASE_URL": sandbox.url,
            "HIAPI_API_KEY": "k",
            "HIAPI_POLL_INTERVAL": "0.05",
            "HIAPI_MAX_INPUT_MB": "1",
        },
    )
    assert done.returncode == 0, done.stderr
    cached = [line for line in done.stdout.splitlines() if "cached" in line]
    assert cached and all("fresh=True to run again" in line for line in cached), done.stdout
    assert "--fresh" not in done.stdout and "%hiapi" not in done.stdout
    assert "over the 1 MB limit per input (HIAPI_MAX_INPUT_MB=N raises it)" in done.stdout
    assert sandbox.task_count == 1


def test_a_cell_is_told_its_option(ip, sandbox, capsys):
    for _ in range(2):
        ip.run_cell_magic("hiapi", "gpt-image-2/text-to-image", "a lighthouse at dusk")
    shown = capsys.readouterr().out
    assert "--fresh to run again" in shown and "fresh=True" not in shown
    assert sandbox.task_count == 1
