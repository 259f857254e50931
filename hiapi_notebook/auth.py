"""The API key: checked once, then held only by the auth object that adds it to requests.

Apart from the client so that the one place ever holding the key is small enough to be
read whole, and checked for that, at a glance.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Generator

import httpx

from .models import api_key_problem


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>`` to each request as it leaves.

    The header is put together here, once, from a key already checked to be plain
    ASCII, so adding it cannot fail. No frame of the request path holds the key in
    a local (only this object does, and it shows as hidden): a traceback printed with
    every frame's variables (``%xmode Verbose``) therefore cannot reveal it.
    """

    def __init__(self, header: str) -> None:
        self._header = header
        # names this key (its request budget is shared by every client using it) without holding it
        self.fingerprint = hashlib.sha256(header.encode()).hexdigest()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "<HiAPI key hidden>"


def auth_for(api_key: str | None) -> tuple[BearerAuth | None, str | None]:
    """The auth for ``api_key`` (else ``HIAPI_API_KEY``), or why the key is malformed.

    Returns instead of raising, so the key is out of every frame by the time the
    caller raises the one-line error."""
    key = api_key if api_key is not None else os.environ.get("HIAPI_API_KEY")
    if not key:
        return None, None
    problem = api_key_problem(key)
    if problem:
        return None, problem if api_key is not None else f"HIAPI_API_KEY: {problem}"
    return BearerAuth("Bearer " + str.__str__(key)), None
