"""`python -m kiku.router --host 0.0.0.0 --port 8080 --routes-socket PATH
[--log-socket PATH] [--tls-port 8443 --tls-cert PEM --tls-key KEY] [--workers N] [--no-lane]`.

N worker processes (default: one per core) each listen on the same ports with SO_REUSEPORT,
so the kernel spreads connections over them; a worker that dies is started again. Log
lines go to logplex as datagrams on `--log-socket` (router/logsink.py); without it, to
stdout (running the router by hand).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess

# The workers' code lives in a module of its own: spawned processes must import it by name.
from kiku.router.worker import run_worker


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kiku.router")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--routes-socket", required=True)
    parser.add_argument("--log-socket", default=None)
    parser.add_argument("--tls-port", type=int, default=None)
    parser.add_argument("--tls-cert", default=None, help="PEM certificate (chain) for *.DOMAIN")
    parser.add_argument("--tls-key", default=None)
    parser.add_argument("--workers", type=int, default=0, help="processes [one per core]")
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument(
        "--no-lane", dest="lane", action="store_false", help="serve every request in Python"
    )
    args = parser.parse_args(argv)
    if args.tls_port is not None and not args.tls_cert:
        parser.error("--tls-port needs --tls-cert (and --tls-key unless the PEM holds the key)")
    args.workers = args.workers if args.workers > 0 else os.cpu_count() or 1
    return args


class Workers:
    """The parent of N router processes: starts them, restarts any that dies, and passes
    SIGTERM/SIGINT on (each finishes its in-flight requests, then exits)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.context = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess] = []
        self.started: list[float] = []
        self.stopping = False

    def _spawn(self) -> BaseProcess:
        proc = self.context.Process(target=run_worker, args=(self.args,), name="kiku-router")
        proc.start()
        return proc

    def _forward(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for proc in self.procs:
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        for _ in range(self.args.workers):
            self.procs.append(self._spawn())
            self.started.append(time.monotonic())
        while not self.stopping:
            multiprocessing.connection.wait([p.sentinel for p in self.procs], timeout=0.2)
            for i, proc in enumerate(self.procs):
                if proc.exitcode is None or self.stopping:
                    continue
                print(
                    f"router worker {proc.pid} exited with {proc.exitcode}; starting another",
                    file=sys.stderr,
                    flush=True,
                )
                if time.monotonic() - self.started[i] < 1.0:
                    time.sleep(1.0)  # dying at once (a port taken?): do not spin
                if not self.stopping:
                    self.procs[i] = self._spawn()
                    self.started[i] = time.monotonic()
        self._forward(signal.SIGTERM, None)  # a worker started as the signal came, too
        code = 0
        for proc in self.procs:
            proc.join()
            # A worker still starting when the signal came dies of it: a clean stop too.
            if proc.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):
                code = code or proc.exitcode or 1
        return code


def taken(host: str, port: int) -> bool:
    """Whether someone listens there: a bind without SO_REUSEPORT fails even against
    SO_REUSEPORT listeners, which the workers' own binds would join silently."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers <= 1:
        run_worker(args)
        return 0
    for port in (args.port, args.tls_port):
        if port is not None and taken(args.host, port):
            print(f"router: {args.host}:{port} is in use; not starting", file=sys.stderr)
            return 2
    return Workers(args).run()


if __name__ == "__main__":
    sys.exit(main())
