"""Fixtures for in-process tests: a platform in a temp dir with a fake clock, and its API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kiku.api import create_app
from kiku.platform import Platform
from kiku.settings import Settings
from kikutest import ACCEPT, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "kiku", api_port=5100, router_port=8080)


@pytest.fixture
def platform(settings: Settings, clock: FakeClock) -> Iterator[Platform]:
    platform = Platform.build(settings, clock=clock)
    yield platform
    platform.close()


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), base_url="http://kiku.test", headers=ACCEPT) as client:
        yield client
