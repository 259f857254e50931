"""Smoke test of the browser harness: JupyterLab in Chromium shows a widget that a background
thread moves after the kernel went idle, and an image output decoded to a real picture."""

import base64
import struct
import zlib

import pytest
from harness import kernel_state, open_notebook, run_all, screenshot, wait_idle, write_notebook

pytestmark = pytest.mark.browser


def png_square(size: int = 64, rgb: tuple[int, int, int] = (230, 90, 40)) -> bytes:
    """A solid-colour PNG made with the standard library only."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


CELL = """
import threading, time
import ipywidgets as widgets
from IPython.display import display

bar = widgets.IntProgress(value=0, max=5, description="smoke")
display(bar)
display({{"image/png": "{png}", "text/plain": "a square"}}, raw=True)

def work():
    for i in range(1, 6):
        time.sleep(0.8)  # the cell has long returned when the bar moves
        bar.value = i

threading.Thread(target=work, daemon=True).start()
"""

BAR_WIDTH_JS = "() => document.querySelector('.widget-hprogress .progress-bar').style.width"


def test_widget_moves_after_idle_and_image_shows(lab, page, tmp_path):
    folder = write_notebook(
        tmp_path / "smoke" / "smoke.ipynb", [CELL.format(png=base64.b64encode(png_square()).decode())]
    ).parent

    open_notebook(page, f"{lab.add_notebooks(folder)}/smoke.ipynb")
    # overrides.json changes the schema defaults the server hands out
    windowing = page.evaluate("""async () => (await window.jupyterapp.serviceManager.settings
        .fetch('@jupyterlab/notebook-extension:tracker')).schema.properties.windowingMode.default""")
    assert windowing == "none", "the Lab settings overrides are not in force"

    assert run_all(page)
    wait_idle(page)
    page.wait_for_selector(".widget-hprogress .progress-bar", state="attached")
    at_idle = page.evaluate(BAR_WIDTH_JS)
    assert at_idle != "100%", "the thread finished before the cell went idle: nothing was proven"

    # The bar keeps moving with the kernel idle and no other cell run.
    page.wait_for_function(f"() => ({BAR_WIDTH_JS})() === '100%'", timeout=30_000)
    assert kernel_state(page) == {"kernel": "idle", "busyCells": 0}
    assert page.locator(".jp-InputPrompt").first.inner_text().strip() == "[1]:"

    page.wait_for_function("""() => { const img = document.querySelector('.jp-RenderedImage img');
                                      return img && img.complete && img.naturalWidth > 0; }""")
    assert page.evaluate("() => document.querySelector('.jp-RenderedImage img').naturalWidth") == 64
    assert not page.hiapi_dialogs
    screenshot(page, "browser-smoke")
