"""kiku's router against nginx, with wrk, in one run over 127.0.0.1.

    .venv/bin/python bench/router.py [--duration 10] [--rounds 1] [--connections 64] [--no-pin]

Three targets, each loaded by `wrk -t1 -c64 --latency` with `Host: bench.localhost`:

  (a) the backend directly: nginx (1 worker) answering `return 200` with a 14-byte body,
      keep-alive without a request limit; a C server, so the backend is never what a
      proxy waits on;
  (b) nginx (1 worker) proxying to that backend, upstream keep-alive, the headers a
      router adds (X-Forwarded-*, X-Request-Id, X-Request-Start) and a buffered access log;
  (c) kiku's router (`python -m kiku.router --workers 1`) in front of the same backend,
      its route table from a feed socket (as tests/router/routerkit.py serves one), its
      log lines as datagrams to a socket this script reads (as logplex does);
  (d) with --python-too, the same router with `--no-lane`: every request served by the
      Python path, without the compiled fast lane (router/fastlane.py), for comparison.

For each: requests/s, p50 and p99 latency, and for (b) and (c) the proxy's CPU per
request (utime + stime from /proc/<pid>/stat of the proxy's processes, before and after,
divided by the requests wrk counted). With 2 or more CPUs the proxy gets CPU 0 and wrk
and the backend the others, as does this script, which reads kiku's log lines (`--no-pin`
leaves it to the scheduler). Needs wrk and nginx
(`scripts/setup-bench.sh`). Every process it starts is stopped before it exits.
`--rounds N` runs (a), (b), (c) in turn N times and prints the median round of each: other
load on the host moves single rounds a lot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
APP_HOST = "bench.localhost"
BODY = "Hello, world!\n"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
# The targets (issue 5, "Speed").
TARGET_RATIO = 0.8
TARGET_P99_MS = 5.0
TARGET_CPU_US = 25.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# Processes


def pinned(command: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def started(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)


def family(pid: int) -> list[int]:
    """`pid` and its children (nginx's master and its worker)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICK


def wait_answering(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Until a GET with the app's Host header gets a 200 (the router has its routes)."""
    request = f"GET / HTTP/1.1\r\nHost: {APP_HOST}\r\nConnection: close\r\n\r\n".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as sock:
            sock.sendall(request)
            if sock.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    sys.exit(f"nothing answered 200 on port {port} within {timeout:.0f} s")


# nginx, as the backend and as the reference proxy


NGINX_COMMON = """
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
{http}
}}
"""

NGINX_BACKEND = """
    access_log off;
    server {{
        listen {host}:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
"""

NGINX_PROXY = """
    access_log {dir}/access.log combined buffer=64k flush=1s;
    upstream backend {{
        server {host}:{backend};
        keepalive 64;
        keepalive_requests 10000000;
    }}
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Request-Start $msec;
        }}
    }}
"""


def nginx(directory: Path, http: str, cpus: str | None) -> list[str]:
    directory.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""  # its worker writes into our temp dir
    config = NGINX_COMMON.format(user=user, dir=directory, http=http)
    (directory / "nginx.conf").write_text(config)
    command = ["nginx", "-p", str(directory), "-e", str(directory / "error.log")]
    return pinned([*command, "-c", str(directory / "nginx.conf"), "-g", "daemon off;"], cpus)


# kiku's router: a route feed and a log socket, as the control plane and logplex give it


class RouteFeed:
    """The control plane's side of the route feed: each connection gets one snapshot line
    mapping APP_HOST to the backend, then stays open (the router keeps its last table)."""

    def __init__(self, path: Path, backend_port: int) -> None:
        route = {
            "app": "bench",
            "app_id": "00000000-0000-4000-8000-000000000000",
            "state": "up",
            "maintenance": False,
            "backends": [{"dyno": "web.1", "address": HOST, "port": backend_port}],
        }
        message = {"type": "snapshot", "routes": {APP_HOST: route}, "certs": {}}
        self.line = json.dumps(message).encode() + b"\n"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
                client.sendall(self.line)
            except OSError:
                return
            self.clients.append(client)

    def close(self) -> None:
        self.sock.close()
        for client in self.clients:
            client.close()


class LogSocket:
    """logplex's side of the router's log datagrams: read and counted, as lines."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.lines = 0
        self.datagrams = 0
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.closed:
            try:
                self.lines += self.sock.recv(1 << 20).count(b"\n")
                self.datagrams += 1
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self.closed = True
        self.thread.join()
        self.sock.close()


# wrk


@dataclass
class Figures:
    name: str
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: str
    cpu_us: float | None = None
    warmup_requests: int = 0
    note: str = ""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _parse(pattern: str, out: str) -> str:
    found = re.search(pattern, out, re.MULTILINE)
    if found is None:
        sys.exit(f"cannot read wrk's output ({pattern!r} not found):\n{out}")
    return found.group(1)


def _ms(text: str) -> float:
    number, unit = _parse(r"^([\d.]+)(us|ms|s|m)$", text), text.lstrip("0123456789.")
    return float(number) * _UNITS[unit]


def wrk(port: int, duration: float, connections: int, cpus: str | None) -> Figures:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(duration)}s",
        "--latency",
        "-H",
        f"Host: {APP_HOST}",
        f"http://{HOST}:{port}/",
    ]
    out = subprocess.run(pinned(command, cpus), capture_output=True, text=True, check=True).stdout
    requests = int(_parse(r"(\d+) requests in", out))
    rate = float(_parse(r"Requests/sec:\s+([\d.]+)", out))
    # The "Latency Distribution" lines, not a "+/- Stdev" figure such as "68.50%".
    p50 = _ms(_parse(r"^\s+50%\s+(\S+)$", out))
    p99 = _ms(_parse(r"^\s+99%\s+(\S+)$", out))
    problems = re.findall(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", out)
    return Figures("", requests, rate, p50, p99, "; ".join(problems))


def measure(
    name: str,
    port: int,
    pids: list[int],
    args: argparse.Namespace,
    cpus: str | None,
) -> Figures:
    warmup = wrk(port, args.warmup, args.connections, cpus)  # pools filled, code paths warm
    before = cpu_seconds(pids)
    figures = wrk(port, args.duration, args.connections, cpus)
    used = cpu_seconds(pids) - before
    figures.name = name
    figures.warmup_requests = warmup.requests
    if pids:
        figures.cpu_us = used / max(1, figures.requests) * 1e6
    return figures


# the run


def run(args: argparse.Namespace, tmp: Path) -> list[Figures]:
    pin = args.pin and (os.cpu_count() or 1) >= 2
    proxy_cpus = "0" if pin else None
    rest_cpus = f"1-{(os.cpu_count() or 2) - 1}" if pin else None
    if pin:  # this script reads the router's log lines: never on the proxy's CPU
        os.sched_setaffinity(0, range(1, os.cpu_count() or 2))
    backend_port, nginx_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        backend_conf = NGINX_BACKEND.format(host=HOST, port=backend_port, body=BODY.strip() + r"\n")
        backend = stack.enter_context(
            started(nginx(tmp / "backend", backend_conf, rest_cpus), tmp / "backend.log")
        )
        proxy_conf = NGINX_PROXY.format(
            host=HOST, port=nginx_port, backend=backend_port, dir=tmp / "proxy"
        )
        proxy = stack.enter_context(
            started(nginx(tmp / "proxy", proxy_conf, proxy_cpus), tmp / "proxy.log")
        )
        feed = RouteFeed(tmp / "routes.sock", backend_port)
        stack.callback(feed.close)
        logs = LogSocket(tmp / "logplex.sock")
        stack.callback(logs.close)
        kikus: list[tuple[str, list[str]]] = [("(c) kiku, 1 worker", [])]
        if args.python_too:
            kikus.append(("(d) kiku, no fast lane", ["--no-lane"]))
        routers = []
        for name, extra in kikus:
            port = free_port()
            command = [sys.executable, "-m", "kiku.router", "--host", HOST, "--port", str(port)]
            command += ["--routes-socket", str(tmp / "routes.sock")]
            command += ["--log-socket", str(tmp / "logplex.sock"), "--workers", "1", *extra]
            log = tmp / f"router-{port}.log"
            routers.append(
                (name, port, stack.enter_context(started(pinned(command, proxy_cpus), log)))
            )
        for port, process in [(backend_port, backend), (nginx_port, proxy)]:
            wait_answering(port, process)
        for _, port, process in routers:
            wait_answering(port, process)

        rounds: list[list[Figures]] = [[] for _ in range(2 + len(routers))]
        for _ in range(args.rounds):
            rounds[0].append(measure("(a) backend directly", backend_port, [], args, rest_cpus))
            nginx_pids = family(proxy.pid)
            rounds[1].append(
                measure("(b) nginx, 1 worker", nginx_port, nginx_pids, args, rest_cpus)
            )
            for i, (name, port, router) in enumerate(routers):
                rounds[2 + i].append(measure_kiku(name, port, router.pid, logs, args, rest_cpus))
    # The median round by throughput: other load on the host moves single rounds a lot.
    return [sorted(r, key=lambda f: f.rate)[len(r) // 2] for r in rounds]


def measure_kiku(
    name: str,
    port: int,
    pid: int,
    logs: LogSocket,
    args: argparse.Namespace,
    cpus: str | None,
) -> Figures:
    lines_before, datagrams_before = logs.lines, logs.datagrams
    kiku = measure(name, port, [pid], args, cpus)
    time.sleep(0.5)  # the last datagrams
    lines = logs.lines - lines_before
    # One log line per request: wrk counts only the completed ones (a few of the
    # requests it cut off may have been answered and logged too).
    missing = kiku.requests + kiku.warmup_requests - lines
    if missing > 0:
        kiku.errors = "; ".join(filter(None, [kiku.errors, f"log lines short {missing}"]))
    datagrams = logs.datagrams - datagrams_before
    kiku.note = f"router log: {lines} lines in {datagrams} datagrams"
    return kiku


def report(results: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s --latency, Host: {APP_HOST}, "
        f"median of {args.rounds} round(s)"
    )
    print(f"{'':22} {'req/s':>9} {'p50':>9} {'p99':>9} {'CPU/req':>9}")
    for f in results:
        cpu = f"{f.cpu_us:.1f} µs" if f.cpu_us is not None else "-"
        print(f"{f.name:22} {f.rate:9.0f} {f.p50_ms:6.2f} ms {f.p99_ms:6.2f} ms {cpu:>9}")
        if f.errors:
            print(f"{'':22} ! {f.errors}")
        if f.note:
            print(f"{'':22}   {f.note}")
    nginx, kiku = results[1], results[2]
    ratio = kiku.rate / nginx.rate if nginx.rate else 0.0
    kiku_cpu, nginx_cpu = kiku.cpu_us or 0.0, nginx.cpu_us or 0.0
    print()
    _target("kiku/nginx throughput", f"{ratio:.2f}x", f"≥ {TARGET_RATIO}x", ratio >= TARGET_RATIO)
    _target(
        "kiku p99", f"{kiku.p99_ms:.2f} ms", f"≤ {TARGET_P99_MS:g} ms", kiku.p99_ms <= TARGET_P99_MS
    )
    _target(
        "kiku CPU per request",
        f"{kiku_cpu:.1f} µs",
        f"≤ {TARGET_CPU_US:g} µs",
        kiku_cpu <= TARGET_CPU_US,
    )
    if nginx_cpu:
        print(f"{'kiku/nginx CPU/request':24}{kiku_cpu / nginx_cpu:>10.2f}x")


def _target(label: str, value: str, target: str, met: bool) -> None:
    print(f"{label:24}{value:>11}   target {target:9} {'met' if met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per target")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="a, b, c in turn; the median")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU pinning")
    parser.add_argument(
        "--python-too", action="store_true", help="also (d): kiku without its fast lane"
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: run scripts/setup-bench.sh")
    with tempfile.TemporaryDirectory(prefix="kiku-bench-router-") as tmp:
        results = run(args, Path(tmp))
    report(results, args)


if __name__ == "__main__":
    main()
