"""log-runtime-metrics (HEROKU_BEHAVIOUR §4.5): line format, load average math, the sampler
over fake cgroup and /proc trees, the store's running dynos, and one real cgroup."""

import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiku.dynos.cgroups import CGROUP_ROOT, DynoCgroup, available_controllers
from kiku.logs.loadavg import LoadAverage, runnable
from kiku.logs.logplex import Logplex
from kiku.logs.metrics import Metrics
from kiku.logs.runtime_metrics import (
    MemoryStat,
    RunningDyno,
    RuntimeSampler,
    app_number,
    running_dynos,
    runtime_lines,
)
from kiku.platform import Platform
from kiku.store.models import App, Dyno, User
from kikutest import FakeClock

MB = 2**20
APP_ID = "b5d3f2c1-0000-4000-8000-000000000001"
DYNO_ID = "d97d0ea7-cf3d-411b-b453-d2943a50b456"
STAT = """cache 0
rss 0
swap 0
pgpgin 0
pgpgout 0
hierarchical_memory_limit 1073741824
total_cache 2097152
total_rss 22251520
total_rss_huge 0
total_swap 0
total_pgpgin 348836
total_pgpgout 343403
"""


def dyno(**changes: object) -> RunningDyno:
    fields: dict[str, object] = {
        "app_id": APP_ID,
        "dyno_id": DYNO_ID,
        "name": "web.1",
        "type": "web",
        "size": "standard-1x",
        "log_metrics": True,
    }
    return RunningDyno(**{**fields, **changes})  # type: ignore[arg-type]


# -- the lines -------------------------------------------------------------------------


def test_lines_are_heroku_s() -> None:
    memory = MemoryStat.parse(STAT)
    assert (memory.rss, memory.cache, memory.swap, memory.total) == (
        22251520,
        2 * MB,
        0,
        22251520 + 2 * MB,
    )
    lines = runtime_lines(dyno(), (2.456, 1.06, 0.994), memory, 512 * MB)
    who = f"source=web.1 dyno=heroku.{int('b5d3f2c1', 16)}.{DYNO_ID}"
    assert lines == [
        f"{who} sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99",
        f"{who} sample#memory_total=23.22MB sample#memory_rss=21.22MB "
        "sample#memory_cache=2.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages "
        "sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB",
    ]


def test_app_number_is_stable_and_numeric() -> None:
    assert app_number(APP_ID) == 3050566337 == app_number(APP_ID)
    assert app_number(str(uuid.UUID(int=0))) == 0


def test_memory_stat_without_hierarchy_totals() -> None:
    memory = MemoryStat.parse("cache 4096\nrss 8192\nswap 0\npgpgin 3\npgpgout 1\n")
    assert memory == MemoryStat(rss=8192, cache=4096, swap=0, pgpgin=3, pgpgout=1)


# -- load average ----------------------------------------------------------------------


def test_load_average_follows_the_kernel_s_decay() -> None:
    load = LoadAverage(at=0)
    for tick in range(1, 13):  # two runnable tasks for a minute, counted every 5 s
        load.update(2, at=tick * 5.0)
    one, five, fifteen = load.values
    assert one == pytest.approx(2 * (1 - math.exp(-1)))
    assert five == pytest.approx(2 * (1 - math.exp(-60 / 300)))
    assert fifteen == pytest.approx(2 * (1 - math.exp(-60 / 900)))
    # The kernel's fixed-point EXP_1 (1884/2048 per 5 s) gives the same within 0.1 %.
    kernel = 0.0
    for _ in range(12):
        kernel = kernel * 1884 / 2048 + 2 * (1 - 1884 / 2048)
    assert one == pytest.approx(kernel, rel=1e-3)

    for tick in range(13, 25):  # then idle for a minute: it decays by e
        load.update(0, at=tick * 5.0)
    assert load.values[0] == pytest.approx(one / math.e)


def test_a_late_tick_weighs_what_the_time_that_passed_weighs() -> None:
    regular, late = LoadAverage(at=0), LoadAverage(at=0)
    for tick in (5.0, 10.0, 15.0):
        regular.update(3, at=tick)
    late.update(3, at=15.0)
    assert late.values == pytest.approx(regular.values)
    late.update(9, at=15.0)  # no time passed: nothing to fold in
    assert late.values == pytest.approx(regular.values)


def fake_proc(root: Path, states: dict[int, str]) -> Path:
    for tid, state in states.items():
        (root / str(tid)).mkdir(parents=True)
        (root / str(tid) / "stat").write_text(f"{tid} (odd) name) {state} 1 1 1 0 -1\n")
    return root


def test_runnable_counts_running_and_uninterruptible_tasks(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {10: "R", 11: "S", 12: "D", 13: "Z", 14: "R", 15: "I"})
    assert runnable([10, 11, 12, 13, 14, 15, 99], proc) == 3  # 99 just ended


# -- the sampler -----------------------------------------------------------------------


class Trees:
    """Fake cgroup directories and /proc for some dynos."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = root / "proc"
        self.proc.mkdir()

    def dyno(self, dyno_id: str, tasks: dict[int, str], stat: str = STAT) -> None:
        for controller in ("memory", "cpu"):
            (self.root / controller / dyno_id).mkdir(parents=True)
        (self.root / "memory" / dyno_id / "memory.stat").write_text(stat)
        (self.root / "cpu" / dyno_id / "tasks").write_text("".join(f"{t}\n" for t in tasks))
        fake_proc(self.proc, tasks)

    def groups(self, dyno_id: str) -> dict[str, Path]:
        return {c: self.root / c / dyno_id for c in ("memory", "cpu", "pids")}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


def test_sampler_logs_for_apps_with_the_feature_and_feeds_metrics(
    tmp_path: Path, clock: FakeClock
) -> None:
    trees = Trees(tmp_path)
    trees.dyno("w1", {100: "R", 101: "R", 102: "S"})
    trees.dyno("w2", {200: "S"})
    trees.dyno("one", {300: "R"})
    trees.dyno("free", {400: "S"})
    other = "c0ffee00-0000-4000-8000-000000000002"
    dynos = [
        dyno(dyno_id="w1"),
        dyno(dyno_id="w2", name="web.2"),
        dyno(dyno_id="one", name="run.1234", type="run", one_off=True),
        dyno(dyno_id="gone", name="web.3"),  # stopped between the listing and the reading
        dyno(app_id=other, dyno_id="free", size="free", log_metrics=False),
    ]
    logplex = Logplex(tmp_path / "apps", clock=clock)
    metrics = Metrics(tmp_path / "metrics", clock=clock)
    sampler = RuntimeSampler(
        lambda: dynos, trees.groups, logplex, metrics, clock=clock, proc=trees.proc
    )
    sampler.tick()  # first sight: each dyno's averages start at 0
    for _ in range(12):  # then a minute of 5 s ticks
        clock.advance(5)
        sampler.tick()

    assert sampler.sample_once() == 4
    lines = logplex.history(APP_ID, 100)
    assert [(line.source, line.process) for line in lines] == [
        ("heroku", "web.1"),
        ("heroku", "web.1"),
        ("heroku", "web.2"),
        ("heroku", "web.2"),
        ("heroku", "run.1234"),
        ("heroku", "run.1234"),
    ]
    assert all(line.at == clock() for line in lines)
    load_1m = f"{2 * (1 - math.exp(-1)):.2f}"
    assert lines[0].message.startswith(f"source=web.1 dyno=heroku.{app_number(APP_ID)}.w1 ")
    assert f"sample#load_avg_1m={load_1m} " in lines[0].message
    assert "sample#load_avg_1m=0.00 " in lines[2].message
    assert "sample#memory_rss=21.22MB" in lines[1].message
    assert lines[1].message.endswith("sample#memory_quota=512.00MB")
    assert logplex.history(other, 100) == []  # feature off: no lines

    # Memory for metrics: formation dynos only, and none for free dynos.
    web = metrics.report(APP_ID, clock(), clock())
    assert list(web) == ["web"]
    memory = web["web"].summary.memory
    assert memory is not None and (memory.rss, memory.quota) == (22251520, 512 * MB)
    assert metrics.report(other, clock(), clock()) == {}


def test_sampler_forgets_stopped_dynos_and_starts_new_ones_at_zero(
    tmp_path: Path, clock: FakeClock
) -> None:
    trees = Trees(tmp_path)
    trees.dyno("a", {1: "R"})
    trees.dyno("b", {2: "R"})
    running = [dyno(dyno_id="a")]
    logplex = Logplex(tmp_path / "apps", clock=clock)
    metrics = Metrics(tmp_path / "metrics", clock=clock)
    sampler = RuntimeSampler(
        lambda: running, trees.groups, logplex, metrics, clock=clock, proc=trees.proc
    )
    sampler.tick()
    clock.advance(5)
    sampler.tick()
    running[:] = [dyno(dyno_id="b")]  # a restart: a new dyno id under the same name
    sampler.tick()  # first sight of b
    clock.advance(5)
    sampler.tick()
    sampler.sample_once()
    [load, _] = logplex.history(APP_ID, 2)
    assert f"dyno=heroku.{app_number(APP_ID)}.b " in load.message
    assert "sample#load_avg_1m=0.08 " in load.message  # one tick of one task: 1 - e^(-5/60)


def test_running_dynos_come_from_the_dyno_manager_s_table(platform: Platform) -> None:
    with platform.store.session() as db:
        user = User(email="m@example.com", password_hash="x", totp_secret="x")
        db.add(user)
        db.flush()
        on = App(name="on", owner_id=user.id, stack="kiku-24", build_stack="kiku-24")
        on.features = ["log-runtime-metrics"]
        off = App(name="off", owner_id=user.id, stack="kiku-24", build_stack="kiku-24")
        db.add_all([on, off])
        db.flush()
        for app, name, state, one_off in (
            (on, "web.1", "up", False),
            (on, "worker.1", "starting", False),
            (on, "web.2", "crashed", False),
            (on, "run.7", "up", True),
            (off, "web.1", "up", False),
        ):
            db.add(
                Dyno(
                    app_id=app.id,
                    name=name,
                    type=name.split(".")[0],
                    command="x",
                    size="basic",
                    state=state,
                    one_off=one_off,
                )
            )
    found = {(d.name, d.log_metrics, d.one_off, d.size) for d in running_dynos(platform.store)}
    assert found == {
        ("web.1", True, False, "basic"),
        ("worker.1", True, False, "basic"),
        ("run.7", True, True, "basic"),
        ("web.1", False, False, "basic"),
    }


# -- a real cgroup ---------------------------------------------------------------------


BUSY = """import sys
sys.stdin.readline()              # joined the cgroup: what it allocates now is charged there
held = b"x" * (32 << 20)
print("ok", flush=True)
while True:
    pass
"""


@pytest.fixture
def real_group() -> Iterator[DynoCgroup]:
    controllers = available_controllers()
    if not {"memory", "cpu"} <= set(controllers):
        pytest.skip("needs cgroup v1 memory and cpu controllers (root)")
    group = DynoCgroup(f"metrics-test-{os.getpid()}-{uuid.uuid4().hex[:8]}", controllers)
    group.create(memory_mb=256, pids_max=64, cpu_shares=1024)
    busy = subprocess.Popen(
        [sys.executable, "-c", BUSY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        for procs in group.procs_files():
            Path(procs).write_text(str(busy.pid))
        assert busy.stdin is not None and busy.stdout is not None
        busy.stdin.write("go\n")
        busy.stdin.flush()
        assert busy.stdout.readline() == "ok\n"
        yield group
    finally:
        busy.kill()
        busy.wait()
        group.remove(timeout=10)


def test_a_real_cgroup_is_read(real_group: DynoCgroup, tmp_path: Path, clock: FakeClock) -> None:
    logplex = Logplex(tmp_path / "apps", clock=clock)
    metrics = Metrics(tmp_path / "metrics", clock=clock)
    sampler = RuntimeSampler(
        lambda: [dyno(dyno_id=real_group.name)],
        lambda _: real_group.paths,
        logplex,
        metrics,
        clock=clock,
    )
    busy_seen = 0
    for _ in range(20):  # the busy loop is runnable nearly always; allow for scheduling
        tasks = (real_group.paths["cpu"] / "tasks").read_text().split()
        busy_seen += runnable([int(t) for t in tasks], Path("/proc"))
        clock.advance(5)
        sampler.tick()
        time.sleep(0.01)
    assert busy_seen >= 10
    sampler.sample_once()
    load, memory = (line.message for line in logplex.history(APP_ID, 2))
    one_minute = float(load.split("sample#load_avg_1m=")[1].split()[0])
    assert 0.3 < one_minute <= 1.0  # one task, busy for 100 s of fake time
    rss = float(memory.split("sample#memory_rss=")[1].split("MB")[0])
    assert 32 <= rss < 256  # the 32 MB it holds, and the interpreter
    assert CGROUP_ROOT in real_group.paths["memory"].parents
