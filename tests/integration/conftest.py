from collections.abc import Iterator
from pathlib import Path

import pytest

from kikuserver import KikuServer, serving


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KikuServer]:
    with serving(tmp_path / "data") as server:
        yield server
