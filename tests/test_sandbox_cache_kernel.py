"""The built-in sandbox is one server to the cache: each kernel starts its own on a free
port, and a re-run in a new kernel is still answered from the journal (nothing sent),
while a real base URL keys the cache as before."""

import sqlite3

import pytest
from kernel_harness import execute, kernel_python, start_kernel, stop_kernel

from hiapi_notebook.journal import open_journal
from hiapi_notebook.session import SANDBOX_SERVER, Session

pytestmark = pytest.mark.kernel
FOX = "%%hiapi gpt-image-2/text-to-image --aspect_ratio 16:9 -o fox\nA red fox in fresh snow"
WOODCUT = "%%hiapi gpt-image-2/image-to-image --input_urls fox -o woodcut\nAs a woodcut print"


def text_of(msgs) -> str:
    return " ".join(
        str(m["content"].get("text", "")) + str(m["content"].get("data", {}).get("text/plain", ""))
        for m in msgs
    )


def run_in_new_kernel(folder, cells):
    """A kernel of its own in ``folder``, its own built-in sandbox; the cells' outputs."""
    km, kc = start_kernel(
        kernel_python("ipykernel7"), env={"IPYTHONDIR": str(folder / ".ipython")}, cwd=folder
    )
    try:
        outputs = []
        for code in ["%load_ext hiapi_notebook\n%hiapi connect", *cells]:
            reply, msgs = execute(kc, code, timeout=120)
            assert reply["content"]["status"] == "ok", (code, text_of(msgs))
            outputs.append(text_of(msgs))
        return outputs
    finally:
        stop_kernel(km, kc)


def rows(folder) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / ".hiapi" / "journal.sqlite3") as conn:
        return conn.execute("SELECT model, status FROM submissions ORDER BY id").fetchall()


def test_a_new_kernel_reuses_the_sandbox_results_of_the_last(tmp_path, monkeypatch):
    for name in ("HIAPI_API_KEY", "HIAPI_BASE_URL", "HIAPI_HOME", "HIAPI_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HIAPI_SANDBOX_SPEED", "20")
    monkeypatch.setenv("HIAPI_SANDBOX_DETAIL", "fast")
    monkeypatch.setenv("HIAPI_POLL_INTERVAL", "0.05")
    connect, fox = run_in_new_kernel(tmp_path, [FOX])
    first_url = connect.split("sandbox at ")[1].split(":")[2]
    assert "cached" not in fox
    assert rows(tmp_path) == [("gpt-image-2/text-to-image", "success")]

    connect, fox, woodcut, port = run_in_new_kernel(
        tmp_path, [FOX, WOODCUT, "import os; os.environ['HIAPI_BASE_URL']"]
    )
    assert first_url not in port  # another sandbox, on another port
    assert "cached" in fox  # answered from the journal: no second task
    # the earlier sandbox's output URL died with it: its local copy was sent instead
    assert "success" in woodcut and "error" not in woodcut.lower()
    assert rows(tmp_path) == [
        ("gpt-image-2/text-to-image", "success"),
        ("gpt-image-2/image-to-image", "success"),
    ]


def test_a_real_base_url_still_keys_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIAPI_SANDBOX", "1")  # set by `make lab`: only a loopback URL is a sandbox
    session = Session()
    session.configure(base_url="https://api.example.org/v1", api_key="k", home=str(tmp_path))
    assert session.cache_server == "https://api.example.org/v1"
    session.configure(base_url="http://127.0.0.1:8787/v1")
    assert session.cache_server == SANDBOX_SERVER
    monkeypatch.delenv("HIAPI_SANDBOX")
    assert session.cache_server == "http://127.0.0.1:8787/v1"  # a loopback server not said to be one
    journal = open_journal(tmp_path)
    real, _ = journal.claim("m", {"prompt": "p"}, server="https://api.example.org/v1")
    other, new = journal.claim("m", {"prompt": "p"}, server="https://other.example.org/v1")
    assert new and other.id != real.id
