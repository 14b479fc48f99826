"""Figures for kiku's Platform API, measured against a real `kiku server` over 127.0.0.1.

    .venv/bin/python bench/api_requests.py [--apps 250] [--requests 2000] [--concurrency 16]

Starts `kiku server` on free ports in a temp data dir (SQLite, rate limit lifted), creates
users with `kiku admin:create-user`, logs in over HTTP with TOTP, creates the apps, then
prints latencies and rates. Nothing here asserts a figure: it reports, it does not judge.
The client runs on the same host and shares its cores with the server, so the rates are
what one machine does with both ends, not the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp

from kiku.settings import DEFAULT_APPS_PER_ACCOUNT as APPS_PER_ACCOUNT

HOST = "127.0.0.1"
PASSWORD = "bench horse battery staple"
ACCEPT = {"Accept": "application/vnd.heroku+json; version=3"}
TOTP_STEP = 30


def kiku_command() -> str:
    beside = Path(sys.executable).parent / "kiku"  # the venv this script runs in
    found = str(beside) if beside.exists() else shutil.which("kiku")
    if not found:
        sys.exit("cannot find the `kiku` command; run with the project's .venv/bin/python")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path
    router_port: int = 0


def wait_for_server_command(kiku: str, timeout: float = 120.0) -> None:
    """`kiku server` may still be being written when the bench first runs: poll for it."""
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run([kiku, "server", "--help"], capture_output=True, check=False)
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            sys.exit(f"`kiku server` is not available:\n{probe.stderr.decode()}")
        time.sleep(2)


@contextmanager
def running_server(kiku: str, data_dir: Path) -> Iterator[Server]:
    api_port, router_port = free_port(), free_port()
    # Drains to receivers on this host (bench/logs.py) are allowed.
    env = {**os.environ, "KIKU_RATE_LIMIT": "1000000", "KIKU_DRAIN_ALLOW_PRIVATE": "1"}
    env.pop("KIKU_DATABASE_URL", None)  # always a throwaway SQLite in the temp dir
    log = data_dir.parent / "server.log"
    command = [
        kiku,
        "server",
        "--data-dir",
        str(data_dir),
        "--api-host",
        HOST,
        "--api-port",
        str(api_port),
        "--router-port",
        str(router_port),
        "--router-tls-port",
        str(free_port()),
        "--rendezvous-port",
        str(free_port()),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://{HOST}:{api_port}", data_dir, log, router_port)
    try:
        wait_until_answering(server)
        yield server
    finally:
        stop(process)
        from kiku.routing.processes import stop_router

        stop_router(data_dir / "run")  # the router outlives kiku server by design


def wait_until_answering(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"kiku server exited early:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/schema", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"kiku server did not answer in {timeout}s:\n{server.log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- users and logins ----------------------------------------------------------------------


@dataclass
class User:
    email: str
    totp_secret: str
    recovery_codes: list[str]
    token: str = ""


def create_user(kiku: str, data_dir: Path, email: str) -> User:
    command = [kiku, "admin:create-user", email, "--password", PASSWORD, "--json"]
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir)],
        capture_output=True,
        check=True,
    )
    payload = json.loads(result.stdout)
    return User(payload["email"], payload["totp_secret"], payload["recovery_codes"])


def login(client: httpx.Client, user: User, code: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.post(
        "/oauth/authorizations",
        auth=(user.email, PASSWORD),
        headers={"Heroku-Two-Factor-Code": code},
        json={"description": "bench", "scope": ["global"]},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    token: str = response.json()["access_token"]["token"]
    return elapsed, token


def totp_logins(client: httpx.Client, user: User) -> list[float]:
    """Three real TOTP logins: kiku accepts a code once, from the steps either side of now.

    Codes for steps now-1, now and now+1 are used oldest first; a code is never reused.
    """
    while time.time() % TOTP_STEP > TOTP_STEP - 3:  # not across a step boundary
        time.sleep(0.2)
    step = int(time.time()) // TOTP_STEP
    totp = pyotp.TOTP(user.totp_secret)
    samples = []
    for offset in (-1, 0, 1):
        elapsed, user.token = login(client, user, totp.at((step + offset) * TOTP_STEP))
        samples.append(elapsed)
    return samples


# -- measurements --------------------------------------------------------------------------


def timed_get(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text}")
    return elapsed


def report_latencies(label: str, samples: list[float], wall: float) -> None:
    print(
        f"{label}: {len(samples) / wall:,.0f} req/s over {len(samples)} requests; "
        f"p50 {ms(percentile(samples, 0.5))}, p99 {ms(percentile(samples, 0.99))}, "
        f"max {ms(max(samples))}"
    )


def sequential_gets(client: httpx.Client, names: list[str], count: int) -> None:
    for name in names[:20]:  # warm the connection and the server's caches
        timed_get(client, f"/apps/{name}")
    started = time.perf_counter()
    samples = [timed_get(client, f"/apps/{names[i % len(names)]}") for i in range(count)]
    report_latencies("GET /apps/{name}, sequential", samples, time.perf_counter() - started)


async def concurrent_gets(
    url: str, token: str, names: list[str], count: int, concurrency: int
) -> None:
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def worker(first: int, total: int) -> None:
            for i in range(first, total, concurrency):
                path = f"/apps/{names[i % len(names)]}"
                started = time.perf_counter()
                response = await client.get(path)
                samples.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code} {response.text}")

        await asyncio.gather(*(worker(i, 4 * concurrency) for i in range(concurrency)))  # warm
        samples.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(i, count) for i in range(concurrency)))
        wall = time.perf_counter() - started
    report_latencies(f"GET /apps/{{name}}, {concurrency} concurrent clients", samples, wall)


def full_listing(client: httpx.Client, page_size: int | None) -> tuple[float, int, int]:
    """Page through GET /apps by Next-Range; answers (seconds, pages, apps)."""
    headers = {"Range": f"name ..; max={page_size}"} if page_size else {}
    started = time.perf_counter()
    pages = seen = 0
    while True:
        response = client.get("/apps", headers=headers)
        if response.status_code not in (200, 206):
            raise RuntimeError(f"GET /apps: {response.status_code} {response.text}")
        pages += 1
        seen += len(response.json())
        following = response.headers.get("Next-Range")
        if response.status_code == 200 or not following:
            break
        headers = {"Range": following}
    return time.perf_counter() - started, pages, seen


def listings(client: httpx.Client, expected: int, rounds: int = 10) -> None:
    for page_size in (None, 25):
        runs = [full_listing(client, page_size) for _ in range(rounds)]
        _, pages, seen = runs[0]
        if seen != expected:
            raise RuntimeError(f"listing saw {seen} apps, expected {expected}")
        label = "default page size" if page_size is None else f"Range max={page_size}"
        print(
            f"GET /apps full listing of {seen} apps ({label}, {pages} pages): "
            f"median {ms(statistics.median(r[0] for r in runs))} over {rounds} listings"
        )


# -- the run -------------------------------------------------------------------------------


def run(apps: int, requests: int, concurrency: int) -> None:
    kiku = kiku_command()
    wait_for_server_command(kiku)
    root = Path(tempfile.mkdtemp(prefix="kiku-bench-"))
    began = time.perf_counter()
    try:
        with running_server(kiku, root / "data") as server:
            print(f"kiku server pid {server.process.pid} at {server.url}")
            print(f"server RSS at start: {rss_mb(server.process.pid):.1f} MB")
            measure(kiku, server, apps, requests, concurrency)
            print(f"server RSS after the run: {rss_mb(server.process.pid):.1f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"(bench took {time.perf_counter() - began:.1f} s)")


def measure(kiku: str, server: Server, apps: int, requests: int, concurrency: int) -> None:
    # Heroku's default of 100 apps per owner stays (KIKU_APPS_PER_ACCOUNT could raise it):
    # the bench user owns 100 and collaborates on the rest, as a team member would, so the
    # listing also exercises the collaborator half of "apps visible to me".
    owners_needed = -(-apps // APPS_PER_ACCOUNT)
    users = [
        create_user(kiku, server.data_dir, f"bench{i}@example.com") for i in range(owners_needed)
    ]
    main = users[0]
    with httpx.Client(base_url=server.url, headers=ACCEPT, timeout=30) as client:
        logins = [sample for user in users for sample in totp_logins(client, user)]
        print(
            f"login, POST /oauth/authorizations with TOTP: median {ms(statistics.median(logins))}"
            f" (n={len(logins)}; argon2 password check included)"
        )
        recovery = [login(client, main, code)[0] for code in main.recovery_codes]
        print(
            f"login with a recovery code instead: median {ms(statistics.median(recovery))}"
            f" (n={len(recovery)})"
        )

        names, creates = [], []
        for i in range(apps):
            owner = users[i // APPS_PER_ACCOUNT]
            name = f"bench-app-{i:04d}"
            auth = {"Authorization": f"Bearer {owner.token}"}
            started = time.perf_counter()
            response = client.post("/apps", headers=auth, json={"name": name})
            creates.append(time.perf_counter() - started)
            response.raise_for_status()
            names.append(name)
            if owner is not main:
                shared = client.post(
                    f"/apps/{name}/collaborators", headers=auth, json={"user": main.email}
                )
                shared.raise_for_status()
        print(
            f"POST /apps: median {ms(statistics.median(creates))}, "
            f"p99 {ms(percentile(creates, 0.99))} (n={len(creates)}; "
            f"{len(users)} owners, the bench user collaborating on the apps it does not own)"
        )

        client.headers["Authorization"] = f"Bearer {main.token}"
        sequential_gets(client, names, requests)
        asyncio.run(concurrent_gets(server.url, main.token, names, requests, concurrency))
        listings(client, expected=apps)


def reap(data_dir: Path) -> int:
    """Stop the router and every dyno the bench's data dir still runs (both outlive
    `kiku server`)."""
    from kiku.routing.processes import stop_router

    stop_router(data_dir / "run")
    if not (data_dir / "dynos").exists():
        return 0
    from kiku.dynos.backends.local import LocalBackend
    from kiku.settings import Settings

    backend = LocalBackend.from_settings(Settings.from_env(os.environ, data_dir=data_dir))
    handles = backend.adopt()
    for handle in handles:
        backend.stop(handle, 5)
        backend.remove(handle)
    backend.close()
    return len(handles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=250)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    run(args.apps, args.requests, args.concurrency)


if __name__ == "__main__":
    main()
