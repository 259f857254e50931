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

import ipaddress
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..catalog import MediaField, ModelSpec, media_field
from ..media import NAMES, kind_of, parse_data_uri, sniff, type_names
from .wire import invalid

MAX_INPUT_BYTES = 30 * 2**20  # per item, as HiAPI's routes document (20-30 MB)
FETCH_TIMEOUT = 10.0  # seconds for one URL input
CACHE_BYTES = 64 * 2**20  # fetched inputs kept for drawing


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
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        # No proxy: a loopback URL must reach this machine, whatever the environment says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def limit_text(self) -> str:
        size = self.max_bytes
        return f"{size / 2**20:g} MB" if size >= 2**20 else f"{size}-byte"

    def check(self, spec: ModelSpec, input: dict) -> dict[str, list[Media]]:
        """Every media item of ``input``; raises the 400 HiAPI gives for a bad one."""
        return self._collect(spec, input, strict=True)

    def media(self, spec: ModelSpec, input: dict) -> dict[str, list[Media]]:
        """The same for drawing: an item that cannot be had now is a stand-in, not an error."""
        return self._collect(spec, input, strict=False)

    def _collect(self, spec: ModelSpec, input: dict, strict: bool) -> dict[str, list[Media]]:
        found: dict[str, list[Media]] = {}
        for name, value in input.items():
            field = media_field(spec.name, name)
            if field is None or value is None:
                continue
            items = value if isinstance(value, list) else [value]
            if strict and (
                not all(isinstance(v, str) for v in items) or (not field.many and isinstance(value, list))
            ):
                shape = "a list of URLs" if field.many else "a URL"
                raise invalid(f"input.{name} must be {shape} (http(s) or a data: URI)")
            where = [f"{name}[{i}]" if isinstance(value, list) else name for i in range(len(items))]
            found[name] = [self._item(field, w, v, strict) for w, v in zip(where, items)]
        return found

    def _item(self, field: MediaField, where: str, value: str, strict: bool) -> Media:
        if value.startswith("data:"):
            try:
                _declared, inline = parse_data_uri(value)
            except ValueError as exc:
                raise invalid(f"input.{where} is not a usable data: URI ({exc})") from None
            return self._checked(field, where, inline, "data URI")
        if value.startswith(("http://", "https://")):
            host = urlsplit(value).hostname or ""
            data: bytes | None = self.own(value)
            if data is None and (self.fetch_remote or _loopback(host)):
                try:
                    data = self._fetch(value)
                except ValueError as exc:
                    if strict:
                        raise invalid(f"input.{where}: could not fetch {value[:120]} ({exc})") from None
                    return Media(field.name, field.kind, None, None, f"{host} (unavailable)")
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
        return Media(field.name, kind, mime, data, label)

    def _fetch(self, url: str) -> bytes:
        """A URL input's bytes, within the size and time limits (cached for drawing)."""
        with self._lock:
            if url in self._cache:
                self._cache.move_to_end(url)
                return self._cache[url]
        request = urllib.request.Request(url, headers={"User-Agent": "hiapi-sandbox"})
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                declared = int(resp.headers.get("Content-Length") or 0)
                if declared > self.max_bytes:
                    raise ValueError(f"{declared} bytes, over the {self.limit_text} limit")
                data = resp.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise ValueError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ValueError(str(getattr(exc, "reason", exc))) from None
        if len(data) > self.max_bytes:
            raise ValueError(f"over the {self.limit_text} limit")
        with self._lock:
            self._cache[url] = data
            self._cached += len(data)
            while self._cached > CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached -= len(old)
        return data


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["Media", "SandboxInputs"]
