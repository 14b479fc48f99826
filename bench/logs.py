"""Logplex figures against a real `kiku server`: one dyno printing lines, through to a tail
session (Server-Sent Events, as the official CLI reads it) and a syslog drain.

    .venv/bin/python bench/logs.py [--lines 200000] [--steady-rate 20000] [--steady-seconds 5]

Starts `kiku server` on free ports in a temp data dir, deploys a Procfile-only app with two
process types that print numbered lines, opens a tail session and adds a `syslog://` drain
to a receiver in this process, and then, one at a time:

  1. `blast`: one dyno prints --lines lines as fast as it can. Printed: the dyno's own
     rate, and for the tail and the drain: lines/s from the first line to the last one
     received, and lines lost (a tail that falls behind drops lines and says L11; a drain
     that falls behind drops and says L10);
  2. `steady`: one dyno prints --steady-rate lines/s for --steady-seconds. Printed: lines
     lost at the tail and at the drain (target: 0 at 20k lines/s).

Target (issue 6): >= 20k lines/s, 0 lost under it. This prints figures; it judges nothing.
Whatever happens, the server is stopped and every dyno it ran is reaped.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_requests import (
    ACCEPT,
    create_user,
    kiku_command,
    login,
    reap,
    running_server,
    wait_for_server_command,
)
from push import Repo

TARGET = 20_000
# Prints `<tag> <n>` lines: all at once (rate 0) or at a steady rate, then `<tag> done`.
PRINTER = """import sys, time
tag, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
out = sys.stdout
started = time.perf_counter()
if rate <= 0:
    for i in range(count):
        out.write(f"{tag} {i}\\n")
    out.flush()
else:
    step = 1000
    for i in range(0, count, step):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        out.write("".join(f"{tag} {j}\\n" for j in range(i, min(i + step, count))))
        out.flush()
elapsed = time.perf_counter() - started
print(f"{tag} done {count} {elapsed:.3f}", flush=True)
time.sleep(3600)
"""
NUMBERED = re.compile(rb"(blast|steady) (\d+)$")


@dataclass
class Counter:
    """Numbered lines one consumer received, per tag, with first and last arrival times."""

    seen: dict[str, set[int]] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, text: bytes) -> None:
        match = NUMBERED.search(text)
        if match is None:
            if b"Error L1" in text:
                self.notices.append(text.decode(errors="replace"))
            return
        tag, number = match.group(1).decode(), int(match.group(2))
        now = time.perf_counter()
        with self.lock:
            self.seen.setdefault(tag, set()).add(number)
            self.first.setdefault(tag, now)
            self.last[tag] = now

    def report(self, name: str, tag: str, count: int) -> str:
        got = len(self.seen.get(tag, ()))
        span = self.last.get(tag, 0.0) - self.first.get(tag, 0.0)
        rate = f"{got / span:,.0f} lines/s" if span > 0 else "-"
        return f"{name}: {got:,} of {count:,} received ({rate}), {count - got:,} lost"


def tail(url: str, counter: Counter, stop: threading.Event) -> None:
    headers = {"Accept": "text/event-stream"}
    try:
        with httpx.stream("GET", url, headers=headers, timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    counter.line(line.encode())
                if stop.is_set():
                    return
    except httpx.HTTPError:
        if not stop.is_set():
            raise  # the server ended the stream while we still listened


def syslog_receiver(sock: socket.socket, counter: Counter, stop: threading.Event) -> None:
    """Octet-counted RFC 5424 frames: `LEN MSG`."""
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        threading.Thread(target=_frames, args=(conn, counter, stop), daemon=True).start()


def _frames(conn: socket.socket, counter: Counter, stop: threading.Event) -> None:
    buffer = b""
    conn.settimeout(0.5)
    with conn:
        while not stop.is_set():
            try:
                data = conn.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                return
            buffer += data
            at = 0
            while True:
                space = buffer.find(b" ", at)
                if space < 0:
                    break
                end = space + 1 + int(buffer[at:space])
                if end > len(buffer):
                    break
                counter.line(buffer[space + 1 : end].rstrip(b"\n"))
                at = end
            buffer = buffer[at:]


def run(lines: int, steady_rate: int, steady_seconds: float) -> None:
    kiku = kiku_command()
    wait_for_server_command(kiku)
    root = Path(tempfile.mkdtemp(prefix="kiku-bench-logs-"))
    data_dir = root / "data"
    stop = threading.Event()
    try:
        with running_server(kiku, data_dir) as server:
            print(f"kiku server pid {server.process.pid} at {server.url}; {os.cpu_count()} cores")
            user = create_user(kiku, server.data_dir, "bench@example.com")
            with httpx.Client(base_url=server.url, headers=ACCEPT, timeout=60) as client:
                _, token = login(client, user, user.recovery_codes[0])
                client.headers["Authorization"] = f"Bearer {token}"
                measure(client, server.url, token, root, lines, steady_rate, steady_seconds, stop)
    finally:
        stop.set()
        try:
            print(f"(reaped {reap(data_dir)} dyno(s) left running after the server stopped)")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def measure(
    client: httpx.Client,
    url: str,
    token: str,
    root: Path,
    lines: int,
    steady_rate: int,
    steady_seconds: float,
    stop: threading.Event,
) -> None:
    app = "bench-logs"
    client.post("/apps", json={"name": app}).raise_for_status()
    steady_count = int(steady_rate * steady_seconds)
    repo = Repo(root / app, root / "home", token)
    (repo.path / "printer.py").write_text(PRINTER)
    (repo.path / "Procfile").write_text(
        f"blast: python3 printer.py blast {lines} 0\n"
        f"steady: python3 printer.py steady {steady_count} {steady_rate}\n"
    )
    repo.commit("printer")
    repo.push(f"{url}/{app}.git")

    tailed, drained = Counter(), Counter()
    receiver = socket.create_server(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    threading.Thread(target=syslog_receiver, args=(receiver, drained, stop), daemon=True).start()
    client.post(f"/apps/{app}/log-drains", json={"url": f"syslog://127.0.0.1:{port}"})
    session = client.post(f"/apps/{app}/log-sessions", json={"tail": True, "lines": 0}).json()
    threading.Thread(target=tail, args=(session["logplex_url"], tailed, stop), daemon=True).start()
    time.sleep(1.0)  # the drain connects, the tail opens

    for tag, count, rate in (("blast", lines, 0), ("steady", steady_count, steady_rate)):
        done = phase(client, app, tag, count, tailed, drained)
        label = "as fast as it can" if rate == 0 else f"at {rate:,} lines/s"
        print(f"\n{tag}: one dyno printing {count:,} lines {label}")
        if done:
            print(f"   the dyno printed them in {done:.2f} s ({count / done:,.0f} lines/s)")
        print("   " + tailed.report("tail session", tag, count))
        print("   " + drained.report("syslog drain", tag, count))
        client.patch(f"/apps/{app}/formation/{tag}", json={"quantity": 0})
    for name, counter in (("tail", tailed), ("drain", drained)):
        for notice in counter.notices[:2] + counter.notices[2:][-2:]:
            print(f"   ({name} was told: {notice})")
    print(f"\ntarget: >= {TARGET:,} lines/s through to a tail and a drain, 0 lost under it")
    stop.set()


def phase(
    client: httpx.Client, app: str, tag: str, count: int, tailed: Counter, drained: Counter
) -> float | None:
    """Run one printer dyno; answer its own printing time once both consumers are quiet."""
    client.patch(f"/apps/{app}/formation/{tag}", json={"quantity": 1}).raise_for_status()
    deadline = time.monotonic() + 120
    printed: float | None = None
    quiet_since = time.monotonic()
    previous = -1
    while time.monotonic() < deadline:
        time.sleep(0.25)
        got = len(tailed.seen.get(tag, ())) + len(drained.seen.get(tag, ()))
        if got != previous:
            previous, quiet_since = got, time.monotonic()
        if got == 2 * count or (got and time.monotonic() - quiet_since > 3):
            break
    history = client.post(
        f"/apps/{app}/log-sessions", json={"lines": 1500, "dyno": tag, "source": "app"}
    ).json()
    text = httpx.get(history["logplex_url"], timeout=30).text
    for row in text.splitlines():
        if f" {tag} done " in row:
            printed = float(row.rsplit(" ", 1)[1])
    return printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--steady-rate", type=int, default=TARGET)
    parser.add_argument("--steady-seconds", type=float, default=5.0)
    args = parser.parse_args()
    run(args.lines, args.steady_rate, args.steady_seconds)


if __name__ == "__main__":
    main()
