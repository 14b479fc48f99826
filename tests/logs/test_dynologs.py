"""Dyno output into the logplex: the shim stamps and rotates, the follower reads like
`tail -F` and resumes where a previous control plane stopped."""

import json
import os
import threading
from pathlib import Path

from kiku.dynos.shim import copy_log
from kiku.logs.dynologs import DynoLogFollower
from kiku.logs.lines import LogLine
from kiku.logs.logplex import Logplex
from kikutest import FakeClock

APP = "3f0e4c52-0000-4000-8000-000000000002"


def dyno_dir(root: Path, dyno_id: str = "d1", name: str = "web.1") -> Path:
    directory = root / dyno_id
    directory.mkdir(parents=True)
    handle = {"dyno_id": dyno_id, "name": name, "app_id": APP}
    (directory / "handle.json").write_text(json.dumps({"handle": handle, "slot": 0}))
    return directory


def write_through_shim(directory: Path, data: list[bytes], rotate_at: int = 1 << 30) -> None:
    read, write = os.pipe()
    copier = threading.Thread(target=copy_log, args=(read, str(directory / "log"), rotate_at))
    copier.start()
    for chunk in data:
        os.write(write, chunk)
    os.close(write)
    copier.join(10)
    assert not copier.is_alive()


def messages(logplex: Logplex) -> list[str]:
    return [line.message for line in logplex.history(APP, 1500)]


def test_shim_stamps_lines_and_keeps_partial_ones_whole(tmp_path: Path) -> None:
    directory = dyno_dir(tmp_path / "dynos")
    write_through_shim(directory, [b"one\ntw", b"o\r\nthree"])
    rows = (directory / "log").read_bytes().splitlines()
    assert [row.split(b" ", 1)[1] for row in rows] == [b"one", b"two", b"three"]
    assert all(float(row.split(b" ", 1)[0]) > 1e9 for row in rows)


def test_follower_reads_rotated_files_and_resumes_after_restart(tmp_path: Path) -> None:
    root = tmp_path / "dynos"
    directory = dyno_dir(root)
    logplex = Logplex(tmp_path / "logs")
    follower = DynoLogFollower(root, logplex)
    assert follower.poll() == 0  # no output yet
    write_through_shim(directory, [f"line {i}\n".encode() for i in range(50)], rotate_at=200)
    assert (directory / "log.1").exists()  # rotated along the way
    follower.poll()
    # Each rotation keeps one old file: lines older than that are gone, the rest in order.
    got = messages(logplex)
    assert len(got) > 5
    assert got == [f"line {i}" for i in range(50 - len(got), 50)]
    assert {line.process for line in logplex.history(APP, 10)} == {"web.1"}
    follower.close()  # saves the position

    # A new control plane: nothing repeated, new output picked up.
    write_through_shim(directory, [b"after restart\n"])
    again = DynoLogFollower(root, logplex)
    again.poll()
    assert messages(logplex) == [*got, "after restart"]
    again.close()


def test_follower_takes_the_last_lines_before_the_dyno_goes(tmp_path: Path) -> None:
    root = tmp_path / "dynos"
    directory = dyno_dir(root, "d2", "run.1234")
    logplex = Logplex(tmp_path / "logs")
    follower = DynoLogFollower(root, logplex)
    write_through_shim(directory, [b"quick one-off\n"])
    follower.finish("d2")  # the backend's remove() calls this before deleting the dir
    assert messages(logplex) == ["quick one-off"]
    follower.poll()
    assert messages(logplex) == ["quick one-off"]


class Busy:
    """A consumer that keeps up but is full right now (a drain between two sends)."""

    def __init__(self) -> None:
        self.level = 0.9
        self.lines: list[str] = []

    def offer(self, line: LogLine) -> None:
        self.lines.append(line.message)

    def pressure(self) -> float:
        return self.level


def test_a_busy_consumer_holds_the_burst_in_the_file_for_a_while(tmp_path: Path) -> None:
    root = tmp_path / "dynos"
    directory = dyno_dir(root)
    logplex = Logplex(tmp_path / "logs")
    busy = Busy()
    logplex.attach(APP, busy)
    clock = FakeClock()
    follower = DynoLogFollower(root, logplex, clock=clock)
    write_through_shim(directory, [b"burst\n"])
    follower.poll()
    assert busy.lines == []  # waits in the file while the consumer is busy
    busy.level = 0.1
    follower.poll()
    assert busy.lines == ["burst"]

    busy.level = 0.9
    write_through_shim(directory, [b"more\n"])
    follower.poll()
    clock.advance(0.6)  # busy for longer than MAX_HOLD: it is slower than the dyno
    follower.poll()
    assert busy.lines == ["burst", "more"]
    write_through_shim(directory, [b"and more\n"])
    follower.poll()  # no new pause right after one that did not help
    assert busy.lines == ["burst", "more", "and more"]
    follower.close()
