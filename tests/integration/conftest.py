from collections.abc import Iterator
from pathlib import Path

import pytest

from kikuserver import KikuServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KikuServer]:
    server = KikuServer(tmp_path / "data")
    server.start()
    yield server
    server.stop()
    server.reap_dynos()
