"""ps: list dynos, ps:scale, ps:type, ps:restart, ps:stop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cli.clitest import Kiku, reply
from kiku.cli.printer import time_ago

MODULES = ("auth", "apps", "git", "ps")
OLD = "2024-05-01T12:00:00Z"  # more than a day ago: time_ago shows no "(~ …)" part


def dyno(name: str, state: str = "up", command: str = "gunicorn app:app") -> dict[str, Any]:
    type_ = name.split(".")[0]
    return {
        "name": name,
        "type": type_,
        "state": state,
        "updated_at": OLD,
        "command": command,
        "size": "Basic",
    }


DYNOS = [
    dyno("web.2"),
    dyno("worker.1", "crashed", "python worker.py"),
    dyno("run.1234", command="bash"),
    dyno("web.1"),
    dyno("web.10", "starting"),
]
FORMATION = [
    {"type": "worker", "quantity": 0, "size": "Basic"},
    {"type": "web", "quantity": 1, "size": "Basic"},
]


@pytest.fixture(autouse=True)
def ps_commands(monkeypatch: pytest.MonkeyPatch, kiku: Kiku) -> None:
    monkeypatch.setattr("cli.clitest.CLIENT_MODULES", MODULES)
    kiku.login_as()


def dynos_api(dynos: list[dict[str, Any]]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/apps/shiny/dynos")
        return reply(200, dynos)

    return handler


def formation_api(request: httpx.Request) -> httpx.Response:
    assert (request.method, request.url.path) == ("GET", "/apps/shiny/formation")
    return reply(200, FORMATION)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- ps ---------------------------------------------------------------------------------


def test_ps_groups_dynos_by_command_like_heroku(kiku: Kiku) -> None:
    run = kiku("ps", "-a", "shiny", handler=dynos_api(DYNOS))
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/dynos"]
    when = time_ago(OLD)
    assert run.stdout == (
        "=== run: one-off processes (1)\n"
        f"run.1234 (Basic): up {when}: bash\n"
        "\n"
        "=== web (Basic): gunicorn app:app (3)\n"
        f"web.1: up {when}\n"
        f"web.2: up {when}\n"
        f"web.10: starting {when}\n"
        "\n"
        "=== worker (Basic): python worker.py (1)\n"
        f"worker.1: crashed {when}\n"
        "\n"
    )


def test_ps_shows_how_long_ago_a_recent_change_was(kiku: Kiku) -> None:
    five_minutes_ago = (datetime.now(UTC) - timedelta(minutes=5, seconds=10)).isoformat()
    recent = {**dyno("web.1"), "updated_at": five_minutes_ago}
    run = kiku("ps", "-a", "shiny", handler=dynos_api([recent]))
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[1].endswith("(~ 5m ago)")


def test_ps_filters_by_type(kiku: Kiku) -> None:
    run = kiku("ps", "worker", "run", "-a", "shiny", handler=dynos_api(DYNOS))
    assert run.exit_code == 0, run.output
    headers = [line for line in run.stdout.splitlines() if line.startswith("===")]
    assert headers == [
        "=== run: one-off processes (1)",
        "=== worker (Basic): python worker.py (1)",
    ]


def test_ps_of_a_type_with_no_dynos_is_an_error(kiku: Kiku) -> None:
    run = kiku("ps", "clock", "-a", "shiny", handler=dynos_api(DYNOS))
    assert run.exit_code == 1
    assert run.stderr == "Error: No clock dynos on ⬢ shiny\n"


def test_ps_without_dynos(kiku: Kiku) -> None:
    run = kiku("ps", "-a", "shiny", handler=dynos_api([]))
    assert run.exit_code == 0, run.output
    assert run.stdout == "No dynos on ⬢ shiny\n"


def test_ps_json_is_sorted_by_name(kiku: Kiku) -> None:
    run = kiku("ps", "web", "-a", "shiny", "--json", handler=dynos_api(DYNOS))
    assert run.exit_code == 0, run.output
    assert [d["name"] for d in json.loads(run.stdout)] == ["web.1", "web.10", "web.2"]


# -- ps:scale ---------------------------------------------------------------------------


def test_scale_without_arguments_prints_the_formation(kiku: Kiku) -> None:
    run = kiku("ps:scale", "-a", "shiny", handler=formation_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/formation"]
    assert run.stdout == "web=1:Basic worker=0:Basic\n"


def test_scale_without_process_types_is_an_error(kiku: Kiku) -> None:
    run = kiku("ps:scale", "-a", "shiny", handler=lambda request: reply(200, []))
    assert run.exit_code == 1
    assert run.stderr.startswith("Error: No process types on ⬢ shiny.\n")


def scale_api(request: httpx.Request) -> httpx.Response:
    assert (request.method, request.url.path) == ("PATCH", "/apps/shiny/formation")
    return reply(
        200,
        [
            {"type": "web", "quantity": 2, "size": "Standard-2X"},
            {"type": "worker", "quantity": 1, "size": "Basic"},
            {"type": "clock", "quantity": 0, "size": "Basic"},
        ],
    )


def test_scale_sends_string_and_relative_quantities(kiku: Kiku) -> None:
    args = ["web=2", "worker+1", "web=1:standard-2x", "web-1", "clock-10:basic"]
    run = kiku("ps:scale", *args, "-a", "shiny", handler=scale_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["PATCH /apps/shiny/formation"]
    assert body(run.requests[0]) == {
        "updates": [
            {"type": "web", "quantity": "2"},
            {"type": "worker", "quantity": "+1"},
            {"type": "web", "quantity": "1", "size": "standard-2x"},
            {"type": "web", "quantity": "-1"},
            {"type": "clock", "quantity": "-10", "size": "basic"},
        ]
    }


def test_scale_reports_what_now_runs(kiku: Kiku) -> None:
    run = kiku("scale", "web=2:standard-2x", "worker+1", "-a", "shiny", handler=scale_api)
    assert run.exit_code == 0, run.output
    assert run.stderr == (
        "Scaling dynos... done, now running web at 2:Standard-2X, worker at 1:Basic\n"
    )


@pytest.mark.parametrize("bad", ["web==2", "web", "web=two", "=2", "web=2:", "web=2:a:b"])
def test_scale_with_bad_syntax_fails_before_any_request(kiku: Kiku, bad: str) -> None:
    run = kiku("ps:scale", "worker=1", bad, "-a", "shiny", handler=scale_api)
    assert run.exit_code == 1
    assert run.stderr == (
        f"Error: Invalid scale argument '{bad}'.\nUsage: kiku ps:scale web=2 worker+1\n"
    )
    assert run.requests == []


def test_scale_shows_an_api_error(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(404, {"id": "not_found", "message": "Couldn't find that process type (x)."})

    run = kiku("ps:scale", "x=1", "-a", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == (
        "Scaling dynos... !\nError: Couldn't find that process type (x).\nError ID: not_found\n"
    )


# -- ps:type ----------------------------------------------------------------------------

TABLE = (
    "=== Process Types\n"
    "Type    Size   Qty\n"
    "──────  ─────  ───\n"
    "web     Basic  1\n"
    "worker  Basic  0\n"
    "\n"
    "=== Dyno Totals\n"
    "Type   Total\n"
    "─────  ─────\n"
    "Basic  1\n"
)


def test_type_without_arguments_shows_the_formation_table(kiku: Kiku) -> None:
    run = kiku("ps:type", "-a", "shiny", handler=formation_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["GET /apps/shiny/formation"]
    assert run.stdout == TABLE


def resize_api(request: httpx.Request) -> httpx.Response:
    if request.method == "PATCH":
        assert request.url.path == "/apps/shiny/formation"
        return reply(200, [])
    return formation_api(request)


def test_type_sets_the_size_of_named_types(kiku: Kiku) -> None:
    run = kiku("ps:type", "web=standard-2x", "-a", "shiny", handler=resize_api)
    assert run.exit_code == 0, run.output
    assert run.paths() == [
        "GET /apps/shiny/formation",
        "PATCH /apps/shiny/formation",
        "GET /apps/shiny/formation",
    ]
    assert body(run.requests[1]) == {"updates": [{"type": "web", "size": "standard-2x"}]}
    assert run.stderr == "Scaling dynos on ⬢ shiny... done\n"
    assert run.stdout == TABLE


def test_type_with_one_size_resizes_every_type(kiku: Kiku) -> None:
    run = kiku("type", "basic", "-a", "shiny", handler=resize_api)
    assert run.exit_code == 0, run.output
    assert body(run.requests[1]) == {
        "updates": [{"type": "worker", "size": "basic"}, {"type": "web", "size": "basic"}]
    }


def test_type_of_an_unknown_process_type_is_an_error(kiku: Kiku) -> None:
    run = kiku("ps:type", "clock=basic", "-a", "shiny", handler=resize_api)
    assert run.exit_code == 1
    assert run.stderr == "Error: Type clock not found in process formation.\nTypes: worker, web\n"
    assert run.paths() == ["GET /apps/shiny/formation"]


@pytest.mark.parametrize("args", [["web=basic", "worker"], ["web==basic"], ["a b"]])
def test_type_with_bad_syntax_fails_before_any_request(kiku: Kiku, args: list[str]) -> None:
    run = kiku("ps:type", *args, "-a", "shiny", handler=resize_api)
    assert run.exit_code == 1
    assert run.stderr.startswith("Error: Invalid ")
    assert run.requests == []


# -- ps:restart and ps:stop ---------------------------------------------------------------


def accept(request: httpx.Request) -> httpx.Response:
    return reply(202, {})


@pytest.mark.parametrize(
    ("args", "path", "message"),
    [
        ([], "/apps/shiny/dynos", "Restarting all dynos on ⬢ shiny... done\n"),
        (["web.1"], "/apps/shiny/dynos/web.1", "Restarting dyno web.1 on ⬢ shiny... done\n"),
        (["web"], "/apps/shiny/formations/web", "Restarting web dynos on ⬢ shiny... done\n"),
        (["-d", "run.42"], "/apps/shiny/dynos/run.42",
         "Restarting dyno run.42 on ⬢ shiny... done\n"),
        (["--process-type", "worker"], "/apps/shiny/formations/worker",
         "Restarting worker dynos on ⬢ shiny... done\n"),
    ],
)  # fmt: skip
def test_restart(kiku: Kiku, args: list[str], path: str, message: str) -> None:
    run = kiku("ps:restart", *args, "-a", "shiny", handler=accept)
    assert run.exit_code == 0, run.output
    assert run.paths() == [f"DELETE {path}"]
    assert run.stderr == message


def test_restart_alias(kiku: Kiku) -> None:
    run = kiku("restart", "web", "-a", "shiny", handler=accept)
    assert run.exit_code == 0, run.output
    assert run.paths() == ["DELETE /apps/shiny/formations/web"]


def test_restart_with_two_targets_is_an_error(kiku: Kiku) -> None:
    run = kiku("ps:restart", "web.1", "-p", "web", "-a", "shiny", handler=accept)
    assert run.exit_code == 1
    assert run.stderr.startswith("Error: Give only one of")
    assert run.requests == []


@pytest.mark.parametrize(
    ("command", "args", "path", "message"),
    [
        ("ps:stop", ["web.1"], "/apps/shiny/dynos/web.1/actions/stop",
         "Stopping dyno web.1 on ⬢ shiny... done\n"),
        ("stop", ["web"], "/apps/shiny/formations/web/actions/stop",
         "Stopping web dynos on ⬢ shiny... done\n"),
        ("ps:kill", ["--dyno-name", "run.7"], "/apps/shiny/dynos/run.7/actions/stop",
         "Stopping dyno run.7 on ⬢ shiny... done\n"),
        ("ps:stop", ["-p", "worker"], "/apps/shiny/formations/worker/actions/stop",
         "Stopping worker dynos on ⬢ shiny... done\n"),
    ],
)  # fmt: skip
def test_stop(kiku: Kiku, command: str, args: list[str], path: str, message: str) -> None:
    run = kiku(command, *args, "-a", "shiny", handler=accept)
    assert run.exit_code == 0, run.output
    assert run.paths() == [f"POST {path}"]
    assert run.stderr == message


def test_stop_without_a_target_fails_before_any_request(kiku: Kiku) -> None:
    run = kiku("ps:stop", "-a", "shiny", handler=accept)
    assert run.exit_code == 1
    assert run.stderr.startswith("Error: Please specify a process type or dyno name to stop.")
    assert run.requests == []


def test_stop_shows_an_api_error(kiku: Kiku) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(404, {"id": "not_found", "message": "Couldn't find that dyno."})

    run = kiku("ps:stop", "web.9", "-a", "shiny", handler=handler)
    assert run.exit_code == 1
    assert run.stderr == (
        "Stopping dyno web.9 on ⬢ shiny... !\n"
        "Error: Couldn't find that dyno.\nError ID: not_found\n"
    )
