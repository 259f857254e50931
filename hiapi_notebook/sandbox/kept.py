"""What the sandbox keeps of a create: a reduced copy, never the request itself.

A create can carry tens of megabytes of ``data:`` URIs, and a sandbox started with
``%hiapi sandbox`` lives in the kernel: sixteen such creates once kept half a gigabyte.
A task keeps its input with every ``data:`` URI and every long string replaced by a short
stand-in naming its size and digest (the same content gives the same stand-in, so the same
request still draws the same files), and the media it draws from reduced
(``derive.reduced``). The bodies tests read back (``last_inputs``) stay as sent while they
add up to a few megabytes; older ones are reduced the same way.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .wire import canonical_json

LONG_TEXT = 32 * 1024  # longer strings are kept as a digest (a prompt is at most 20,000 characters)
KEPT_INPUT = 256 * 1024  # a kept input larger than this keeps its largest fields as digests
BODIES_AS_SENT = 8 * 2**20  # the most bytes of create bodies ``last_inputs`` holds as sent
BIG_BODY = 4 * 2**20  # after a request this big, freed memory goes back to the system


def stand_in(text: str) -> str:
    """A short string in place of ``text``: its start, its length and its digest."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    head = text.partition(",")[0] if text.startswith("data:") else text
    return f"[{head[:60]}… {len(text)} characters, sha256 {digest}]"


def kept(value: Any) -> Any:
    """A JSON value with every ``data:`` URI and every long string (keys too) as a stand-in."""
    if isinstance(value, str):
        return stand_in(value) if value.startswith("data:") or len(value) > LONG_TEXT else value
    if isinstance(value, dict):
        return {(stand_in(k) if len(k) > LONG_TEXT else k): kept(v) for k, v in value.items()}
    if isinstance(value, list):
        return [kept(v) for v in value]
    return value


def kept_input(input: dict) -> dict:
    """What a task keeps of its input: ``kept``, and at most ``KEPT_INPUT`` characters of
    JSON (thousands of short strings in an unknown field become one stand-in)."""
    small = kept(input)
    sizes = {name: len(canonical_json(value)) for name, value in small.items()}
    total = sum(sizes.values())
    for name in sorted(sizes, key=lambda n: sizes[n], reverse=True):
        if total <= KEPT_INPUT:
            break
        small[name] = stand_in(canonical_json(small[name]))
        total -= sizes[name] - len(small[name])
    return small


def kept_body(body: dict) -> dict:
    """A create body as ``last_inputs`` keeps an old one: its input as a task keeps it,
    and at most ``KEPT_INPUT`` characters of the rest."""
    input = body.get("input")
    return kept_input({**body, "input": kept_input(input)} if isinstance(input, dict) else body)


class Bodies:
    """Every create body that made a task, in order: as sent while the newest add up to
    ``budget`` bytes, reduced (``kept_body``) before that."""

    def __init__(self, budget: int = BODIES_AS_SENT) -> None:
        self.items: list[dict] = []
        self.budget = budget
        self._as_sent: deque[tuple[int, int]] = deque()  # (index, size) of bodies kept whole
        self._as_sent_bytes = 0
        self._lock = threading.Lock()

    def add(self, body: dict, size: int) -> None:
        with self._lock:
            self.items.append(body)
            self._as_sent.append((len(self.items) - 1, size))
            self._as_sent_bytes += size
            while self._as_sent_bytes > self.budget and self._as_sent:
                index, size = self._as_sent.popleft()
                self.items[index] = kept_body(self.items[index])
                self._as_sent_bytes -= size


def give_back() -> None:
    """Hand memory freed by a big request back to the system. glibc keeps freed pages of
    the big blocks a request makes (its body, the decoded JSON, the picture) for reuse,
    per thread arena: sixteen 25 MB creates left 180 MB resident where 50 MB is kept."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc only (not musl)
    except (OSError, AttributeError):
        return None


__all__ = ["BIG_BODY", "Bodies", "give_back", "kept", "kept_body", "kept_input", "stand_in"]
