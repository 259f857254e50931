"""The HTTP side: a threading server from the standard library, faults applied per request.

Whatever arrives, the answer is the contract's JSON envelope, never an HTML error page or a
stack trace: a malformed request line, an oversized header, an unknown method, a body over
``max_body_bytes`` (413, refused before it is read), a body that is not JSON. Bodies may come
with ``Content-Length`` or ``Transfer-Encoding: chunked``. A connection that sends nothing for
``idle_timeout`` seconds, between requests or halfway through one, is closed, so idle and
half-sent connections do not each hold a thread.
"""

from __future__ import annotations

import math
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from .api import SandboxApi
from .detail import default_detail
from .faults import STATUS_FAULTS, Fault, FaultPlan, Faults
from .kept import BIG_BODY, give_back
from .limit import RateLimit
from .media import extra_note
from .wire import ApiError, Call, Response

_FAULT_ANSWERS = {
    "429": ("rate limit exceeded (sandbox fault)", None),
    "500": ("internal server error (sandbox fault)", None),
    "503": ("the platform is busy, try again later (sandbox fault)", None),
    "409": (
        "the first request with this Idempotency-Key is still being processed (sandbox fault)",
        "IDEMPOTENCY_KEY_PROCESSING",
    ),
}


class SandboxServer:
    """A local HiAPI-compatible server; ``start()`` serves it from a daemon thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str | None = None,
        speed: float = 1.0,
        webhook_secret: str | None = None,
        faults: Faults | None = None,
        balance: float | None = None,
        url_ttl: float = 7 * 24 * 3600,
        public_url: str | None = None,
        idle_timeout: float = 10.0,
        max_body_bytes: int = 64 * 2**20,
        detail: str | None = None,
        fetch_remote: bool = False,
        jitter: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        """``rate_limit``: requests a second each key may send (see ``limit``; None: no
        limit). ``detail``: ``"full"`` draws media at the sizes and durations asked for, about as heavy
        as real ones; ``"fast"`` draws small stand-ins (fast tests). Default:
        ``HIAPI_SANDBOX_DETAIL``, else full."""
        if not (math.isfinite(idle_timeout) and idle_timeout > 0):
            raise ValueError(f"idle_timeout must be a positive number of seconds, not {idle_timeout!r}")
        if not max_body_bytes > 0:
            raise ValueError(f"max_body_bytes must be positive, not {max_body_bytes!r}")
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.max_body_bytes = max_body_bytes
        self.faults = faults or Faults()
        self.public_url = public_url
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.request_times: list[float] = []  # when each of them arrived (Unix time)
        self.limited: list[float] = []  # when each API request answered 429 arrived (limit or fault)
        self._limit = RateLimit(rate_limit) if rate_limit is not None else None
        self._plan = FaultPlan(self.faults)
        self._api = SandboxApi(
            key=key,
            speed=speed,
            webhook_secret=webhook_secret,
            balance=balance,
            url_ttl=url_ttl,
            plan=self._plan,
            detail=default_detail() if detail is None else detail,
            fetch_remote=fetch_remote,  # media inputs on other hosts (default: loopback only)
            jitter=jitter,
            seed=self.faults.seed,
        )
        self._httpd: _HTTPServer | None = None
        self._lock = threading.Lock()

    def start(self) -> SandboxServer:
        """Serve from a daemon thread; after ``stop()`` it starts again with its tasks kept."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), _Handler)
        _say_once(extra_note())
        self._httpd.sandbox = self
        self.port = self._httpd.server_address[1]
        self._api.file_root = (self.public_url or self.root_url).rstrip("/")
        self._api.callbacks.start()
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hiapi-sandbox",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self._api.callbacks.stop()
        self._httpd = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return self.root_url + "/v1"

    @property
    def detail(self) -> str:
        """``full`` (media at the asked sizes) or ``fast`` (small stand-ins)."""
        return self._api.media_detail

    @property
    def task_count(self) -> int:
        """Distinct tasks created; idempotent replays do not count."""
        return self._api.ledger.task_count

    def tasks(self) -> list[dict]:
        """Every task created, oldest first: its object as a detail call shows it now, plus
        the ``input`` it was created with (for benches and tests that audit the server)."""
        return self._api.ledger.snapshot(time.time(), self._api.file_root)

    @property
    def last_inputs(self) -> list[dict]:
        """The body of every create that made a task, in order."""
        return self._api.last_inputs

    def timeline(self) -> list[tuple[str, float, float]]:
        """``(task_id, created, finished)`` of every task in creation order, as exact
        Unix times (the wire shows whole seconds): what benchmarks measure latency from."""
        return self._api.ledger.timeline()

    @property
    def balance(self) -> float | None:
        """What is left of ``balance`` (USD), or None when unlimited."""
        return self._api.ledger.balance

    def inject(
        self,
        fault: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        retry_after: float | str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests fail: see ``faults`` for the choices."""
        self._plan.inject(fault, method=method, path=path, times=times, retry_after=retry_after)

    def _record(self, method: str, path: str) -> float:
        now = time.time()
        with self._lock:
            self.requests.append((method, path))
            self.request_times.append(now)
        return now

    def _record_limited(self, arrived: float) -> None:
        with self._lock:
            self.limited.append(arrived)


_Request: TypeAlias = socket.socket | tuple[bytes, socket.socket]  # what socketserver hands over


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a client opening a thousand connections at once is not refused
    sandbox: SandboxServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: _Request, client_address: Any) -> None:
        if isinstance(request, socket.socket):  # always, over TCP
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: _Request) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up kept-alive connections, so a stopped sandbox answers nobody."""
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: _Request, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients' connection pools expect
    server_version = "hiapi-sandbox"
    server: _HTTPServer

    def setup(self) -> None:
        # Every read and write waits at most this long: an idle or half-sent connection is
        # closed instead of holding its thread for as long as the client likes.
        self.timeout = self.server.sandbox.idle_timeout  # type: ignore[misc]  # socketserver reads it per instance
        super().setup()
        # headers and body go out as two writes: without this, Nagle's algorithm and delayed
        # ACKs hold every answer back about 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        arrived = sandbox._record(self.command, url.path)
        api = url.path.startswith("/v1/")
        wait = (
            sandbox._limit.take(self.headers.get("Authorization") or "") if sandbox._limit and api else None
        )
        fault = (
            Fault("limit", wait) if wait is not None else sandbox._plan.pick(self.command, url.path, api=api)
        )
        if fault and fault.kind in ("limit", "429") and api:
            sandbox._record_limited(arrived)
        if fault and fault.kind == "drop":
            self.close_connection = True  # hang up without reading or answering
            return
        try:
            body = self._read_body()
        except ApiError as exc:  # the body cannot be read as sent: answer, then hang up
            self.close_connection = True
            self._send(exc.response())
            return
        req = Call(
            self.command,
            url.path,
            dict(parse_qsl(url.query)),
            self.headers,
            body,
            delay=fault.seconds if fault else 0.0,
        )
        try:
            if fault and fault.kind == "limit":
                assert sandbox._limit is not None
                raise ApiError(
                    429,
                    f"rate limit exceeded: {sandbox._limit.rate:g} requests a second per key",
                    headers={"Retry-After": f"{fault.retry_after}"},
                )
            if fault and fault.kind in STATUS_FAULTS:
                raise _fault_error(fault)
            answer = sandbox._api.handle(req)
        except ApiError as exc:
            answer = exc.response()
        except RecursionError:
            answer = ApiError(400, "the request is nested too deeply", "INVALID_REQUEST").response()
        except Exception as exc:  # a sandbox bug or a failed drawing still gets an answer
            answer = ApiError(500, f"sandbox error: {type(exc).__name__}: {exc}").response()
        req.pause()
        if fault and fault.kind == "drop_after":
            self.close_connection = True  # the work is done, but the client never hears
            return
        self._send(answer, cut_short=bool(fault and fault.kind == "truncate"))
        if len(body) > BIG_BODY:  # its copies are garbage now: give their memory back
            del body, req, answer
            give_back()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Nothing per request: a terminal running the sandbox stays quiet."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (bad request line, header too large, unknown method,
        URI too long) in the contract's envelope instead of an HTML page."""
        if self.request_version == "HTTP/0.9" or not self.request_version:
            self.request_version = "HTTP/1.1"  # so the status line and headers are written
        short, _long = self.responses.get(code, ("error", ""))
        text = " ".join(str(message or short).split())
        if len(text) > 200:
            text = text[:199] + "…"
        self.close_connection = True  # what follows on this connection cannot be trusted
        self._send(ApiError(code, text).response())

    def _read_body(self) -> bytes:
        """The request body, by Content-Length or chunked; ApiError when it cannot be had."""
        limit = self.server.sandbox.max_body_bytes
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        length_text = self.headers.get("Content-Length")
        if encoding:
            if length_text is not None:
                raise ApiError(400, "send either Content-Length or Transfer-Encoding, not both")
            if encoding != "chunked":
                raise ApiError(501, f"Transfer-Encoding {encoding!r} is not supported; use chunked")
            return self._read_chunked(limit)
        if length_text is None:
            return b""
        text = length_text.strip()
        if not (text.isascii() and text.isdigit()):
            raise ApiError(400, f"Content-Length must be a number of bytes, not {text[:40]!r}")
        length = int(text)
        if length > limit:
            raise ApiError(
                413,
                f"the request body is {length} bytes, over the limit of {limit} bytes",
                headers={"Connection": "close"},
            )
        return self._read_exactly(length)

    def _read_exactly(self, length: int) -> bytes:
        try:
            data = self.rfile.read(length) if length else b""
        except TimeoutError:
            data = None
        if data is None or len(data) < length:
            raise ApiError(408, "the request body did not arrive in time; send it whole")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self._read_line()
            digits = line.split(b";", 1)[0].strip()
            try:
                chunk = int(digits, 16)
            except ValueError:
                raise ApiError(400, "malformed chunked body: a chunk size is not hexadecimal") from None
            if chunk < 0 or len(digits) > 16:
                raise ApiError(400, "malformed chunked body: a chunk size is not hexadecimal")
            if chunk == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            size += chunk
            if size > limit:
                raise ApiError(413, f"the request body is over the limit of {limit} bytes")
            parts.append(self._read_exactly(chunk))
            if self._read_line() != b"":
                raise ApiError(400, "malformed chunked body: a chunk is longer than its size says")

    def _read_line(self) -> bytes:
        try:
            line = self.rfile.readline(1026)
        except TimeoutError:
            raise ApiError(408, "the request body did not arrive in time; send it whole") from None
        if not line.endswith(b"\n"):
            if len(line) > 1024:
                raise ApiError(400, "malformed chunked body: a line is too long")
            raise ApiError(408, "the request body did not arrive in time; send it whole")
        return line.rstrip(b"\r\n")

    def _send(self, answer: Response, *, cut_short: bool = False) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("X-HiAPI-Sandbox", "1")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if self.close_connection and "Connection" not in answer.headers:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut_short:  # the "truncate" fault: half the promised bytes, then the line goes dead
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(answer.body)


_said: set[str] = set()


def _say_once(note: str | None) -> None:
    """Print a note on what this install lacks once per process, where its user reads: the
    terminal running the sandbox, or the notebook cell that started it."""
    if note and note not in _said:
        _said.add(note)
        print(note, flush=True)


def _fault_error(fault: Fault) -> ApiError:
    message, error_code = _FAULT_ANSWERS[fault.kind]
    headers = {}
    if fault.retry_after is not None:
        value = fault.retry_after
        headers["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
    return ApiError(int(fault.kind), message, error_code, headers)
