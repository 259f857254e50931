"""``python -m hiapi_notebook.sandbox``: run the sandbox until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading

from .faults import Faults
from .server import SandboxServer


def _jitter(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"takes a fraction from 0 to below 1, e.g. 0.3, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port (default: %(default)s)")
    parser.add_argument("--key", help="accept only this API key (default: any non-empty key)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="divide task durations by this factor (default: %(default)s)"
    )
    parser.add_argument(
        "--jitter",
        type=_jitter,
        default=0.0,
        metavar="F",
        help="task durations vary by up to ±F of their length, e.g. 0.3 (default: %(default)s)",
    )
    parser.add_argument("--webhook-secret", help="sign callbacks with this key")
    parser.add_argument("--balance", type=float, help="USD to spend; creates get 402 once it is used up")
    parser.add_argument(
        "--url-ttl",
        type=float,
        default=7 * 24 * 3600,
        help="seconds output URLs stay valid (default: 7 days)",
    )
    parser.add_argument("--public-url", help="root URL that output links use instead of this server's")
    parser.add_argument(
        "--fast-media",
        action="store_true",
        help="draw small pictures and short clips instead of the sizes and durations asked for "
        "(fast tests; HIAPI_SANDBOX_DETAIL=fast does the same)",
    )
    parser.add_argument(
        "--fetch-remote",
        action="store_true",
        help="fetch media inputs from any host (default: only loopback; others are drawn as stand-ins)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        metavar="R",
        help="a real limit: R requests a second per key, creates and polls together (a token bucket "
        "holding one second's worth); a request over it gets 429 with Retry-After",
    )
    faults = parser.add_argument_group("fault injection (rates are fractions of requests, 0 to 1)")
    for status in ("429", "500", "503"):
        faults.add_argument(f"--rate-{status}", type=float, default=0.0, metavar="R")
    faults.add_argument(
        "--retry-after",
        type=float,
        default=1.0,
        metavar="S",
        help="Retry-After sent with 429 and 503 (default: %(default)s)",
    )
    faults.add_argument("--rate-slow", type=float, default=0.0, metavar="R")
    faults.add_argument("--slow-seconds", type=float, default=2.0, metavar="S")
    faults.add_argument(
        "--rate-drop", type=float, default=0.0, metavar="R", help="close the connection without answering"
    )
    faults.add_argument(
        "--rate-fail", type=float, default=0.0, metavar="R", help="share of tasks that end in fail"
    )
    faults.add_argument(
        "--rate-download",
        type=float,
        default=0.0,
        metavar="R",
        help="share of output downloads that fail (500, 503, dropped or cut short, in turn)",
    )
    faults.add_argument("--seed", type=int, help="seed for the random faults")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="close a connection that sends nothing for this long (default: %(default)s)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=64.0,
        metavar="MB",
        help="largest request body accepted; bigger ones get 413 (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    faults = Faults(
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_503=args.rate_503,
        retry_after=args.retry_after,
        rate_slow=args.rate_slow,
        slow_seconds=args.slow_seconds,
        rate_drop=args.rate_drop,
        rate_fail=args.rate_fail,
        rate_download=args.rate_download,
        seed=args.seed,
    )
    try:
        server = _server(args, faults)
    except (ValueError, OverflowError) as exc:  # a NaN speed, a rate above 1...: one line, no traceback
        print(f"python -m hiapi_notebook.sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    keys = "this key only" if args.key else "any non-empty key"
    print(f"HiAPI sandbox on {server.url} (synthetic results; {keys})", flush=True)
    stopping.wait()
    server.stop()
    return 0


def _server(args: argparse.Namespace, faults: Faults) -> SandboxServer:
    if not (math.isfinite(args.max_body_mb) and args.max_body_mb > 0):
        raise ValueError(f"--max-body-mb must be a positive number, not {args.max_body_mb!r}")
    return SandboxServer(
        host=args.host,
        port=args.port,
        key=args.key,
        speed=args.speed,
        webhook_secret=args.webhook_secret,
        faults=faults,
        balance=args.balance,
        url_ttl=args.url_ttl,
        public_url=args.public_url,
        idle_timeout=args.idle_timeout,
        max_body_bytes=int(args.max_body_mb * 2**20),
        detail="fast" if args.fast_media else None,
        fetch_remote=args.fetch_remote,
        jitter=args.jitter,
        rate_limit=args.rate_limit,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hiapi_notebook.sandbox",
        description="A local HiAPI-compatible server with synthetic results.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
