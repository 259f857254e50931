"""Callback delivery: one background thread POSTs each finished task to its ``callback.url``.

A task's end time is known when it is created, so its callback is queued then and fires on
time whether or not anyone polls. The body is the bare task object (no envelope); with a
secret it is signed as HiAPI does: ``X-HiAPI-Signature`` = hex(HMAC-SHA256(secret,
timestamp + "." + body)). A refused or failed delivery is retried a few times.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before each further attempt

# task id -> (callback url, task object) at delivery time, or None if the task is gone
Payload = Callable[[str], "tuple[str, dict] | None"]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class CallbackSender:
    def __init__(self, payload: Payload, secret: str | None) -> None:
        self._payload = payload
        self._secret = secret
        self._queue: list[tuple[float, int, str, int]] = []  # (due, tie-break, task id, attempt)
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="hiapi-sandbox-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def schedule(self, due: float, task_id: str, attempt: int = 0) -> None:
        with self._wake:
            heapq.heappush(self._queue, (due, next(self._order), task_id, attempt))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.time()):
                    self._wake.wait(self._queue[0][0] - time.time() if self._queue else None)
                if self._stopped:
                    return
                _, _, task_id, attempt = heapq.heappop(self._queue)
            if not self._deliver(task_id) and attempt < len(RETRY_DELAYS):
                self.schedule(time.time() + RETRY_DELAYS[attempt], task_id, attempt + 1)

    def _deliver(self, task_id: str) -> bool:
        found = self._payload(task_id)
        if found is None:
            return True
        url, task = found
        body = json.dumps(task, ensure_ascii=False, allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "hiapi-sandbox"}
        if self._secret:
            timestamp = str(int(time.time()))
            headers["X-HiAPI-Timestamp"] = timestamp
            headers["X-HiAPI-Signature"] = sign(self._secret, timestamp, body)
        try:
            return 200 <= _post(url, body, headers) < 300
        except (OSError, ValueError, http.client.HTTPException):  # refused, unreachable, bad URL
            return False


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST with http.client, which sends header names in the documented case."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=5)
    try:
        connection.request(
            "POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers
        )
        return connection.getresponse().status
    finally:
        connection.close()
