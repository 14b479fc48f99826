"""`python -m kiku.router --host 0.0.0.0 --port 8080 --routes-socket PATH
[--log-socket PATH] [--workers N]`.

Log lines go to logplex as datagrams on `--log-socket` (router/logsink.py); without it,
to stdout (running the router by hand)."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import sys

from kiku.router.logsink import DatagramLog
from kiku.router.server import Router


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kiku.router")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--routes-socket", required=True)
    parser.add_argument("--log-socket", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--grace", type=float, default=10.0)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    log = DatagramLog(args.log_socket) if args.log_socket else None
    router = Router(routes_socket=args.routes_socket, log=log)
    await router.start(args.host, args.port, reuse_port=args.workers > 1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await router.stop(args.grace)
    if log is not None:
        log.close()


def run_worker(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers <= 1:
        run_worker(args)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(args,)) for _ in range(args.workers)]
    for p in procs:
        p.start()

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.pid is not None:
                os.kill(p.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for p in procs:
        p.join()
        code = code or (p.exitcode or 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
