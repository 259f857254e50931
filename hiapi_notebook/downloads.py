"""Fetching outputs: an output's bytes, or a file streamed to disk, each tried again when a
transient failure cuts it short.

Apart from the API calls because outputs come from media hosts, not from HiAPI's API: no
API key goes with them, they have slots of their own (a long video never holds up the
polls), and a failure is judged by other rules (403, 404 and 410 mean the output expired).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from .errors import (
    APIConnectionError,
    HiAPIError,
    OutputExpiredError,
    OutputRefusedError,
    RequestValidationError,
)
from .retry import parse_retry_after, retry_delay

log = logging.getLogger("hiapi_notebook")

MEDIA_CONCURRENCY = 8  # output downloads at once, beside the API calls
MEDIA_TYPES = ("image/", "video/", "audio/", "application/octet-stream")  # what a download keeps
STALE_PART_SECONDS = 3600.0  # a temporary file untouched this long has lost its writer
DOWNLOAD_SECONDS = 600.0  # one output's download, every attempt together, when no bound is given
# Media are compressed already, so they are asked for as they are (``identity``). A server that
# encodes one anyway may inflate it this many times (plus ``INFLATE_SLACK``), no more: a 3 MB
# gzip bomb stops within a few dozen MB, not at the size limit.
INFLATE_RATIO = 8
INFLATE_SLACK = 2 * 2**20
HEADERS = {"User-Agent": "hiapi-notebook", "Accept-Encoding": "identity"}
_PART = re.compile(r"\.[0-9a-f]{8}\.part$")  # the temporary names ``download`` gives
T = TypeVar("T")


@dataclass(frozen=True)
class Download:
    path: Path
    sha256: str
    bytes: int
    content_type: str


class Downloads:
    """The downloads of one client on one event loop: its connection pool, and a gate
    of ``slots`` downloads at once (a semaphore belongs to the loop that made it)."""

    def __init__(self, http: httpx.AsyncClient, *, slots: int = MEDIA_CONCURRENCY) -> None:
        self._http = http
        self._gate = asyncio.Semaphore(slots)

    async def fetch(
        self, url: str, *, max_bytes: int, max_retries: int, within: float | None = None
    ) -> tuple[bytes, str]:
        """An output's bytes and content type (no API key is sent to media hosts), in at most
        ``within`` seconds (every attempt together)."""

        async def once() -> tuple[bytes, str]:
            chunks: list[bytes] = []
            ctype = ""
            async with aclosing(self._stream(url, max_bytes)) as stream:
                async for ctype, chunk in stream:  # noqa: B007 (ctype: the last is kept)
                    chunks.append(chunk)
            return b"".join(chunks), ctype

        return await _bounded(_retrying(once, max_retries), within)

    async def download(
        self,
        url: str,
        dest: Path | str,
        *,
        max_bytes: int,
        accept: tuple[str, ...] = MEDIA_TYPES,
        max_retries: int,
        within: float | None = None,
    ) -> Download:
        """Stream an output to ``dest`` (via a temporary file, never whole in memory), in at
        most ``within`` seconds, every read and attempt together: a server sending one byte
        a second must not hold a task (and a download slot) past its timeout.

        A dropped connection, a cut-short body, a 5xx or a 429 is tried again, with
        backoff, like an API call: one bad minute of a CDN must not lose a paid result.
        403, 404 and 410 are a real expiry (``OutputExpiredError``); a full disk or an
        unwritable folder is an ``OSError``, not worth an immediate retry."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)

        async def once() -> Download:
            # A name of its own: two kernels (or jobs) keeping the same output never
            # write into one temporary file; the rename at the end is atomic.
            tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
            digest = hashlib.sha256()
            size = 0
            ctype = ""
            try:
                with open(tmp, "wb") as fh:
                    async with aclosing(self._stream(url, max_bytes, accept)) as stream:
                        async for ctype, chunk in stream:  # noqa: B007 (as above)
                            fh.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            return Download(dest, digest.hexdigest(), size, ctype)

        return await _bounded(_retrying(once, max_retries), within)

    async def _stream(
        self, url: str, max_bytes: int, accept: tuple[str, ...] | None = None
    ) -> AsyncGenerator[tuple[str, bytes], None]:
        """``(content type, chunk)`` pairs of one attempt; refuses what is not wanted early."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise RequestValidationError(f"refusing to fetch a non-http(s) URL: {str(url)[:80]!r}")
        problem: HiAPIError | None = None
        try:
            async with (
                self._gate,
                self._http.stream("GET", url, headers=HEADERS) as resp,
            ):
                status = resp.status_code
                if status in (403, 404, 410):
                    raise OutputExpiredError(url, status)
                if status >= 500 or status in (408, 429):
                    raise _TransientDownload(
                        f"could not download the output (HTTP {status})",
                        status=status,
                        retry_after=parse_retry_after(resp.headers.get("retry-after")),
                    )
                if status >= 300:
                    raise APIConnectionError(f"could not download the output (HTTP {status})", status=status)
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if accept is not None and not ctype.startswith(accept):
                    raise OutputRefusedError(f"output is {ctype or 'of no type'}, not media; not saved")
                declared = int(resp.headers.get("content-length") or 0)
                if declared > max_bytes:
                    raise OutputRefusedError(f"output is {declared} bytes, over the {max_bytes}-byte limit")
                coding = resp.headers.get("content-encoding", "").strip().lower()
                encoded = coding not in ("", "identity")
                seen = 0
                async for chunk in resp.aiter_bytes():
                    seen += len(chunk)
                    if seen > max_bytes:
                        raise OutputRefusedError(f"output exceeds the {max_bytes}-byte limit")
                    sent = max(declared, resp.num_bytes_downloaded)
                    if encoded and seen > INFLATE_RATIO * sent + INFLATE_SLACK:
                        raise OutputRefusedError(
                            f"output inflates past {INFLATE_RATIO} times the {sent} bytes sent "
                            f"({coding}: a compression bomb); not saved"
                        )
                    yield ctype, chunk
        except httpx.HTTPError as exc:  # refused, reset, cut short, timed out: worth another try
            problem = _TransientDownload(f"could not download the output ({type(exc).__name__})")
        except ValueError:  # a Content-Length that is not a number
            problem = _TransientDownload("could not download the output (a malformed answer)")
        if problem is not None:
            raise problem


class _TransientDownload(APIConnectionError):
    """A download attempt that may work if tried again (network, 5xx, 429)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


async def _bounded(work: Awaitable[T], within: float | None) -> T:
    """``work`` in at most ``within`` seconds (``DOWNLOAD_SECONDS`` when None): past it, one
    line, not another attempt."""
    limit = DOWNLOAD_SECONDS if within is None else within
    try:
        return await asyncio.wait_for(work, limit)
    except TimeoutError:
        raise APIConnectionError(
            f"the output did not arrive within {limit:g} s (the task's timeout)"
        ) from None


async def _retrying(once: Callable[[], Awaitable[T]], max_retries: int) -> T:
    """Run one download attempt, again after a transient failure, up to ``max_retries``."""
    attempt = 0
    while True:
        try:
            return await once()
        except _TransientDownload as exc:
            if attempt >= max_retries:
                raise APIConnectionError(
                    f"{exc.message} [gave up after {attempt + 1} attempts]", status=exc.status
                ) from None
            delay = retry_delay(attempt, exc.retry_after)
            log.debug("download failed (%s); trying again in %.2fs", exc.message, delay)
            attempt += 1
            await asyncio.sleep(delay)


def remove_stale_parts(folder: Path | str, older_than: float = STALE_PART_SECONDS) -> int:
    """Delete the temporary files of downloads whose process died (kill -9, a power cut).

    A live download writes its file chunk by chunk, so only files untouched for
    ``older_than`` seconds go; another kernel's download in the same folder is left alone.
    Returns how many were removed."""
    removed = 0
    cutoff = time.time() - older_than
    try:
        candidates = [p for p in Path(folder).glob("*/*.part") if _PART.search(p.name)]
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to delete: nothing worth saying
    return removed
