"""In a real kernel: the key never shows in a ``%xmode Verbose`` traceback of a refused
``HiAPI(...)``, whichever argument is refused and however the key came; a journal that
could not be opened is tried again, says so while it is off, and records once it opens."""

from __future__ import annotations

import pytest

from hiapi_notebook.journal import Journal

pytestmark = pytest.mark.kernel

SECRET = "sk-live-0b5e7d9f1a3c5e7a9c1e3b5d7f9a1c3e"
KERNEL_API_KEY = SECRET  # the kernel's HIAPI_API_KEY (see conftest.kernel_env)
IMAGE = "gpt-image-2/text-to-image"

# Every constructor argument the client refuses, with a value it refuses.
REFUSED = [
    "timeout=-1",
    "timeout=float('nan')",
    "timeout=float('inf')",
    "timeout='soon'",
    "max_retries=-1",
    "max_retries=2.5",
    "poll_interval=0",
    "max_poll_interval=float('nan')",
    "max_concurrency=0",
    "request_budget=float('nan')",
    "request_budget=-1",
    "poll_mode='sometimes'",
    "base_url='ftp://example.com'",
    "base_url='http://127.0.0.1:99999'",
]


def shown(msgs) -> str:
    """Everything a cell put on screen: streams, tracebacks, displays."""
    parts = []
    for m in msgs:
        content = m["content"]
        if m["msg_type"] == "stream":
            parts.append(content["text"])
        elif m["msg_type"] == "error":
            parts.extend(content["traceback"])
            parts.append(content["evalue"])
        elif m["msg_type"] in ("display_data", "execute_result"):
            parts.extend(str(v) for v in content["data"].values())
    return "\n".join(parts)


def test_a_refused_hiapi_shows_no_key_in_a_verbose_traceback(kernel, tmp_path):
    (tmp_path / "key.txt").write_text(SECRET + "\n")
    reply, _ = kernel.execute("%xmode Verbose\nfrom hiapi_notebook.client import HiAPI")
    assert reply["content"]["status"] == "ok"
    # The formatter does print every frame's variables: a key held by a function of the cell shows.
    control = "def connect(key):\n    return HiAPI(api_key=key, timeout=-1)\n"
    reply, msgs = kernel.execute(control + "connect(open('key.txt').read().strip())")
    assert reply["content"]["status"] == "error" and SECRET in shown(msgs)
    for argument in REFUSED:
        for cell in (
            f"HiAPI(api_key=open('key.txt').read().strip(), {argument})",  # the key as an argument
            f"HiAPI({argument})",  # the key from HIAPI_API_KEY
        ):
            reply, msgs = kernel.execute(cell)
            text = shown(msgs)
            assert reply["content"]["status"] == "error", cell
            assert "RequestValidationError" in text and "HiAPI.__init__" in text.replace("\x1b", ""), text
            for part in (SECRET, SECRET[8:24]):
                assert part not in text, (cell, text[max(0, text.find(part) - 300) : text.find(part) + 80])


def test_a_journal_that_could_not_open_is_tried_again_and_records_once_it_opens(kernel, kernel_env, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the journal's folder should be")
    home = blocked / ".hiapi"
    cell = f"%%hiapi {IMAGE}\n{{prompt}}"
    reply, _ = kernel.execute(f"%load_ext hiapi_notebook\n%hiapi config home={home}")
    assert reply["content"]["status"] == "ok"
    for attempt in range(2):  # each run while it is off says so
        kernel.execute("import time; time.sleep(1.1)")  # past the pause between tries
        reply, msgs = kernel.execute(cell.format(prompt=f"lost fox {attempt}"))
        text = shown(msgs)
        assert reply["content"]["status"] == "ok", text
        assert "journal unavailable" in text and "not recorded" in text, text
    blocked.unlink()
    blocked.mkdir()
    kernel.execute("time.sleep(1.1)")
    reply, msgs = kernel.execute(cell.format(prompt="kept fox"), timeout=90)
    text = shown(msgs)
    assert reply["content"]["status"] == "ok", text
    assert "journal open again" in text, text
    reply, msgs = kernel.execute(cell.format(prompt="kept fox"))  # recorded: the re-run sends nothing
    assert reply["content"]["status"] == "ok"
    with Journal(home / "journal.sqlite3") as journal:
        rows = journal.history(10)
    assert [r.prompt for r in rows] == ["kept fox"] and rows[0].status == "success"
    assert rows[0].files and all(f.get("path") for f in rows[0].files)
