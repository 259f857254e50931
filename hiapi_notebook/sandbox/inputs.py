"""Media inputs, as HiAPI treats them: a URL field takes an http(s) URL (fetched by the
server) or a ``data:`` URI; anything else, such as a bare file name or a path on the
user's machine, is refused with a 400 INVALID_REQUEST that names the field.

The sandbox is offline by design: it fetches only its own output files (from memory)
and URLs on the loopback interface, within a size and time limit. Another host's URL is
accepted and drawn as a labelled stand-in, unless ``fetch_remote`` lets it fetch those
too (``--fetch-remote``). ``asset://`` ids pass only where the catalogue says the field
takes them, also as a stand-in.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

from ..catalog import MediaField, ModelSpec, media_field
from ..media import NAMES, kind_of, parse_data_uri, sniff, type_names
from .wire import invalid

MAX_INPUT_BYTES = 30 * 2**20  # per item, as HiAPI's routes document (20-30 MB)
FETCH_TIMEOUT = 10.0  # seconds for one URL input, redirects and all
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
FETCH_HEADERS = {"User-Agent": "hiapi-sandbox", "Accept-Encoding": "identity"}
CHUNK = 256 * 1024
# A picture declaring more pixels is refused from its header, before anything decodes it:
# a 400 KB PNG can declare 12000x12000 (576 MB once decoded). 25 MP is 5000x5000, a 24 MP
# camera's frame; a 4K result is 8.3 MP.
MAX_INPUT_PIXELS = 25_000_000


@dataclass(frozen=True)
class Media:
    """One input item: its bytes (None for a stand-in), type and a label to draw."""

    field: str
    kind: str | None
    mime: str | None
    data: bytes | None
    label: str


class SandboxInputs:
    """Checks media fields on create, and hands their bytes to the drawing of outputs."""

    def __init__(
        self,
        own: Callable[[str], bytes | None],
        *,
        fetch_remote: bool = False,
        max_bytes: int = MAX_INPUT_BYTES,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.own = own  # this server's own output file for a URL, or None
        self.fetch_remote = fetch_remote
        self.max_bytes = max_bytes
        self.timeout = timeout

    @property
    def limit_text(self) -> str:
        size = self.max_bytes
        return f"{size / 2**20:g} MB" if size >= 2**20 else f"{size}-byte"

    def check(self, spec: ModelSpec, input: dict) -> dict[str, list[Media]]:
        """Every media item of ``input``; raises the 400 HiAPI gives for a bad one."""
        found: dict[str, list[Media]] = {}
        for name, value in input.items():
            field = media_field(spec.name, name)
            if field is None or value is None:
                continue
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in items) or (not field.many and isinstance(value, list)):
                shape = "a list of URLs" if field.many else "a URL"
                raise invalid(f"input.{name} must be {shape} (http(s) or a data: URI)")
            where = [f"{name}[{i}]" if isinstance(value, list) else name for i in range(len(items))]
            found[name] = [self._item(field, w, v) for w, v in zip(where, items)]
        return found

    def _item(self, field: MediaField, where: str, value: str) -> Media:
        if value.startswith("data:"):
            try:
                _declared, inline = parse_data_uri(value)
            except ValueError as exc:
                raise invalid(f"input.{where} is not a usable data: URI ({exc})") from None
            return self._checked(field, where, inline, "data URI")
        if value.startswith(("http://", "https://")):
            shown = value if len(value) <= 120 else value[:117] + "..."
            try:
                host = urlsplit(value).hostname or ""
            except ValueError:
                raise invalid(f"input.{where} is not a usable URL: {shown}") from None
            data: bytes | None = self.own(value)
            if data is None and (self.fetch_remote or _loopback(host)):
                try:
                    data = self._fetch(value)
                except _TooBig:
                    raise invalid(
                        f"input.{where}: cannot fetch {shown}: over the {self.limit_text} limit"
                    ) from None
                except _CannotFetch:
                    raise invalid(
                        f"input.{where}: cannot fetch {shown}; give a URL that answers with the file "
                        f"within {self.timeout:g} s, or a data: URI"
                    ) from None
            if data is None:
                return Media(field.name, field.kind, None, None, f"{host} (not fetched offline)")
            return self._checked(field, where, data, host)
        if value.startswith("asset://") and field.assets:
            return Media(field.name, field.kind, None, None, value)
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise invalid(
            f"input.{where} must be a public http(s) URL or a data: URI"
            f"{' (or an asset:// id)' if field.assets else ''}, not {shown!r}"
        )

    def _checked(self, field: MediaField, where: str, data: bytes, label: str) -> Media:
        if len(data) > self.max_bytes:
            raise invalid(f"input.{where} is {len(data)} bytes, over the {self.limit_text} limit")
        mime = sniff(data)
        kind = kind_of(mime)
        if mime is None or kind is None or (field.kind is not None and kind != field.kind):
            found = f"{NAMES[mime]} {kind}" if mime is not None and kind else "not a media file"
            raise invalid(f"input.{where} is {found}; it takes {type_names(field.kind)}")
        if kind == "image":
            size = declared_size(data)
            if size is not None and size[0] * size[1] > MAX_INPUT_PIXELS:
                declared = f"{size[0]}x{size[1]} pixels" if size[0] < sys.maxsize else "more pixels"
                raise invalid(
                    f"input.{where} declares {declared}, over the sandbox's "
                    f"{MAX_INPUT_PIXELS / 1e6:g}-megapixel limit; send a smaller picture"
                )
        return Media(field.name, kind, mime, data, label)

    def _fetch(self, url: str) -> bytes:
        """A URL input's bytes, within the size limit and ``timeout`` seconds in all: every
        redirect hop is checked as the first URL was (loopback unless ``fetch_remote``)."""
        deadline = time.monotonic() + self.timeout
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                parts = urlsplit(url)
                allowed = self.fetch_remote or _loopback(parts.hostname)
            except ValueError:
                raise _CannotFetch() from None
            if parts.scheme not in ("http", "https") or not allowed:
                raise _CannotFetch()
            data, location = self._get(parts, deadline)
            if location is None:
                return data
            try:
                url = urljoin(url, location)
            except ValueError:  # a malformed Location
                raise _CannotFetch() from None
        raise _CannotFetch()

    def _get(self, parts: SplitResult, deadline: float) -> tuple[bytes, str | None]:
        """One GET: (the body, None), or (b"", where a redirect points); any failure,
        a refused port as a 404 or a timeout, is the same ``_CannotFetch``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _CannotFetch()
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection: http.client.HTTPConnection | None = None
        cut = threading.Event()
        watchdog: threading.Timer | None = None
        try:
            connection = kind(parts.hostname or "", parts.port, timeout=remaining)
            connection.connect()
            # A trickling server is cut off at the deadline, however often it sends a byte.
            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (connection.sock, cut))
            watchdog.daemon = True
            watchdog.start()
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", target, headers=FETCH_HEADERS)
            resp = connection.getresponse()
            if resp.status in REDIRECTS and resp.getheader("Location"):
                return b"", resp.getheader("Location")
            if resp.status != 200:
                raise _CannotFetch()
            if int(resp.getheader("Content-Length") or 0) > self.max_bytes:
                raise _TooBig()
            chunks, size = [], 0
            while chunk := resp.read1(CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise _TooBig()
                chunks.append(chunk)
            if resp.length or cut.is_set() or time.monotonic() > deadline:
                raise _CannotFetch()  # cut short (by the server or the watchdog): not the whole file
            return b"".join(chunks), None
        except (OSError, ValueError, http.client.HTTPException):
            raise _CannotFetch() from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if connection is not None:
                connection.close()


class _CannotFetch(Exception):
    """Any reason a URL gave no file: all told alike, so the sandbox is no port scanner."""


class _TooBig(Exception):
    pass


def _cut(sock: socket.socket | None, cut: threading.Event) -> None:
    cut.set()
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)  # a read blocked on it returns at once
    except OSError:
        pass


def declared_size(data: bytes) -> tuple[int, int] | None:
    """A picture's (width, height) from its header alone (nothing is decoded); None when
    Pillow cannot read it (drawn as a stand-in later); (maxsize, 1) when Pillow itself
    calls it a decompression bomb."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged by its size here
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError:
        return sys.maxsize, 1
    except Exception:
        return None


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["MAX_INPUT_PIXELS", "Media", "SandboxInputs", "declared_size"]
