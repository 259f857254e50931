"""The journal on real SQLite files: claim and reuse, events, exports, processes, bad files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hiapi_notebook.journal import (
    DEFAULT_OUTPUTS_DIR,
    SCHEMA_VERSION,
    Journal,
    JournalUnavailable,
    Record,
    local_output_path,
    open_journal,
    request_hash,
)
from hiapi_notebook.models import Task

REPO = Path(__file__).resolve().parents[1]
PROMPT = {"prompt": "a red fox in snow", "aspect_ratio": "16:9"}


def success_task(task_id: str, completed: int = 1777800799) -> Task:
    return Task.from_dict(
        {
            "taskId": task_id,
            "model": "gpt-image-2",
            "status": "success",
            "created": completed - 30,
            "completed": completed,
            "storage": "temp",
            "output": [
                {"url": "https://cdn.example/0.png", "type": "image", "expireAt": completed + 86400},
                "not an object",
            ],
            "secretish": "unknown fields are not stored",
        }
    )


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


# -- request_hash ---------------------------------------------------------------------------


def test_hash_ignores_key_order_and_handles_unicode():
    a = request_hash("m", {"prompt": "雪の中の狐 🦊", "n": 1, "opts": {"x": 1, "y": 2}})
    b = request_hash("m", {"opts": {"y": 2, "x": 1}, "n": 1, "prompt": "雪の中の狐 🦊"})
    assert a == b and len(a) == 64


def test_hash_distinguishes_every_part_of_the_request():
    base = request_hash("m", PROMPT)
    assert base != request_hash("m2", PROMPT)
    assert base != request_hash("m", {**PROMPT, "prompt": "a blue fox"})
    assert base != request_hash("m", PROMPT, route="fast")
    assert base != request_hash("m", PROMPT, storage="persistent")


def test_hash_is_stable_across_processes():
    code = (
        "from hiapi_notebook.journal import request_hash; "
        "print(request_hash('m', {'b': 'é', 'a': [1, 2]}, route='r'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert out == request_hash("m", {"a": [1, 2], "b": "é"}, route="r")


# -- claim ----------------------------------------------------------------------------------


def test_first_claim_inserts_a_pending_row(journal):
    rec, created = journal.claim("gpt-image-2", PROMPT, label="cell 3", cost=0.04)
    assert created
    assert isinstance(rec, Record)
    assert rec.status == "pending" and rec.task_id is None and rec.variant == 0
    assert rec.idempotency_key.startswith("hnb-") and len(rec.idempotency_key) == 36
    assert rec.request_hash == request_hash("gpt-image-2", PROMPT)
    assert rec.input == PROMPT and rec.label == "cell 3" and rec.cost_estimate == 0.04
    assert rec.events == [] and rec.elapsed is None and not rec.is_terminal


def test_unanswered_create_is_reclaimed_with_its_idempotency_key(journal):
    first, _ = journal.claim("m", PROMPT, idempotency_key="hnb-given")
    again, created = journal.claim("m", dict(reversed(PROMPT.items())))
    assert not created and again.id == first.id and again.idempotency_key == "hnb-given"


def test_in_flight_task_is_reused_for_reattach(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.set_task_id(rec.id, "tk-hiapi-1")
    journal.record_status(rec.id, "handling")
    again, created = journal.claim("m", PROMPT)
    assert not created and again.task_id == "tk-hiapi-1" and again.status == "handling"


def test_success_is_reused_as_cached_result(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.set_task_id(rec.id, "tk-hiapi-1")
    journal.record_result(rec.id, success_task("tk-hiapi-1"))
    again, created = journal.claim("m", PROMPT)
    assert not created and again.id == rec.id and again.succeeded


def test_failed_task_is_never_reused(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.set_task_id(rec.id, "tk-hiapi-1")
    journal.record_result(
        rec.id,
        Task.from_dict(
            {
                "taskId": "tk-hiapi-1",
                "status": "fail",
                "completed": 5,
                "error": {"code": "TASK_FAILED", "message": "rejected"},
            }
        ),
    )
    again, created = journal.claim("m", PROMPT)
    assert created and again.id != rec.id and again.idempotency_key != rec.idempotency_key


def test_refused_create_is_not_resent(journal):
    rec, _ = journal.claim("m", PROMPT)
    failed = journal.record_error(rec.id, "INVALID_REQUEST", "unknown field")
    assert failed.status == "fail" and failed.error == {"code": "INVALID_REQUEST", "message": "unknown field"}
    assert journal.claim("m", PROMPT)[1]


def test_fresh_always_inserts_and_newest_reusable_wins(journal):
    old, _ = journal.claim("m", PROMPT)
    journal.record_result(old.id, success_task("tk-hiapi-old"))
    new, created = journal.claim("m", PROMPT, fresh=True)
    assert created and new.id != old.id
    assert journal.claim("m", PROMPT)[0].id == new.id


def test_variants_are_distinct_results(journal):
    ids = {journal.claim("m", PROMPT, variant=v)[0].id for v in range(3)}
    assert len(ids) == 3
    again, created = journal.claim("m", PROMPT, variant=1)
    assert not created and again.variant == 1


# -- recording ------------------------------------------------------------------------------


def test_status_events_are_appended_once_each(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.set_task_id(rec.id, "tk-hiapi-1")
    journal.set_task_id(rec.id, "tk-hiapi-1")  # an idempotent replay answers the same id
    steps = [("queued", 10.0), ("queued", 11.0), ("handling", 12.0), ("archiving", 20.0)]
    for status, at in steps:
        journal.record_status(rec.id, status, at=at)
    rec = journal.get(rec.id)
    assert [s for _, s in rec.events] == ["submitted", "queued", "handling", "archiving"]
    assert rec.events[1:] == [(10.0, "queued"), (12.0, "handling"), (20.0, "archiving")]
    assert rec.status == "archiving" and rec.submitted_at is not None


def test_a_finished_task_is_not_pulled_back_by_a_late_poll(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.record_result(rec.id, success_task("tk-hiapi-1"))
    assert journal.record_status(rec.id, "handling").status == "success"


def test_result_stores_outputs_error_and_times_but_not_raw(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.set_task_id(rec.id, "tk-hiapi-1")
    done = journal.record_result(rec.id, success_task("tk-hiapi-1", completed=int(time.time())))
    assert done.outputs == [
        {"url": "https://cdn.example/0.png", "type": "image", "expireAt": done.completed_at + 86400}
    ]
    assert done.error is None and done.is_terminal and done.events[-1][1] == "success"
    assert done.elapsed is not None and done.elapsed >= 0
    with sqlite3.connect(journal.path) as raw:
        dump = "\n".join(raw.iterdump())
    assert "unknown fields are not stored" not in dump


def test_result_fills_in_a_missing_task_id(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.record_result(rec.id, success_task("tk-hiapi-late"))
    assert journal.find_task("tk-hiapi-late").id == rec.id
    assert journal.find_task("tk-hiapi-nope") is None


def test_files_merge_by_index(journal):
    rec, _ = journal.claim("m", PROMPT)
    journal.record_files(rec.id, [{"index": 1, "path": "b.png", "sha256": "bb", "bytes": 2}])
    journal.record_files(
        rec.id,
        [
            {"index": 0, "path": "a.png", "sha256": "aa", "bytes": 1},
            {"index": 1, "path": "b2.png", "sha256": "cc", "bytes": 3},
        ],
    )
    assert [f["path"] for f in journal.get(rec.id).files] == ["a.png", "b2.png"]


def test_unknown_record_is_a_key_error(journal):
    assert journal.get(999) is None
    with pytest.raises(KeyError):
        journal.record_status(999, "queued")


# -- reading --------------------------------------------------------------------------------


def test_history_is_newest_first(journal):
    ids = [journal.claim("m", {"prompt": f"p{i}"})[0].id for i in range(5)]
    assert [r.id for r in journal.history()] == ids[::-1]
    assert [r.id for r in journal.history(limit=2)] == ids[:-3:-1]
    assert journal.history()[0].prompt == "p4"


def test_rows_are_flat_and_json_able(journal):
    rec, _ = journal.claim("m", {"prompt": "p", "image_urls": ["https://x/a.png"]}, label="c1")
    journal.set_task_id(rec.id, "tk-hiapi-1")
    journal.record_result(rec.id, success_task("tk-hiapi-1"))
    journal.record_files(rec.id, [{"index": 0, "path": "hiapi-outputs/tk-hiapi-1/0-image.png"}])
    journal.claim("m", {"prompt": "q"})
    rows = journal.rows()
    json.dumps(rows)
    first = rows[0]
    assert first["status"] == "success" and first["task_id"] == "tk-hiapi-1"
    assert first["input.prompt"] == "p"
    assert json.loads(first["input.image_urls"]) == ["https://x/a.png"]
    assert first["output_urls"] == ["https://cdn.example/0.png"]
    assert first["local_files"] == ["hiapi-outputs/tk-hiapi-1/0-image.png"]
    assert rows[1]["status"] == "pending" and rows[1]["n_outputs"] == 0


def test_export_writes_a_manifest(journal, tmp_path):
    rec, _ = journal.claim("gpt-image-2", PROMPT, route="fast")
    journal.set_task_id(rec.id, "tk-hiapi-1")
    journal.record_status(rec.id, "queued")
    journal.record_result(rec.id, success_task("tk-hiapi-1", completed=int(time.time()) + 1))
    journal.record_files(
        rec.id,
        [
            {
                "index": 0,
                "url": "https://cdn.example/0.png",
                "path": "hiapi-outputs/tk-hiapi-1/0-image.png",
                "sha256": "ab" * 32,
                "bytes": 1234,
                "content_type": "image/png",
            }
        ],
    )
    journal.claim("m", {"prompt": "not exported"})

    out = journal.export(tmp_path / "report" / "manifest.json", [journal.get(rec.id)])
    manifest = json.loads(out.read_text(encoding="utf-8"))
    assert manifest["journal"] == "../journal.sqlite3" and manifest["generated_at"]
    [entry] = manifest["results"]
    assert entry["request"] == {
        "model": "gpt-image-2",
        "route": "fast",
        "storage": None,
        "input": PROMPT,
        "variant": 0,
        "hash": request_hash("gpt-image-2", PROMPT, route="fast"),
    }
    assert entry["task_id"] == "tk-hiapi-1" and entry["status"] == "success"
    assert entry["idempotency_key"] == rec.idempotency_key
    assert entry["outputs"][0]["url"] == "https://cdn.example/0.png"
    assert entry["files"] == [
        {"index": 0, "path": "hiapi-outputs/tk-hiapi-1/0-image.png", "sha256": "ab" * 32, "bytes": 1234}
    ]
    assert entry["created_at"] and entry["submitted_at"] and entry["completed_at"]
    assert set(entry["timings"]["in_status_s"]) == {"submitted", "queued"}
    assert entry["timings"]["total_s"] >= 0

    everything = json.loads(journal.export(tmp_path / "all.json").read_text(encoding="utf-8"))
    assert [r["request"]["input"]["prompt"] for r in everything["results"]] == [
        PROMPT["prompt"],
        "not exported",
    ]


# -- several processes ----------------------------------------------------------------------

CLAIMER = """
import sys, time
from hiapi_notebook.journal import Journal
path, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
with Journal(path) as j:
    rec, created = j.claim("m", {"prompt": "same", "n": 1})
print(rec.id, int(created))
"""


def test_concurrent_processes_claiming_the_same_request_share_one_row(tmp_path):
    path = tmp_path / "shared.sqlite3"  # not created yet: the schema set-up races too
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.time() + 1.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        results.append(tuple(int(x) for x in out.split()))
    assert len({rec_id for rec_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with Journal(path) as j:
        assert len(j.rows()) == 1


# -- bad files ------------------------------------------------------------------------------


def test_corrupt_file_gives_one_clear_line(tmp_path):
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not sqlite at all \x00\xff" * 200)
    with pytest.raises(JournalUnavailable) as info:
        Journal(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "delete it" in message and "HIAPI_HOME" in message


def test_locked_database_gives_journal_unavailable(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path, timeout=0.1)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalUnavailable, match="locked by another process") as info:
            journal.claim("m", PROMPT)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
        with pytest.raises(JournalUnavailable, match="locked"):
            Journal(path, timeout=0.1)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert journal.claim("m", PROMPT)[1]  # usable again once the lock is gone
    journal.close()


def test_newer_schema_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    raw.close()
    with pytest.raises(JournalUnavailable, match="upgrade the package"):
        Journal(path)


def test_unwritable_home_gives_journal_unavailable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(JournalUnavailable, match="HIAPI_HOME"):
        open_journal(blocker / "home")


# -- where things live ----------------------------------------------------------------------


def test_hiapi_home_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("HIAPI_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    with open_journal() as j:
        assert j.path == tmp_path / "elsewhere" / "journal.sqlite3" and j.path.exists()


def test_default_home_is_dot_hiapi_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HIAPI_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    with open_journal() as j:
        assert j.path == tmp_path / ".hiapi" / "journal.sqlite3"
    with open_journal(tmp_path / "given") as j:
        assert j.path == tmp_path / "given" / "journal.sqlite3"


def test_local_output_path_is_deterministic_and_contained():
    base = Path(DEFAULT_OUTPUTS_DIR)
    first = local_output_path(base, "tk-hiapi-1", 0, "image", "image/png")
    assert first == base / "tk-hiapi-1" / "0-image.png"
    frame = local_output_path(base, "tk-hiapi-1", 1, "first_frame", "image/jpeg; q=1")
    assert frame.name == "1-first_frame.jpg"
    assert local_output_path(base, "t", 0, "video", "video/quicktime").suffix == ".mov"
    assert local_output_path(base, "t", 0, "audio", "audio/mpeg").suffix == ".mp3"
    assert local_output_path(base, "t", 0, "x", None).suffix == ".bin"
    sneaky = local_output_path(base, "../../etc", 0, "../x", "image/png")
    assert sneaky.parent.parent == base and ".." not in sneaky.parts


# -- a journal that cannot be written still serves what it holds -------------------------------

READ_ONLY_RUN = """
import json, sys
from hiapi_notebook.api import generate
from hiapi_notebook.session import reset_session

url, home = sys.argv[1], sys.argv[2]
session = reset_session()
session.configure(base_url=url, api_key="k", home=home, poll_interval=0.02)
old = generate("a fox kept read-only", model="gpt-image-2/text-to-image", show=False)
new = generate("a fox never recorded", model="gpt-image-2/text-to-image", show=False)
print(json.dumps({
    "read_only": session.journal.read_only,
    "old": [old.cached, old.task_id, old.outputs[0].path.is_file()],
    "new": [new.cached, new.status],
}))
"""


def _as_a_user_who_cannot_write(command: list[str]) -> list[str]:
    """Root writes anywhere; without the capability that allows it, file modes apply to it too."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made here")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]


def test_a_read_only_journal_serves_its_results_and_pays_nothing_again(session, sandbox, tmp_path):
    from hiapi_notebook.api import generate
    from hiapi_notebook.session import reset_session

    home = tmp_path / "shared-results"
    session.configure(home=str(home))
    first = generate("a fox kept read-only", model="gpt-image-2/text-to-image", show=False)
    assert first.outputs[0].path.is_file()
    reset_session()  # closes the journal: its -wal and -shm files go away
    for path in home.iterdir():
        path.chmod(0o444)
    home.chmod(0o555)
    try:
        done = subprocess.run(
            _as_a_user_who_cannot_write([sys.executable, "-c", READ_ONLY_RUN, sandbox.url, str(home)]),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HIAPI_NOTEBOOK_DISPLAY": "text"},
        )
    finally:
        home.chmod(0o755)
        for path in home.iterdir():
            path.chmod(0o644)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["read_only"] is True
    assert result["old"] == [True, first.task_id, True]  # served from the journal, not paid again
    assert result["new"] == [False, "success"]  # still works, unrecorded, and says so once
    assert sandbox.task_count == 2
    assert "read-only" in done.stderr and "this task is not recorded" in done.stderr
    assert "Traceback" not in done.stderr


def test_writes_to_a_read_only_journal_say_so_in_one_line(tmp_path):
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        rec, _ = j.claim("m", PROMPT)
    code = (
        "import sys\n"
        "from hiapi_notebook.journal import Journal, JournalUnavailable\n"
        "j = Journal(sys.argv[1])\n"
        "rec, new = j.claim('m', {'prompt': 'a red fox in snow', 'aspect_ratio': '16:9'})\n"
        "print(j.read_only, rec.id, new)\n"
        "writes = (lambda: j.claim('m', {'prompt': 'other'}), lambda: j.record_status(rec.id, 'queued'))\n"
        "for attempt in writes:\n"
        "    try:\n"
        "        attempt()\n"
        "    except JournalUnavailable as exc:\n"
        "        print(exc)\n"
    )
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        done = subprocess.run(
            _as_a_user_who_cannot_write([sys.executable, "-c", code, str(path)]),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)
    assert done.returncode == 0, done.stderr
    first, *errors = done.stdout.strip().splitlines()
    assert first == f"True {rec.id} False"
    assert len(errors) == 2 and all("is read-only" in e and "HIAPI_HOME" in e for e in errors)


# -- export: one clear line, nothing left behind -------------------------------------------------


@pytest.mark.parametrize("where", ["folder", "folder-slash", "missing-slash"])
def test_export_to_a_folder_is_one_clear_line(journal, tmp_path, where):
    from hiapi_notebook.errors import RequestValidationError

    target = {
        "folder": str(tmp_path),
        "folder-slash": str(tmp_path) + "/",
        "missing-slash": str(tmp_path / "reports") + "/",
    }[where]
    with pytest.raises(RequestValidationError) as info:
        journal.export(target)
    message = str(info.value)
    assert "\n" not in message and "it is a folder; give a file name" in message
    assert not list(tmp_path.rglob("*.partial")) and not (tmp_path / "reports").exists()


def test_export_that_cannot_be_written_is_one_line_and_leaves_nothing(journal, tmp_path):
    from hiapi_notebook.errors import HiAPIError

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(HiAPIError) as info:
        journal.export(blocker / "report" / "manifest.json")
    assert "\n" not in str(info.value) and "cannot write" in str(info.value)
    before = set(tmp_path.iterdir())
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "manifest.json.partial").mkdir()  # the temporary name is in the way
    with pytest.raises(HiAPIError, match="cannot write"):
        journal.export(tmp_path / "taken" / "manifest.json")
    assert set(tmp_path.iterdir()) == before | {tmp_path / "taken"}
    assert not (tmp_path / "taken" / "manifest.json").exists()
