"""Every router test runs twice: with the compiled fast lane serving what it can, and with
the Python router serving everything. Connections the lane hands over are served by the
Python path, so both must pass every test on their own. test_lane.py picks its modes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router import routerkit


@pytest.fixture(autouse=True)
def lane_mode(request: pytest.FixtureRequest) -> Iterator[bool]:
    routerkit.LANE = request.param
    yield request.param
    routerkit.LANE = True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lane_mode" in metafunc.fixturenames:
        modes = [True] if metafunc.module.__name__.endswith("test_lane") else [True, False]
        ids = ["lane" if mode else "python" for mode in modes]
        metafunc.parametrize("lane_mode", modes, ids=ids, indirect=True)
