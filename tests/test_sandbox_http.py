"""The sandbox as an HTTP server, spoken to with raw sockets: whatever arrives, the answer is
the contract's JSON envelope (never an HTML page or a stack trace), bodies are capped and may
be chunked, and idle or half-sent connections are closed instead of holding a thread."""

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from hiapi_notebook.sandbox import Faults, SandboxServer

IMAGE = "gpt-image-2/text-to-image"
AUTH = "Authorization: Bearer test-key\r\n"


def exchange(server, data: bytes, *, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send raw bytes; read one answer: (status, headers in lower case, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and hang up before reading everything
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {buffer!r}"
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the body"
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def assert_envelope(answer, status, *words, error_code=None):
    code, headers, body = answer
    assert code == status, (code, body[:300])
    assert headers["content-type"] == "application/json" and headers["x-hiapi-sandbox"] == "1"
    envelope = json.loads(body)
    assert envelope["code"] == status and envelope["data"] is None
    assert envelope["error_code"] == error_code
    assert "Traceback" not in envelope["message"] and "<html" not in body.decode().lower()
    for word in words:
        assert word in envelope["message"], envelope["message"]
    return envelope["message"]


def post(body: bytes, headers: str = "Content-Type: application/json\r\n") -> bytes:
    return (
        f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}{headers}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def still_serving(server):
    answer = httpx.get(f"{server.url}/tasks", headers={"Authorization": "Bearer test-key"})
    assert answer.status_code == 200


# -- every answer is the envelope ---------------------------------------------------------------


def test_a_body_nested_100000_deep_is_a_400(sandbox):
    body = b'{"model": "x", "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_envelope(exchange(sandbox, post(body)), 400, "nests deeper", error_code="INVALID_REQUEST")
    shallow = json.dumps({"model": IMAGE, "input": {"prompt": "x", "n": [[[[[[[[1]]]]]]]]}}).encode()
    assert exchange(sandbox, post(shallow))[0] == 200  # ordinary nesting is fine
    assert sandbox.task_count == 1
    still_serving(sandbox)


def test_nan_and_infinity_are_not_json(sandbox):
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"model": "%s", "input": {"prompt": "x", "guidance": %s}}' % (IMAGE.encode(), constant)
        assert_envelope(exchange(sandbox, post(body)), 400, "not valid JSON", error_code="INVALID_REQUEST")
    assert sandbox.task_count == 0


def test_a_70kb_header_is_a_431(sandbox):
    request = f"GET /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}X-Big: {'a' * 70_000}\r\n\r\n".encode()
    assert_envelope(exchange(sandbox, request), 431)
    many = "".join(f"X-{n}: {n}\r\n" for n in range(150))
    assert_envelope(exchange(sandbox, f"GET /v1/tasks HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()), 431)
    still_serving(sandbox)


def test_a_70kb_url_is_a_414(sandbox):
    assert_envelope(exchange(sandbox, f"GET /v1/tasks/{'a' * 70_000} HTTP/1.1\r\n\r\n".encode()), 414)


@pytest.mark.parametrize(
    "line", [b"\x00\x01\x02 garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"G E T / X\r\n\r\n"]
)
def test_garbage_on_the_request_line_is_an_envelope(sandbox, line):
    code, _, _ = answer = exchange(sandbox, line)
    assert code in (400, 505)
    assert_envelope(answer, code)
    still_serving(sandbox)


def test_options_and_unknown_methods(sandbox):
    options = exchange(sandbox, b"OPTIONS /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_envelope(options, 405, "OPTIONS is not allowed")
    assert options[1]["allow"] == "GET, POST"
    assert_envelope(exchange(sandbox, b"BREW /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n"), 501)


# -- bodies: capped, chunked, typed ---------------------------------------------------------------


def test_a_content_length_of_a_terabyte_is_refused_before_reading(sandbox):
    request = f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {10**12}\r\n\r\n".encode()
    started = time.monotonic()
    message = assert_envelope(exchange(sandbox, request), 413, "over the limit")
    assert str(10**12) in message and time.monotonic() - started < 5
    still_serving(sandbox)


def test_the_body_limit_is_set_per_server(sandbox_factory):
    small = sandbox_factory(max_body_bytes=1000)
    body = json.dumps({"model": IMAGE, "input": {"prompt": "x" * 2000}}).encode()
    assert_envelope(exchange(small, post(body)), 413, "over the limit of 1000 bytes")
    assert small.task_count == 0


@pytest.mark.parametrize("length", ["-5", "abc", "1e3", "5, 5"])
def test_a_content_length_that_is_not_a_number_is_a_400(sandbox, length):
    request = f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {length}\r\n\r\n{{}}".encode()
    assert_envelope(exchange(sandbox, request), 400, "Content-Length")


@pytest.mark.parametrize(
    "content_type, status",
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=utf-8", 200),
        ("application/vnd.hiapi+json", 200),
    ],
)
def test_the_content_type_must_be_json(sandbox, content_type, status):
    body = json.dumps({"model": IMAGE, "input": {"prompt": "typed"}}).encode()
    answer = exchange(sandbox, post(body, f"Content-Type: {content_type}\r\n"))
    if status == 415:
        assert_envelope(answer, 415, "Content-Type must be application/json")
    else:
        assert answer[0] == 200, answer
    assert sandbox.task_count == (1 if status == 200 else 0)


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def test_a_chunked_body_is_read_whole(sandbox):
    body = json.dumps({"model": IMAGE, "input": {"prompt": "sent in chunks"}}).encode()
    head = f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
    request = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body)
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
        sock.sendall(request)
        code, _, created = read_answer(sock)
        sock.sendall(f"GET /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode())  # same connection
        listed = read_answer(sock)
    assert code == 200 and json.loads(created)["data"]["taskId"]
    assert listed[0] == 200 and json.loads(listed[2])["data"]["total"] == 1
    assert sandbox.last_inputs[0]["input"] == {"prompt": "sent in chunks"}


@pytest.mark.parametrize(
    "encoding_headers, body, status, words",
    [
        ("Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n", 400, "not hexadecimal"),
        ("Transfer-Encoding: chunked\r\n", b"3\r\nabcdef\r\n0\r\n\r\n", 400, "longer than its size"),
        ("Transfer-Encoding: gzip\r\n", b"", 501, "not supported"),
        ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n", 400, "not both"),
    ],
)
def test_a_body_that_cannot_be_read_is_refused(sandbox, encoding_headers, body, status, words):
    request = f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}{encoding_headers}\r\n".encode() + body
    assert_envelope(exchange(sandbox, request), status, words)
    assert sandbox.task_count == 0


def test_a_chunked_body_over_the_limit_is_a_413(sandbox_factory):
    small = sandbox_factory(max_body_bytes=100)
    request = f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n".encode()
    assert_envelope(exchange(small, request + chunked(b"x" * 500, 50)), 413, "over the limit")


# -- idle and half-sent connections --------------------------------------------------------------


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it hangs up (asserting it does, in time)."""
    sock.settimeout(seconds)
    received = b""
    started = time.monotonic()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
        assert time.monotonic() - started < seconds


def test_idle_and_half_sent_connections_are_closed(sandbox_factory):
    server = sandbox_factory(idle_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        assert closed_within(idle, 3) == b""
    with socket.create_connection(("127.0.0.1", server.port)) as half_headers:
        half_headers.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n")
        assert closed_within(half_headers, 3) == b""
    with socket.create_connection(("127.0.0.1", server.port)) as half_body:
        half_body.sendall(post(b'{"model": "x"}')[:-5])
        answer = closed_within(half_body, 3)
    assert b" 408 " in answer.split(b"\r\n")[0] and b'"code": 408' in answer
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}) as client:
        assert client.get("/tasks").status_code == 200
        time.sleep(1.0)  # the server closed the kept-alive connection meanwhile
        assert client.get("/tasks").status_code == 200  # a client's pool opens another


def test_a_hundred_idle_connections_do_not_keep_their_threads(sandbox_factory):
    server = sandbox_factory(idle_timeout=1.0)
    before = threading.active_count()
    sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
    try:
        peak, deadline = 0, time.monotonic() + 3
        while peak < before + 50 and time.monotonic() < deadline:
            peak = max(peak, threading.active_count())
            time.sleep(0.01)
        assert peak >= before + 50  # the server did take them on, a thread each
        deadline = time.monotonic() + 10
        while threading.active_count() > before + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= before + 5
        assert all(closed_within(sock, 1) == b"" for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    still_serving(server)


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, words",
    [
        ({"speed": float("nan")}, "speed must be a positive number"),
        ({"speed": 0}, "speed must be a positive number"),
        ({"url_ttl": float("nan")}, "url_ttl"),
        ({"idle_timeout": float("nan")}, "idle_timeout"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"balance": float("nan")}, "balance"),
        ({"faults": Faults(rate_429=float("nan"))}, "rate_429 must be a fraction from 0 to 1"),
        ({"faults": Faults(rate_download=2)}, "rate_download"),
        ({"faults": Faults(retry_after=float("inf"))}, "retry_after"),
    ],
)
def test_sandbox_options_are_checked(options, words):
    with pytest.raises(ValueError, match=words):
        SandboxServer(**options)


@pytest.mark.parametrize("argument", [["--speed", "nan"], ["--rate-429", "1.5"], ["--max-body-mb", "inf"]])
def test_the_cli_refuses_bad_options_in_one_line(argument):
    done = subprocess.run(
        [sys.executable, "-m", "hiapi_notebook.sandbox", "--port", "0", *argument],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
