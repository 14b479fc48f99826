"""One router worker process: the router on its event loop until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal

from kiku.router.config import RouterConfig
from kiku.router.logsink import DatagramLog
from kiku.router.server import Router
from kiku.router.tls import Certificates, server_context


def raise_open_files() -> None:
    """Each proxied connection holds two descriptors (client and dyno): the usual soft
    limit of 1024 would cap a worker near 500 connections, far below H22's 10,000."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def serve(args: argparse.Namespace) -> None:
    log = DatagramLog(args.log_socket) if args.log_socket else None
    certificates = None
    if args.tls_port is not None:
        certificates = Certificates(server_context(args.tls_cert, args.tls_key))
    config = RouterConfig(lane=args.lane)
    router = Router(config, routes_socket=args.routes_socket, log=log, certificates=certificates)
    shared = args.workers > 1
    await router.start(args.host, args.port, reuse_port=shared)
    if args.tls_port is not None:
        await router.start_tls(args.host, args.tls_port, reuse_port=shared)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await router.stop(args.grace)
    if log is not None:
        log.close()


def run_worker(args: argparse.Namespace) -> None:
    raise_open_files()
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args))
