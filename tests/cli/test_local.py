"""local: `kiku local` runs the Procfile here, with real processes (bash) in tmp dirs.

Every test checks that nothing it started is left running: each process leads its own
process group, and the groups must be empty (zombies aside) once the run is over.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cli.clitest import Kiku
from kiku.cli.commands.local import renderer
from kiku.cli.local_runner import (
    EnvFileError,
    Event,
    Exited,
    Killing,
    LocalRunner,
    Output,
    ProcessSpec,
    Started,
    Stopping,
    parse_env,
    plan,
)
from kiku.cli.printer import Printer, label_style

TIME = r"\d\d:\d\d:\d\d"


# -- no process left behind ------------------------------------------------------------


def group_members(pgids: set[int]) -> list[int]:
    """Live (not zombie) processes in any of `pgids`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgid = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgid) in pgids and state != "Z":
            found.append(int(entry.name))
    return found


class Recording(LocalRunner):
    """A LocalRunner that remembers itself, so the test can check its processes."""

    made: ClassVar[list[LocalRunner]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Recording.made.append(self)


@pytest.fixture(autouse=True)
def no_leftovers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LocalRunner]]:
    """Every runner a test makes (directly or via the command) must leave nothing running."""
    made: ClassVar[list[LocalRunner]] = []
    monkeypatch.setattr(Recording, "made", made)
    monkeypatch.setattr("kiku.cli.commands.local.LocalRunner", Recording)
    monkeypatch.setattr("cli.clitest.CLIENT_MODULES", ("local",))
    yield made
    pgids = {pid for runner in made for pid in runner.pids}
    left = group_members(pgids)
    for pgid in pgids:  # clean up before failing, so one bad test spoils no other
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    assert left == [], f"processes left running: {left}"


def runner(
    procfile: dict[str, str], tmp_path: Path, **kwargs: Any
) -> tuple[Recording, list[Event]]:
    events: list[Event] = []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **kwargs.pop("env", {})}
    made = Recording(
        procfile,
        env,
        kwargs.pop("base_port", 5000),
        kwargs.pop("concurrency", None),
        emit=events.append,
        cwd=tmp_path,
        **kwargs,
    )
    return made, events


def lines(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.process.name, e.line) for e in events if isinstance(e, Output)]


def exits(events: list[Event]) -> dict[str, str]:
    return {e.process.name: e.status for e in events if isinstance(e, Exited)}


# -- plan ------------------------------------------------------------------------------


def test_ports_follow_foreman_procfile_place_times_100_plus_instance() -> None:
    types = {"web": "a", "release": "b", "worker": "c", "clock": "d"}
    specs = plan(types, 5000, {"web": 2, "release": 0, "clock": 0, "worker": 3})
    assert [(s.name, s.port, s.index) for s in specs] == [
        ("web.1", 5000, 0),
        ("web.2", 5001, 1),
        ("worker.1", 5200, 2),
        ("worker.2", 5201, 3),
        ("worker.3", 5202, 4),
    ]


def test_plan_runs_one_of_each_type_by_default_and_rejects_unknown_types() -> None:
    assert [s.name for s in plan({"web": "a", "worker": "b"}, 7000)] == ["web.1", "worker.1"]
    with pytest.raises(ValueError, match="Unknown process type: clock"):
        plan({"web": "a"}, 5000, {"clock": 1})


# -- .env ------------------------------------------------------------------------------


def test_env_file_format_like_foreman() -> None:
    text = (
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED = padded value   # trailing comment\n"
        "EMPTY=\n"
        "HASH=a#b\n"
        "SINGLE='lit\\n $HOME # kept'\n"
        'DOUBLE="line1\\nline2 \\"q\\" \\\\"\n'
        "URL=postgres://u:p@host/db?x=1\n"
    )
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded value",
        "EMPTY": "",
        "HASH": "a#b",
        "SINGLE": "lit\\n $HOME # kept",
        "DOUBLE": 'line1\nline2 "q" \\',
        "URL": "postgres://u:p@host/db?x=1",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OK=1\nnot a pair\n", "my.env line 2 is not KEY=value: 'not a pair'"),
        ("1BAD=x\n", "my.env line 1 is not KEY=value"),
        ('A="open\n', 'my.env line 1: no closing "'),
        ("A='x' y\n", "my.env line 1: unexpected text after the closing '"),
    ],
)
def test_bad_env_lines_name_the_line(text: str, message: str) -> None:
    with pytest.raises(EnvFileError) as caught:
        parse_env(text, source="my.env")
    assert str(caught.value).startswith(message)


# -- the runner ------------------------------------------------------------------------


def test_first_exit_stops_the_rest_and_gives_its_code(tmp_path: Path) -> None:
    made, events = runner(
        {"web": "echo port $PORT; exit 0", "worker": "sleep 30"}, tmp_path, base_port=6000
    )
    started = time.monotonic()
    assert made.run() == 0
    assert time.monotonic() - started < 5  # the sleep was killed, not waited for
    assert lines(events) == [("web.1", "port 6000")]
    assert exits(events) == {"web.1": "0", "worker.1": "SIGTERM"}
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("Started") == 2 and kinds.count("Stopping") == 1
    # the exit that started the shutdown comes before it
    assert kinds.index("Exited") < kinds.index("Stopping")


def test_exit_code_of_the_first_process_to_exit(tmp_path: Path) -> None:
    made, events = runner({"web": "echo oops >&2; exit 3", "worker": "sleep 30"}, tmp_path)
    assert made.run() == 3
    assert lines(events) == [("web.1", "oops")]  # stderr is merged
    assert exits(events)["web.1"] == "3"


def test_env_cwd_and_no_dyno(tmp_path: Path) -> None:
    made, events = runner(
        {"web": 'echo "$GREETING|$PORT|${DYNO-unset}|$(pwd)"'},
        tmp_path,
        env={"GREETING": "hello there", "PORT": "1"},
    )
    assert made.run() == 0
    assert lines(events) == [("web.1", f"hello there|5000|unset|{tmp_path}")]


def test_concurrency_numbers_instances_and_ports(tmp_path: Path) -> None:
    # each web waits for both to be up, so neither exits before the other has printed
    wait_both = "while [ $(ls up.* 2>/dev/null | wc -l) -lt 2 ]; do sleep 0.02; done"
    made, events = runner(
        {"web": f"echo $PORT; touch up.$PORT; {wait_both}; sleep 30", "worker": wait_both},
        tmp_path,
        concurrency={"web": 2},
    )
    assert made.run() == 0
    assert sorted(lines(events)) == [("web.1", "5000"), ("web.2", "5001")]
    assert exits(events) == {"worker.1": "0", "web.1": "SIGTERM", "web.2": "SIGTERM"}


def test_background_children_of_a_process_are_stopped_too(tmp_path: Path) -> None:
    made, events = runner({"web": "sleep 30 & echo $!; wait", "worker": "sleep 0.5"}, tmp_path)
    assert made.run() == 0
    [(_, child)] = lines(events)
    assert int(child) != made.pids[0]
    assert group_members({made.pids[0]}) == []  # the background sleep was in web.1's group


def test_stop_from_another_thread_is_ctrl_c(tmp_path: Path) -> None:
    up = threading.Event()
    events: list[Event] = []

    def emit(event: Event) -> None:
        events.append(event)
        if isinstance(event, Output):
            up.set()

    made = Recording(
        {"web": "echo up; sleep 30", "worker": "sleep 30"}, {}, 5000, emit=emit, cwd=tmp_path
    )
    threading.Thread(target=lambda: up.wait(10) and made.stop(), daemon=True).start()
    assert made.run() == 130
    assert exits(events) == {"web.1": "SIGTERM", "worker.1": "SIGTERM"}
    assert [e.signal for e in events if isinstance(e, Stopping)] == [signal.SIGTERM]


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
    made, events = runner(
        {"web": stubborn, "worker": "sleep 0.3; exit 4"}, tmp_path, stop_timeout=0.5
    )
    assert made.run() == 4
    assert exits(events) == {"worker.1": "4", "web.1": "SIGKILL"}
    assert [e.process.name for e in events if isinstance(e, Killing)] == ["web.1"]


def test_a_process_killed_by_a_signal_exits_with_128_plus_it(tmp_path: Path) -> None:
    made, events = runner({"web": "kill -9 $$", "worker": "sleep 30"}, tmp_path)
    assert made.run() == 128 + 9
    assert exits(events)["web.1"] == "SIGKILL"


def test_output_lines_carry_the_clock_time(tmp_path: Path) -> None:
    moment = datetime(2024, 5, 1, 9, 8, 7)
    seen: list[Event] = []
    made = Recording(
        {"web": "echo hi"}, {}, 5000, clock=lambda: moment, emit=seen.append, cwd=tmp_path
    )
    assert made.run() == 0
    assert {e.at for e in seen} == {moment}
    assert isinstance(seen[0], Started) and seen[0].pid == made.pids[0]


# -- rendering -------------------------------------------------------------------------


def test_lines_are_prefixed_with_time_and_padded_name() -> None:
    out, err = io.StringIO(), io.StringIO()
    web = ProcessSpec("web.1", "web", "x", 5000, 0)
    worker = ProcessSpec("worker.1", "worker", "y", 5100, 1)
    render = renderer(Printer(out, err, color=False), [web, worker])
    at = datetime(2024, 5, 1, 13, 4, 5)
    render(Output(web, "listening on 5000", at))
    render(Output(worker, "\x1b[32mgreen\x1b[0m text", at))
    render(Exited(web, 0, None, at))
    render(Stopping(signal.SIGTERM, at))
    render(Exited(worker, None, signal.SIGTERM, at))
    render(Killing(worker, 5.0, at))
    assert out.getvalue() == (
        "13:04:05 web.1    | listening on 5000\n13:04:05 worker.1 | green text\n"
    )
    assert err.getvalue() == (
        "13:04:05 web.1    Exited with exit code 0\n"
        "[DONE] Killing all processes with signal SIGTERM\n"
        "13:04:05 worker.1 Exited with exit code SIGTERM\n"
        "[WARN] Killing worker.1 with SIGKILL: still running 5s after SIGTERM\n"
    )


def test_each_process_keeps_its_own_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    specs = [ProcessSpec(f"web.{n}", "web", "x", 5000 + n, n - 1) for n in (1, 2)]
    render = renderer(Printer(out, io.StringIO(), color=True), specs)
    at = datetime(2024, 5, 1)
    for spec in [*specs, specs[0]]:
        render(Output(spec, "x", at))
    first, second, again = out.getvalue().splitlines()
    assert first == again and first != second and "\x1b[" in first
    assert label_style(0) != label_style(1) and label_style(7) == label_style(0)


# -- the command -----------------------------------------------------------------------


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_local_runs_every_type_but_release_with_env_and_ports(kiku: Kiku) -> None:
    write(
        kiku.cwd,
        "Procfile",
        'web: echo "web $PORT $GREETING"\nrelease: echo migrating\nworker: sleep 30\n',
    )
    write(kiku.cwd, ".env", "export GREETING='hello'\n")
    run = kiku("local")
    assert run.exit_code == 0, run.output
    assert re.fullmatch(rf"{TIME} web\.1    \| web 5000 hello\n", run.stdout), run.stdout
    err = run.stderr.splitlines()
    assert err[0] == "[OKAY] Loaded ENV .env File as KEY=VALUE Format"
    assert re.fullmatch(rf"{TIME} web\.1    Exited with exit code 0", err[1])
    assert err[2] == "[DONE] Killing all processes with signal SIGTERM"
    assert re.fullmatch(rf"{TIME} worker\.1 Exited with exit code SIGTERM", err[3])


def test_local_runs_the_types_given_with_concurrency_and_port(kiku: Kiku) -> None:
    wait_all = "while [ $(ls up.* 2>/dev/null | wc -l) -lt 3 ]; do sleep 0.02; done"
    write(
        kiku.cwd,
        "Procfile",
        f"web: echo web $PORT; touch up.$PORT; {wait_all}; sleep 30\n"
        f"worker: echo worker $PORT; touch up.$PORT; {wait_all}\n"
        "clock: echo never\n",
    )
    run = kiku("local", "web,worker", "-c", "web=2", "-p", "7000")
    assert run.exit_code == 0, run.output
    shown = sorted(line.split(" ", 1)[1] for line in run.stdout.splitlines())
    assert shown == [
        "web.1    | web 7000",
        "web.2    | web 7001",
        "worker.1 | worker 7100",
    ]


def test_local_port_from_the_environment_and_exit_code(kiku: Kiku) -> None:
    write(kiku.cwd, "Procfile", "web: echo $PORT; exit 7\n")
    run = kiku("local", "web", PORT="8000")
    assert run.exit_code == 7
    assert run.stdout.endswith("web.1 | 8000\n")


def test_local_with_other_procfile_and_env_file(kiku: Kiku, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    write(app, "Procfile.dev", "web: echo $WHO in $(basename $(pwd))\n")
    write(tmp_path, "dev.env", 'WHO="the dev"\n')
    run = kiku("local", "-f", str(app / "Procfile.dev"), "--env", str(tmp_path / "dev.env"))
    assert run.exit_code == 0, run.output
    assert run.stdout.endswith("web.1 | the dev in app\n")
    assert "[OKAY] Loaded ENV dev.env File as KEY=VALUE Format" in run.stderr


def test_local_without_a_procfile(kiku: Kiku) -> None:
    run = kiku("local")
    assert run.exit_code == 1
    assert run.stderr == "Error: No Procfile found. Create one or pass --procfile.\n"
    run = kiku("local", "-f", "Nope")
    assert run.stderr == f"Error: No Procfile found at {kiku.cwd / 'Nope'}.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clock"], "Error: Process type clock not found in Procfile.\nTypes: web, worker\n"),
        (["web,clock"], "Error: Process type clock not found in Procfile.\nTypes: web, worker\n"),
        (
            ["-c", "web=two"],
            "Error: Invalid concurrency 'web=two'.\nUsage: kiku local -c web=2,worker=1\n",
        ),
        (["-c", "db=1"], "Error: Process type db not found in Procfile.\nTypes: web, worker\n"),
        (["-c", "web=0,worker=0"], "Error: No processes to run: every concurrency is 0.\n"),
        (["-e", "missing.env"], "Error: No env file found at {cwd}/missing.env.\n"),
    ],
)
def test_local_argument_errors(kiku: Kiku, args: list[str], message: str) -> None:
    write(kiku.cwd, "Procfile", "web: sleep 30\nworker: sleep 30\n")
    run = kiku("local", *args)
    assert run.exit_code == 1
    assert run.stderr == message.format(cwd=kiku.cwd)


def test_local_bad_port_and_bad_files(kiku: Kiku) -> None:
    write(kiku.cwd, "Procfile", "web: sleep 30\n")
    assert "Invalid value for '-p'" in kiku("local", "-p", "0").stderr
    run = kiku("local", PORT="http")
    assert run.stderr == "Error: PORT from $PORT is not a port number: 'http'\n"
    write(kiku.cwd, ".env", "A=1\nB\n")
    run = kiku("local")
    assert run.stderr == f"Error: {kiku.cwd / '.env'} line 2 is not KEY=value: 'B'\n"
    write(kiku.cwd, "Procfile", "web sleep\n")
    assert "Procfile line 1 is not `type: command`" in kiku("local").stderr


def test_ctrl_c_stops_everything_with_130(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Procfile",
        "web: echo $$ > web.pid; exec sleep 30\nworker: echo $$ > worker.pid; exec sleep 30\n",
    )
    kiku_local = subprocess.Popen(
        [sys.executable, "-m", "kiku.cli.main", "local"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            pids = {
                int(text)
                for name in ("web.pid", "worker.pid")
                if (path := tmp_path / name).exists() and (text := path.read_text().strip())
            }
            time.sleep(0.05)
        assert len(pids) == 2, "the processes did not start"
        kiku_local.send_signal(signal.SIGINT)
        _, err = kiku_local.communicate(timeout=20)
    finally:
        if kiku_local.poll() is None:
            kiku_local.kill()
            kiku_local.wait()
        for pgid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    assert kiku_local.returncode == 130, err
    assert "[DONE] Killing all processes with signal SIGTERM" in err
    assert re.search(r"web\.1    Exited with exit code SIGTERM", err)
    assert "Traceback" not in err
    assert group_members(pids) == []
