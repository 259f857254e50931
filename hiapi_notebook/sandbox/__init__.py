"""A local HiAPI-compatible server with synthetic results, for demos, tests and offline work.

It speaks only the wire contract (HiAPI's own SDK works against it unchanged) and never imports
the client. Start it with ``python -m hiapi_notebook.sandbox`` or::

    with SandboxServer(speed=20) as srv:
        client = HiAPI(api_key="any", base_url=srv.url)

What it does beyond the contract, so demos and tests can reach every case:

- Any non-empty Bearer key is accepted (each key is its own account) unless ``key`` is set.
  A key that starts with ``suspended`` gets 403.
- A prompt containing ``#fail`` ends in ``fail`` with a TASK_FAILED error; ``#end:cancelled``
  (or ``failed``, ``error``, ``canceled``, ``timeout``, in any case) ends in that word instead.
- Tasks move ``queued → handling → archiving → success`` over a few seconds (images) or tens
  of seconds (video), divided by ``speed``.
- Outputs are real files it serves itself under ``/files/``: a PNG of the prompt, an H.264 MP4
  plus a ``first_frame`` PNG for video, a WAV tone for audio. They answer 410 after ``expireAt``
  (``url_ttl`` seconds after creation).
- Media inputs (``*_url(s)`` fields, ``image_input``...) take http(s) URLs and data: URIs, as on
  HiAPI; anything else is a 400. Only its own outputs and loopback URLs are fetched (every
  redirect hop checked alike, 10 s for the whole fetch; others are drawn as stand-ins unless
  ``fetch_remote``); a picture declaring over 25 megapixels is a 400. Outputs derive from the
  inputs (``derive``), drawn from the reduced copy a task keeps (``kept``), not the request.
- ``balance`` (USD) is charged each task's estimated cost; once short, creates get 402.
- Faults on cue: ``Faults(...)`` rates (``rate_download`` for output files), or
  ``srv.inject("429" | "500" | "503" | "409" | "drop" | "drop_after" | "truncate"
  | "slow:SECONDS", ...)`` for the next matching requests.
- Every answer carries ``X-HiAPI-Sandbox: 1`` and, for errors of any kind (a malformed request
  line, a 70 KB header, an unknown method, a body over ``max_body_bytes``), the JSON envelope.
  Bodies may be chunked; connections idle for ``idle_timeout`` seconds are closed.
"""

from .faults import Faults
from .server import SandboxServer

__all__ = ["SandboxServer", "Faults"]
