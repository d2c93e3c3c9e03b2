"""The ``lab`` fixture: fake model servers and tandem runs, all stopped by pid at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.e2e_support import Lab
from fakes.servers import FakeServer, start_model_server


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Starts servers and hosts for one test; stops every process it started afterwards."""
    servers: list[FakeServer] = []

    def start_server(api: str, script: list[dict[str, Any]]) -> FakeServer:
        servers.append(start_model_server(api, script, tmp_path))
        return servers[-1]

    lab = Lab(tmp_path, start_server)
    yield lab
    lab.stop()
    for server in servers:
        server.stop()
