"""The HTTP side: a threading server from the standard library, faults applied per request."""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .api import SandboxApi
from .faults import STATUS_FAULTS, Fault, FaultPlan, Faults
from .wire import ApiError, Request, Response

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
        jitter: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self.public_url = public_url
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.request_times: list[float] = []  # when each of them arrived (Unix time)
        self._plan = FaultPlan(self.faults)
        self._api = SandboxApi(
            key=key,
            speed=speed,
            webhook_secret=webhook_secret,
            balance=balance,
            url_ttl=url_ttl,
            plan=self._plan,
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
    def task_count(self) -> int:
        """Distinct tasks created; idempotent replays do not count."""
        return self._api.store.task_count

    @property
    def last_inputs(self) -> list[dict]:
        """The body of every create that made a task, in order."""
        return self._api.last_inputs

    def timeline(self) -> list[tuple[str, float, float]]:
        """``(task_id, created, finished)`` of every task in creation order, as exact
        Unix times (the wire shows whole seconds): what benchmarks measure latency from."""
        return self._api.store.timeline()

    @property
    def balance(self) -> float | None:
        """What is left of ``balance`` (USD), or None when unlimited."""
        return self._api.store.balance

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

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.request_times.append(time.time())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a client opening dozens of connections at once is not refused
    sandbox: SandboxServer

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
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

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients' connection pools expect
    server_version = "hiapi-sandbox"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without this, Nagle's algorithm and delayed
        # ACKs hold every answer back about 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        sandbox._record(self.command, url.path)
        fault = sandbox._plan.pick(self.command, url.path, api=url.path.startswith("/v1/"))
        if fault and fault.kind == "drop":
            self.close_connection = True  # hang up without reading or answering
            return
        req = Request(
            self.command,
            url.path,
            dict(parse_qsl(url.query)),
            self.headers,
            self._read_body(),
            delay=fault.seconds if fault else 0.0,
        )
        try:
            if fault and fault.kind in STATUS_FAULTS:
                raise _fault_error(fault)
            answer = sandbox._api.handle(req)
        except ApiError as exc:
            answer = exc.response()
        except Exception as exc:  # a sandbox bug or a failed drawing still gets an answer
            answer = ApiError(500, f"sandbox error: {type(exc).__name__}: {exc}").response()
        req.pause()
        if fault and fault.kind == "drop_after":
            self.close_connection = True  # the work is done, but the client never hears
            return
        self._send(answer)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Nothing per request: a terminal running the sandbox stays quiet."""

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
            self.close_connection = True  # the body's end is unknown: this connection is spent
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, answer: Response) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("X-HiAPI-Sandbox", "1")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)


def _fault_error(fault: Fault) -> ApiError:
    message, error_code = _FAULT_ANSWERS[fault.kind]
    headers = {}
    if fault.retry_after is not None:
        value = fault.retry_after
        headers["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
    return ApiError(int(fault.kind), message, error_code, headers)
