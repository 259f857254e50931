"""Text lines for a terminal. Status lines of a ``--no-wait`` task arrive from the
background loop while terminal IPython waits for input: written straight to the
terminal they land in the middle of what the user is typing. While a
prompt_toolkit prompt runs they go through its ``run_in_terminal`` instead, which
clears the prompt, prints, and draws the prompt again with the typed text intact.

Order is kept and nothing is dropped: lines written while a prompt runs queue up
for one writer thread, which hands each batch to the prompt's event loop and, if
the prompt ends before that loop gets to it, writes the batch itself.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any

_lock = threading.Lock()
_pending: deque[_Batch] = deque()  # batches waiting for the writer, in order
_wakeup = threading.Condition(_lock)
_writer: threading.Thread | None = None


class _Batch:
    """Text that exactly one of two writers (the prompt's loop, or ours) writes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._claimed = False
        self._claim_lock = threading.Lock()
        self.written = threading.Event()

    def claim(self) -> bool:
        with self._claim_lock:
            if self._claimed:
                return False
            self._claimed = True
            return True


def print_lines(lines: list[str]) -> None:
    """Print ``lines`` above the prompt if one is running, else to ``sys.stdout``."""
    if not lines:
        return
    text = "".join(f"{line}\n" for line in lines)
    with _lock:
        if not _pending and prompt_app() is None:
            _write_plain(text)
            return
        _pending.append(_Batch(text))
        _start_writer()
        _wakeup.notify()


def prompt_app() -> Any | None:
    """The prompt_toolkit application of terminal IPython, if it is waiting for input."""
    shell_module = sys.modules.get("IPython")
    if shell_module is None:
        return None
    shell = shell_module.get_ipython()
    app = getattr(getattr(shell, "pt_app", None), "app", None)
    if app is None or not getattr(app, "is_running", False) or getattr(app, "loop", None) is None:
        return None
    return app


def _write_plain(text: str) -> None:
    # sys.stdout as it is now: a cell's own output capture, or the terminal.
    sys.stdout.write(text)
    sys.stdout.flush()


def _start_writer() -> None:
    global _writer
    if _writer is None or not _writer.is_alive():
        _writer = threading.Thread(target=_write_forever, name="hiapi-notebook-console", daemon=True)
        _writer.start()


def _write_forever() -> None:
    while True:
        with _lock:
            while not _pending:
                _wakeup.wait()
            batch = _pending[0]
        _deliver(batch)
        with _lock:
            _pending.popleft()


def _deliver(batch: _Batch) -> None:
    """Above the prompt while it runs; plainly once it has ended."""
    while True:
        app = prompt_app()
        if app is None:
            if batch.claim():
                _write_plain(batch.text)
            return
        loop = app.loop
        try:
            loop.call_soon_threadsafe(_in_prompt_loop, app, batch)
        except RuntimeError:  # the prompt's loop closed under us: it has ended
            continue
        # A prompt that ends before its loop runs the call leaves the batch to us.
        while not batch.written.wait(0.2):
            now = prompt_app()
            if now is None or now.loop is not loop:
                break
        if batch.written.is_set():
            return


def _in_prompt_loop(app: Any, batch: _Batch) -> None:
    from prompt_toolkit.application import run_in_terminal

    def write() -> None:
        if batch.claim():
            output = app.output
            output.enable_autowrap()
            output.write_raw(batch.text)
            output.flush()
        batch.written.set()

    run_in_terminal(write, in_executor=False)
